"""Dates as the REST methods take them (mock_portal.portal.dates), shared by users, tasks, recurring deals,
the offline queue's filters and the messenger's user view."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from mock_portal.portal.dates import day_at_midnight, parse_moment


@pytest.mark.parametrize(
    ("text", "utc_offset", "iso"),
    [
        ("2024-05-01T10:20:30Z", timedelta(0), "2024-05-01T10:20:30+00:00"),  # Z, which 3.10 cannot read
        ("2024-05-01T10:20:30", timedelta(0), "2024-05-01T10:20:30+00:00"),  # no offset: UTC
        ("2024-05-01T01:00:00+03:00", timedelta(hours=3), "2024-05-01T01:00:00+03:00"),  # offset kept
        ("2024-05-01", timedelta(0), "2024-05-01T00:00:00+00:00"),
    ],
)
def test_parse_moment_reads_iso_8601_with_z_and_takes_naive_as_utc(
    text: str, utc_offset: timedelta, iso: str
) -> None:
    moment = parse_moment(text)
    assert moment is not None
    assert moment.utcoffset() == utc_offset
    assert moment.isoformat() == iso


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01", "01.05.2024", "2024-05-01T25:00"])
def test_parse_moment_refuses_what_is_not_a_date(text: str) -> None:
    assert parse_moment(text) is None


def test_day_at_midnight_keeps_the_day_of_the_moment_s_own_offset() -> None:
    moment = parse_moment("2024-05-01T01:00:00+03:00")  # 2024-04-30 in UTC
    assert moment is not None
    assert day_at_midnight(moment) == "2024-05-01T00:00:00+00:00"
    assert day_at_midnight(moment.astimezone(timezone.utc)) == "2024-04-30T00:00:00+00:00"
