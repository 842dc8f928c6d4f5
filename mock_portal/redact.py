"""Redaction of the secrets an event or a REST call carries.

``access_token``, ``refresh_token`` and ``application_token`` never appear in a message, log or report: the
handler authenticates events with ``application_token`` (BITRIX24-EVENTS.md section 2), and the OAuth tokens
grant REST access to the portal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SECRET_KEYS = frozenset({"access_token", "refresh_token", "application_token", "client_secret", "auth"})
"""Keys whose values are secret wherever they appear (``auth`` is the token parameter of REST calls)."""

_MASK = "***"

# key=value in form bodies and query strings, both plain and with PHP brackets (auth[access_token]=...,
# auth%5Baccess_token%5D=...), and "key": "value" in JSON text.
_FORM_SECRET = re.compile(
    r"(?P<key>(?:access_token|refresh_token|application_token|client_secret)(?:\]|%5D)?|(?<![\w\[%])auth)"
    r"(?P<eq>=)(?P<value>[^&\s\"']*)",
    re.IGNORECASE,
)
# "key": "value" in JSON and 'key': 'value' in Python reprs (as jsonschema quotes instances in its messages)
_JSON_SECRET = re.compile(
    r"(?P<key>(?P<q>[\"'])(?:access_token|refresh_token|application_token|client_secret)(?P=q)\s*:\s*)"
    r"(?P<vq>[\"'])(?P<value>.*?)(?<!\\)(?P=vq)",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Mask secret values inside a form body, query string, URL, JSON text or message."""
    text = _FORM_SECRET.sub(lambda m: f"{m['key']}{m['eq']}{_MASK if m['value'] else ''}", text)
    return _JSON_SECRET.sub(lambda m: f"{m['key']}{m['vq']}{_MASK}{m['vq']}", text)


def redact(value: Any) -> Any:
    """Return a copy of a decoded payload (dicts, lists, scalars) with every secret value masked."""
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in SECRET_KEYS and not isinstance(item, (Mapping, list)):
                out[key] = _MASK if item not in (None, "") else item
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
