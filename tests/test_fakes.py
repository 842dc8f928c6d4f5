"""The Faker provider: every value has its Bitrix24 format, follows the locale and is reproducible."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from faker import Faker

from mock_portal.events import build_event
from mock_portal.fakes import BUILTIN_CONNECTORS, CLOUD_ZONES, SCOPES, STATUSES, B24Provider, locale_of

SAMPLES = 300

HEX32 = re.compile(r"[0-9a-f]{32}")
LIVE_TOKEN = re.compile(r"([0-9a-f]{6})[0-9a-f]{58}\1")  # 70 hex, the last 6 repeat the first 6
DOCS_TOKEN = re.compile(r"[0-9a-z]{32}")
HOST = re.compile(r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}")
CLOUD = re.compile(r"[a-z0-9-]+\.bitrix24\.(" + "|".join(re.escape(z) for z in CLOUD_ZONES) + r")")
CONNECTOR = re.compile(r"[a-z0-9_]+")  # imconnector.register: lower case, digits, '_', never '.'
SCOPE = re.compile(r"[a-z_.]+(,[a-z_.]+)*")  # comma-separated, no spaces (facts §2)
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def _fake(locale: str = "ru_RU", seed: int = 0) -> Any:
    fake = Faker(locale)
    fake.add_provider(B24Provider)
    fake.seed_instance(seed)
    return fake


def _many(method: Callable[[], Any]) -> list[Any]:
    return [method() for _ in range(SAMPLES)]


FORMATS: list[tuple[str, re.Pattern[str]]] = [
    ("b24_member_id", HEX32),
    ("b24_application_token", HEX32),
    ("b24_access_token", LIVE_TOKEN),
    ("b24_refresh_token", LIVE_TOKEN),
    ("b24_cloud_domain", CLOUD),
    ("b24_on_premise_domain", HOST),
    ("b24_domain", HOST),
    ("b24_connector_id", CONNECTOR),
    ("b24_rest_connector_id", CONNECTOR),
    ("b24_scope", SCOPE),
    ("b24_status", re.compile("[" + "".join(STATUSES) + "]")),
    ("b24_server_endpoint", re.compile(r"https://oauth\.(bitrix\.info|bitrix24\.tech)/rest/")),
    ("b24_client_endpoint", re.compile(r"https://[a-z0-9.-]+/rest/")),
    ("b24_external_chat_id", HEX32),
    ("b24_external_user_id", re.compile(r"\d{5,10}|[0-9a-f-]{36}|[0-9a-f]{24}")),
    ("b24_chat_entity_id", re.compile(r"[a-z0-9_]+\|\d+\|[0-9a-f-]+\|\d+")),
    ("b24_language_id", re.compile(r"[a-z]{2}")),
]


@pytest.mark.parametrize("locale", ["ru_RU", "en_US", "de_DE"])
@pytest.mark.parametrize(("method", "pattern"), FORMATS, ids=[name for name, _ in FORMATS])
def test_values_match_their_formats(method: str, pattern: re.Pattern[str], locale: str) -> None:
    fake = _fake(locale)
    for value in _many(getattr(fake, method)):
        assert isinstance(value, str)
        assert pattern.fullmatch(value), f"{method} gave {value!r}"


def test_docs_style_tokens_and_bad_style() -> None:
    fake = _fake()
    assert all(DOCS_TOKEN.fullmatch(fake.b24_access_token(style="docs")) for _ in range(50))
    with pytest.raises(ValueError, match="token style"):
        fake.b24_access_token(style="jwt")


def test_numeric_ids_are_positive_ints() -> None:
    fake = _fake()
    for method in ("b24_line_id", "b24_user_id", "b24_chat_id", "b24_session_id", "b24_close_term"):
        values = _many(getattr(fake, method))
        assert all(isinstance(v, int) and v > 0 for v in values), method


def test_scopes_contain_the_required_ones_without_duplicates() -> None:
    fake = _fake()
    for _ in range(SAMPLES):
        scopes = fake.b24_scope(required=("imopenlines", "imconnector")).split(",")
        assert {"imopenlines", "imconnector"} <= set(scopes)
        assert len(scopes) == len(set(scopes))
        assert set(scopes) <= set(SCOPES)


def test_the_value_sets_cover_the_known_channels_and_statuses() -> None:
    fake = _fake()
    builtin = set(_many(fake.b24_builtin_connector_id) * 3)
    assert {"livechat", "telegrambot", "whatsappbytwilio"} <= builtin <= set(BUILTIN_CONNECTORS)
    assert set(_many(fake.b24_status)) == set(STATUSES)
    assert any(d.endswith(".bitrix24.ru") for d in _many(fake.b24_domain))
    assert any(".bitrix24." not in d for d in _many(fake.b24_domain))


def test_same_seed_same_values() -> None:
    names = [name for name, _ in FORMATS] + ["b24_line_name"]
    first = [getattr(_fake(seed=5), n)() for n in names]
    assert first == [getattr(_fake(seed=5), n)() for n in names]
    assert first != [getattr(_fake(seed=6), n)() for n in names]


def test_locale_is_detected() -> None:
    assert locale_of(_fake("de_DE")) == "de_DE"
    assert _fake("de_DE").b24_language_id() == "de"
    assert _fake("en_US").b24_language_id() == "en"
    assert _fake().b24_language_id() == "ru"


def test_line_names_follow_the_locale() -> None:
    russian = _many(_fake("ru_RU").b24_line_name)
    english = _many(_fake("en_US").b24_line_name)
    german = _many(_fake("de_DE").b24_line_name)
    assert all(CYRILLIC.search(name) for name in russian)
    assert not any(CYRILLIC.search(name) for name in english + german)
    assert not set(english) & set(german)
    assert all(name and name == name.strip() for name in russian + english + german)


def test_locale_reaches_the_built_events() -> None:
    def line_names(locale: str) -> list[str]:
        return [
            build_event(shape="docs-2024", seed=s, locale=locale).payload["data"]["DATA"][0]["line"]["name"]
            for s in range(40)
        ]

    assert all(CYRILLIC.search(name) for name in line_names("ru_RU"))
    assert not any(CYRILLIC.search(name) for name in line_names("de_DE"))
    install = build_event("ONAPPINSTALL", seed=1, locale="en_US")
    assert install.payload["data"]["LANGUAGE_ID"] == "en"


def test_cloud_zones_follow_the_locale() -> None:
    german = _many(_fake("de_DE").b24_cloud_zone)
    russian = _many(_fake("ru_RU").b24_cloud_zone)
    assert german.count("de") > SAMPLES // 2
    assert russian.count("ru") > SAMPLES // 2
