"""Secrets are masked wherever they appear: payloads, form bodies, query strings, JSON text, Python reprs."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_portal.redact import _folded, _redact_slow, redact, redact_text

SECRET = "a116b31923031cbcfc53bf81ded59f89"


@pytest.mark.parametrize(
    "text",
    [
        f"auth%5Baccess_token%5D={SECRET}&ts=1",
        f"auth[refresh_token]={SECRET}",
        f"application_token={SECRET}",
        f"https://portal.example/rest/app.info?auth={SECRET}",
        f'{{"access_token": "{SECRET}", "x": 1}}',
        f"{{'application_token': '{SECRET}', 'x': 1}} should not be valid under {{'not': {{}}}}",
        f'{{"client_secret": "{SECRET}"}}',
    ],
    ids=["form-brackets", "form-raw", "form-plain", "query", "json", "python-repr", "client-secret"],
)
def test_text_forms_are_masked(text: str) -> None:
    masked = redact_text(text)
    assert SECRET not in masked
    assert "***" in masked


def test_payloads_are_masked_at_every_level_and_left_intact_elsewhere() -> None:
    payload = {
        "event": "ONAPPINSTALL",
        "data": {"AUTH": {"access_token": SECRET}, "items": [{"refresh_token": SECRET}]},
        "auth": {"application_token": SECRET, "member_id": "m1", "domain": "x.bitrix24.ru"},
    }
    masked = redact(payload)
    assert SECRET not in repr(masked)
    assert masked["auth"]["member_id"] == "m1"
    assert masked["data"]["items"][0]["refresh_token"] == "***"
    assert payload["auth"]["application_token"] == SECRET  # the input is not modified


# ---------------------------------------------------------------------------------------------- the fast path

_PIECES = [
    "access_token", "ACCESS_TOKEN", "refresh_token", "Application_Token", "client_secret", "CLIENT_SECRET",
    "auth", "AUTH", "xauth", "[auth", "%auth", "auth%5B", "%5D", "]", "[", "=", "&", " ", "\n", '"', "'",
    ": ", "\\", "\\'", '\\"', "***", "a1b2", "Привет", "\u0130", "\u0131", "\u017f", "\u212a", "_tok", "en",
    "acce\u017f\u017f_to\u212aen", "cl\u0131ent_secret", "\u0130",
]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=4)), max_size=40))
def test_the_fast_path_masks_exactly_as_both_patterns_over_the_whole_text(parts: list[str]) -> None:
    text = "".join(parts)
    assert redact_text(text) == _redact_slow(text)


@pytest.mark.parametrize("size", [1024, 64 * 1024])
@pytest.mark.parametrize("secrets", [True, False], ids=["with-secrets", "without"])
def test_the_fast_path_on_event_bodies(size: int, secrets: bool) -> None:
    from mock_portal.events import build_event

    body = build_event("ONSESSIONSTART", seed=7).body()
    if not secrets:
        body = body.replace("token", "tokem").replace("auth", "outh")
    text = (body * (size // len(body) + 1))[:size]
    assert redact_text(text) == _redact_slow(text)
    assert (redact_text(text) != text) is secrets


def test_folding_covers_every_character_ignorecase_takes_for_an_ascii_letter() -> None:
    """The fast path finds the keys by str.find on a folded copy: every character that re's IGNORECASE
    matches with an ASCII letter must fold to that letter, one character for one."""
    letter = re.compile("[a-z]", re.IGNORECASE)
    for cp in range(0x80, sys.maxunicode + 1):
        if 0xD800 <= cp < 0xE000:
            continue
        char = chr(cp)
        if letter.fullmatch(char):
            folded = _folded(char)
            assert folded is not None, hex(cp)
            assert len(folded) == 1, hex(cp)
            assert re.fullmatch(folded, char, re.IGNORECASE), hex(cp)


def test_a_robot_calls_event_token_is_a_secret() -> None:
    """Whoever holds a robot run's ``event_token`` can complete the run (``bizproc.event.send``)."""
    token = "via1.c2VjcmV0LXJ1bi10b2tlbg"
    form = f"event_token={token}&workflow_id=1&code=robot"
    assert token not in redact_text(form)
    assert token not in redact_text(f'{{"event_token": "{token}"}}')
    assert redact({"event_token": token, "code": "robot"}) == {"event_token": "***", "code": "robot"}
