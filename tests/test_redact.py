"""Secrets are masked wherever they appear: payloads, form bodies, query strings, JSON text, Python reprs."""

from __future__ import annotations

import pytest

from mock_portal.redact import redact, redact_text

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
