"""A Faker provider for Bitrix24 values: portals, tokens, connectors, open lines, scopes, statuses.

Use it as any Faker provider::

    from faker import Faker
    from mock_portal.fakes import B24Provider

    fake = Faker("ru_RU")
    fake.add_provider(B24Provider)
    fake.b24_domain(), fake.b24_member_id(), fake.b24_line_name()

Every method name starts with ``b24_`` so it never shadows a Faker built-in. Human-readable values
(open-line names, on-premise hosts, ``LANGUAGE_ID``) follow the Faker instance's locale (``ru_RU`` is the
project default; ``en_US``, ``de_DE`` have their own vocabulary, other locales fall back to English words
with local cities).
Formats and where they come from:

- ``member_id`` and ``application_token``: 32 lower-case hex characters [capture, docs]: facts §2.
- access and refresh tokens: 70 lower-case hex characters whose last 6 repeat the first 6, as every live token
  in ``captures/`` is; ``style="docs"`` gives the 32-character ``[0-9a-z]`` placeholders of the doc pages.
- cloud domains: ``<name>.bitrix24.<zone>`` over the documented regional zones; on-premise: any host.
- connector ids: the built-in channels of the imconnector module and REST connector ids (lower case, digits
  and ``_``, never ``.``: imconnector.register page), e.g. ``cs_auto_ru``, ``wz_whatsapp_<hex>`` (captures).

The provider draws from ``self.generator.random``, so ``Faker.seed_instance(n)`` makes it reproducible.

:class:`B24FieldProvider` fills any field a doc page describes: :func:`field_class` reads its name and type
(``EMAIL``, ``*_DATE``, ``CALL_ID``, ``char`` -> ``Y``/``N``...) and ``fake.b24_field(name, kind)`` gives a
value of that class; the builders of derived events use it for every field of every event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from faker.providers import BaseProvider

from mock_portal._fieldclass import FIELD_CLASSES, field_class

__all__ = [
    "BUILTIN_CONNECTORS",
    "CLOUD_ZONES",
    "FIELD_CLASSES",
    "SCOPES",
    "SERVER_ENDPOINTS",
    "STATUSES",
    "B24FieldProvider",
    "B24Provider",
    "field_class",
    "locale_of",
]

CLOUD_ZONES: tuple[str, ...] = (
    # regional zones of Bitrix24 cloud; ru/com/kz/by are on the doc pages (network-access.md, examples),
    # the others are Bitrix24's published list of domain zones [inferred from the vendor's help desk]
    "ru", "com", "de", "kz", "by", "eu", "es", "com.br", "fr", "it", "com.tr", "pl", "ua", "in", "cn", "id",
    "vn", "jp", "uk",
)  # fmt: skip

# which zones a portal of a given language usually lives in (first is the most common)
_ZONES_BY_LANGUAGE: dict[str, tuple[str, ...]] = {
    "ru": ("ru", "ru", "ru", "ru", "by", "kz"),
    "de": ("de", "de", "de", "eu"),
    "en": ("com", "com", "com", "eu", "uk", "in"),
    "es": ("es",),
    "pt": ("com.br",),
    "fr": ("fr",),
    "it": ("it",),
    "tr": ("com.tr",),
    "pl": ("pl",),
    "uk": ("ua",),
    "kk": ("kz",),
    "be": ("by",),
    "zh": ("cn",),
    "id": ("id",),
    "vi": ("vn",),
    "ja": ("jp",),
}

SERVER_ENDPOINTS: tuple[str, ...] = ("https://oauth.bitrix.info/rest/", "https://oauth.bitrix24.tech/rest/")
"""The OAuth servers seen in ``auth.server_endpoint`` (facts §2, captures)."""

STATUSES: tuple[str, ...] = ("L", "F", "D", "T", "P", "S")
"""``auth.status`` letters: local, free, demo, trial, paid, subscription (facts §2)."""

# captures show S, L and F; weight them accordingly
_STATUS_WEIGHTS: tuple[int, ...] = (6, 3, 1, 1, 1, 8)

BUILTIN_CONNECTORS: tuple[str, ...] = (
    # the imconnector module's own channels (Library::ID_*_CONNECTOR and its base connector list)
    "livechat", "whatsappbytwilio", "whatsappbyedna", "avito", "viber", "telegrambot", "imessage", "wechat",
    "yandex", "vkgroup", "vkgrouporder", "ok", "olx", "facebook", "facebookcomments", "fbinstagramdirect",
    "fbinstagram", "network", "notifications",
)  # fmt: skip

SCOPES: tuple[str, ...] = (
    # scope names seen in the captures' auth.scope and the permissions page
    "crm", "im", "imbot", "imopenlines", "imconnector", "contact_center", "user", "user_basic", "user_brief",
    "entity", "placement", "messageservice", "department", "pull", "disk", "task", "calendar", "telephony",
    "call", "bizproc", "user.userfield", "userfieldconfig", "rpa", "mobile",
)  # fmt: skip

_REST_CONNECTOR_PREFIXES: tuple[str, ...] = ("cs", "wz", "b24", "app", "my", "ext", "chat", "omni")
_REST_CONNECTOR_NAMES: tuple[str, ...] = (
    "whatsapp", "telegram", "auto_ru", "cian_connector", "domclick_connector", "mcm_telegram", "mcm_whatsapp",
    "instagram", "max", "sms", "email", "site_chat", "avito", "vk", "widget", "bot",
)  # fmt: skip

# Open-line names by language: a channel purpose, optionally with a city or a number (Bitrix names new lines
# "<name> <n>"). Faker supplies the cities in the locale.
_LINE_WORDS: dict[str, tuple[str, ...]] = {
    "ru": (
        "Открытая линия", "Поддержка", "Отдел продаж", "Служба заботы", "Онлайн-консультант", "Приём заявок",
        "Доставка", "Сервисный центр", "Горячая линия", "Бронирование", "Запись на приём", "Отдел качества",
    ),
    "de": (
        "Kundenservice", "Vertrieb", "Kundenbetreuung", "Beratung", "Bestellungen", "Reklamationen",
        "Hotline", "Terminvereinbarung", "Buchhaltung", "Technischer Support", "Kommunikationskanal",
    ),
    "en": (
        "Open Channel", "Support", "Sales", "Customer Care", "Help Desk", "Orders", "Bookings", "Returns",
        "Technical Support", "Live Chat", "Billing",
    ),
}  # fmt: skip
_LINE_SEPARATORS: dict[str, str] = {"ru": " — ", "de": " – ", "en": " - "}

_ON_PREMISE_PREFIXES: tuple[str, ...] = ("b24", "crm", "portal", "bitrix", "corp", "intranet", "cp")


def locale_of(generator: object) -> str:
    """The locale (``ru_RU``, ``en_US``...) of a Faker generator, read from its localized providers."""
    for provider in getattr(generator, "providers", ()):
        if type(provider).__module__.startswith("faker.providers.person"):
            lang = getattr(provider, "__lang__", None)
            if isinstance(lang, str):
                return lang
    return "en_US"


class B24Provider(BaseProvider):
    """Bitrix24 values for Faker; see the module docstring for the formats and their evidence."""

    # --- language -------------------------------------------------------------------------------------------

    def b24_language_id(self) -> str:
        """``LANGUAGE_ID`` of the portal: the locale's language (``ru``, ``en``, ``de``...)."""
        return locale_of(self.generator).split("_")[0].lower()

    def _words_language(self) -> str:
        language = self.b24_language_id()
        return language if language in _LINE_WORDS else "en"

    # --- portals --------------------------------------------------------------------------------------------

    def b24_cloud_zone(self) -> str:
        """A cloud zone (``ru``, ``com``, ``de``...), weighted towards the locale's region."""
        zones = _ZONES_BY_LANGUAGE.get(self.b24_language_id(), ("com",))
        if self.generator.random.random() < 0.1:
            return str(self.random_element(CLOUD_ZONES))
        return str(self.random_element(zones))

    def b24_portal_name(self) -> str:
        """The name part of a cloud portal: a company slug or Bitrix's default ``b24-xxxxxx``."""
        if self.generator.random.random() < 0.35:
            return "b24-" + self.lexify("??????", letters="abcdefghijklmnopqrstuvwxyz0123456789")
        word = str(self.generator.domain_word())
        if self.generator.random.random() < 0.3:
            word += "-" + str(self.generator.domain_word())
        return word

    def b24_cloud_domain(self, zone: str | None = None) -> str:
        """A cloud portal host, ``<name>.bitrix24.<zone>`` (facts §2)."""
        return f"{self.b24_portal_name()}.bitrix24.{zone or self.b24_cloud_zone()}"

    def b24_on_premise_domain(self) -> str:
        """An on-premise (self-hosted) host such as ``crm.example.ru``; the domain follows the locale."""
        prefix = self.random_element(_ON_PREMISE_PREFIXES)
        return f"{prefix}.{self.generator.domain_name()}"

    def b24_domain(self, on_premise: bool | None = None) -> str:
        """A portal host: cloud (about 85%) or on-premise; pass ``on_premise`` to choose."""
        if on_premise is None:
            on_premise = self.generator.random.random() < 0.15
        return self.b24_on_premise_domain() if on_premise else self.b24_cloud_domain()

    def b24_client_endpoint(self, domain: str | None = None) -> str:
        """``https://<domain>/rest/`` (facts §2)."""
        return f"https://{domain or self.b24_domain()}/rest/"

    def b24_server_endpoint(self) -> str:
        """One of the OAuth servers in :data:`SERVER_ENDPOINTS`."""
        return str(self.random_element(SERVER_ENDPOINTS))

    def b24_member_id(self) -> str:
        """A portal's ``member_id``: 32 lower-case hex characters."""
        return f"{self.generator.random.getrandbits(128):032x}"

    def b24_status(self) -> str:
        """An ``auth.status`` letter (:data:`STATUSES`), weighted as the captures are."""
        return str(self.generator.random.choices(STATUSES, weights=_STATUS_WEIGHTS)[0])

    def b24_scope(self, required: Sequence[str] = ("imopenlines",), extra: int | None = None) -> str:
        """A comma-separated scope list without spaces (facts §2) that contains every ``required`` scope."""
        rnd = self.generator.random
        count = rnd.randint(1, 8) if extra is None else extra
        chosen = list(dict.fromkeys([*required, *rnd.sample(SCOPES, min(count, len(SCOPES)))]))
        rnd.shuffle(chosen)
        return ",".join(chosen)

    # --- tokens ---------------------------------------------------------------------------------------------

    def b24_application_token(self) -> str:
        """An ``application_token``: 32 lower-case hex characters, one per installation (facts §2)."""
        return f"{self.generator.random.getrandbits(128):032x}"

    def b24_access_token(self, style: str = "live") -> str:
        """An OAuth access token: ``live`` = 70 hex, the last 6 repeating the first 6 (captures); ``docs`` =
        32 characters of ``[0-9a-z]`` as on the doc pages."""
        if style == "docs":
            return self.lexify("?" * 32, letters="0123456789abcdefghijklmnopqrstuvwxyz")
        if style != "live":
            raise ValueError(f"token style must be 'live' or 'docs', not {style!r}")
        head = f"{self.generator.random.getrandbits(256):064x}"
        return head + head[:6]

    def b24_refresh_token(self, style: str = "live") -> str:
        """An OAuth refresh token, same formats as :meth:`b24_access_token`."""
        return self.b24_access_token(style)

    # --- open lines and connectors --------------------------------------------------------------------------

    def b24_builtin_connector_id(self) -> str:
        """A channel of Bitrix's own imconnector module (``livechat``, ``telegrambot``...)."""
        return str(self.random_element(BUILTIN_CONNECTORS))

    def b24_rest_connector_id(self) -> str:
        """A REST connector id as apps register them: lower case, digits and ``_`` (imconnector.register)."""
        rnd = self.generator.random
        prefix = self.random_element(_REST_CONNECTOR_PREFIXES)
        name = self.random_element(_REST_CONNECTOR_NAMES)
        if rnd.random() < 0.25:
            return f"{prefix}_{name}_{rnd.getrandbits(132):033x}"
        return f"{prefix}_{name}"

    def b24_connector_id(self) -> str:
        """A connector id: a built-in channel (about 70%) or a REST connector."""
        if self.generator.random.random() < 0.7:
            return self.b24_builtin_connector_id()
        return self.b24_rest_connector_id()

    def b24_line_name(self) -> str:
        """An open-line name in the locale's language, e.g. ``Поддержка — Казань`` or ``Sales 2``."""
        rnd = self.generator.random
        language = self._words_language()
        word = str(self.random_element(_LINE_WORDS[language]))
        roll = rnd.random()
        if roll < 0.35:
            return word
        if roll < 0.55:
            return f"{word} {rnd.randint(1, 9)}"
        return f"{word}{_LINE_SEPARATORS[language]}{self._city()}"

    def _city(self) -> str:
        city_name = getattr(self.generator, "city_name", None)
        if city_name is not None:
            return str(city_name())
        return str(self.generator.city())

    def b24_line_id(self) -> int:
        """An open line id (small: portals have a handful of lines)."""
        return int(self.generator.random.randint(1, 60))

    def b24_user_id(self) -> int:
        """A Bitrix user id."""
        return int(self.generator.random.randint(1, 30000))

    def b24_chat_id(self) -> int:
        """An internal chat id."""
        return int(self.generator.random.randint(1, 2_000_000))

    def b24_session_id(self) -> int:
        """An open-line session id."""
        return int(self.generator.random.randint(1, 1_000_000))

    def b24_close_term(self) -> int:
        """Minutes until a session closes automatically."""
        return int(self.random_element((5, 10, 15, 30, 60, 120, 180, 1440, 2880)))

    def b24_external_user_id(self, connector_id: str | None = None) -> str:
        """A user id in the external system, in the form the channel uses (captures' CHAT_ENTITY_IDs):
        numeric for Telegram/VK/Viber-like channels, a UUID or a 24-hex object id for others."""
        rnd = self.generator.random
        kind = rnd.random() if connector_id is None else (0.0 if "telegram" in connector_id else rnd.random())
        if kind < 0.5:
            return str(rnd.randint(10_000, 7_999_999_999))
        if kind < 0.8:
            return str(self.generator.uuid4())
        return f"{rnd.getrandbits(96):024x}"

    def b24_external_chat_id(self) -> str:
        """A chat id in the external system: 32 hex characters (as OnImConnectorMessageAdd captures show)."""
        return f"{self.generator.random.getrandbits(128):032x}"

    def b24_chat_entity_id(self, connector_id: str | None = None, line_id: int | None = None) -> str:
        """An open-line chat's ``CHAT_ENTITY_ID``: ``connector|line|external id|user id`` (captures)."""
        connector = connector_id or self.b24_connector_id()
        line = self.b24_line_id() if line_id is None else line_id
        return f"{connector}|{line}|{self.b24_external_user_id(connector)}|{self.b24_user_id()}"


# --- any documented field, by its name and type -----------------------------------------------------------

_EPOCH_START = datetime(2023, 11, 14, 22, 13, 20)  # 1_700_000_000, as the event builders' clocks
_EPOCH_SPAN = 60_000_000  # about two years
_CRM_ENTITY_TYPES: tuple[str, ...] = ("LEAD", "DEAL", "CONTACT", "COMPANY", "QUOTE")
_ENTITY_TYPE_IDS: tuple[int, ...] = (1, 2, 3, 4, 7, 31, 128, 1032)  # crm: lead .. smart invoice, dynamic
_STAGES: tuple[str, ...] = (
    "NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "WON", "LOSE", "IN_PROCESS",
)  # fmt: skip
_CURRENCIES: tuple[str, ...] = ("RUB", "USD", "EUR", "KZT", "BYN", "UAH")
_COLORS: tuple[str, ...] = ("#1EAE43", "#2FC6F6", "#F7A700", "#E92F2A", "#9DCF00", "#55D0E0", "#A8ADB4")


class B24FieldProvider(BaseProvider):
    """Values for any documented field, by its :func:`field_class` (Faker drives the human-readable ones)."""

    def b24_field(self, name: str, kind: str = "string") -> object:
        """A realistic value for a field called ``name`` of documented type ``kind`` (``integer``,
        ``string``, ``char``, ``datetime``, ``double``...)."""
        return self.b24_field_of_class(field_class(name, kind))

    def b24_field_of_class(self, cls: str) -> object:
        """A realistic value of a :data:`FIELD_CLASSES` class."""
        rnd = self.generator.random
        gen = self.generator
        if cls == "id":
            return rnd.randint(1, 99_999)
        if cls == "integer":
            return rnd.randint(0, 1000)
        if cls in ("double", "money"):
            return f"{rnd.randint(1, 500_000) / 100:.2f}"
        if cls == "boolean":
            return rnd.random() < 0.5
        if cls == "yes-no":
            return "Y" if rnd.random() < 0.5 else "N"
        if cls == "timestamp":
            return 1_700_000_000 + rnd.randint(0, 60_000_000)
        if cls == "datetime":  # fixed bounds, never the clock: the same seed gives the same value
            moment = _EPOCH_START + timedelta(seconds=rnd.randint(0, _EPOCH_SPAN))
            return moment.strftime("%Y-%m-%dT%H:%M:%S+03:00")
        if cls == "date":
            return (_EPOCH_START + timedelta(seconds=rnd.randint(0, _EPOCH_SPAN))).date().isoformat()
        if cls == "email":
            return str(gen.email())
        if cls == "phone":
            return "+7" + "".join(str(rnd.randint(0, 9)) for _ in range(10))
        if cls == "person-name":
            return str(gen.name())
        if cls == "first-name":
            return str(gen.first_name())
        if cls == "last-name":
            return str(gen.last_name())
        if cls == "company":
            return str(gen.company())
        if cls == "title":
            return str(gen.sentence(nb_words=4)).rstrip(".")
        if cls == "text":
            return str(gen.sentence(nb_words=10))
        if cls == "url":
            return f"https://{gen.domain_name()}/{gen.uri_path()}"
        if cls == "currency":
            return str(self.random_element(_CURRENCIES))
        if cls == "language":
            return locale_of(gen).split("_")[0].lower()
        if cls == "color":
            return str(self.random_element(_COLORS))
        if cls == "code":
            return f"{gen.word()}_{rnd.getrandbits(16):04x}".lower()
        if cls == "call-id":
            return f"externalCall.{rnd.getrandbits(128):032x}.{1_700_000_000 + rnd.randint(0, 60_000_000)}"
        if cls == "crm-entity-type":
            return str(self.random_element(_CRM_ENTITY_TYPES))
        if cls == "entity-type-id":
            return int(self.random_element(_ENTITY_TYPE_IDS))
        if cls == "stage":
            return str(self.random_element(_STAGES))
        if cls == "uuid":
            return str(gen.uuid4())
        if cls == "ip":
            return str(gen.ipv4_public())
        if cls == "list":
            return [rnd.randint(1, 999)]
        if cls == "gender":
            return "M" if rnd.random() < 0.5 else "F"
        if cls == "job":
            return str(gen.job())
        if cls == "word":
            return str(gen.word())
        return str(gen.word())
