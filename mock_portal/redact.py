"""Redaction of the secrets an event or a REST call carries.

``access_token``, ``refresh_token`` and ``application_token`` never appear in a message, log or report: the
handler authenticates events with ``application_token`` (BITRIX24-EVENTS.md section 2), and the OAuth tokens
grant REST access to the portal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

SECRET_KEYS = frozenset(
    {"access_token", "refresh_token", "application_token", "client_secret", "event_token", "auth"}
)
"""Keys whose values are secret wherever they appear (``auth`` is the token parameter of REST calls;
``event_token`` lets whoever holds it complete a robot's run with ``bizproc.event.send``)."""

_MASK = "***"

# key=value in form bodies and query strings, both plain and with PHP brackets (auth[access_token]=...,
# auth%5Baccess_token%5D=...), and "key": "value" in JSON text.
_FORM_SECRET = re.compile(
    r"(?P<key>(?:access_token|refresh_token|application_token|client_secret|event_token)(?:\]|%5D)?|(?<![\w\[%])auth)"
    r"(?P<eq>=)(?P<value>[^&\s\"']*)",
    re.IGNORECASE,
)
# "key": "value" in JSON and 'key': 'value' in Python reprs (as jsonschema quotes instances in its messages)
_JSON_SECRET = re.compile(
    r"(?P<key>(?P<q>[\"'])(?:access_token|refresh_token|application_token|client_secret|event_token)(?P=q)\s*:\s*)"
    r"(?P<vq>[\"'])(?P<value>.*?)(?<!\\)(?P=vq)",
    re.IGNORECASE,
)


_TOKEN_KEYS = ("access_token", "refresh_token", "application_token", "client_secret", "event_token")
_FORM_KEYS = (*_TOKEN_KEYS, "auth")
# the only characters that re's IGNORECASE takes for an ASCII letter but str.lower() does not lower to one
# (İ is also the only character whose lower case is two characters long; K lowers to k); a test checks every
# code point
_FOLD_BEFORE = (("\u0130", "i"),)
_FOLD_AFTER = (("\u0131", "i"), ("\u017f", "s"))


def _folded(text: str) -> str | None:
    """``text`` in lower case, character for character as the patterns' IGNORECASE compares it, so an index
    into it is an index into ``text`` (``None`` if that cannot be had)."""
    if text.isascii():
        return text.lower()
    for char, ascii_char in _FOLD_BEFORE:
        if char in text:
            text = text.replace(char, ascii_char)
    low = text.lower()
    for char, ascii_char in _FOLD_AFTER:
        if char in low:
            low = low.replace(char, ascii_char)
    return low if len(low) == len(text) else None


def _starts(low: str, words: tuple[str, ...]) -> list[int]:
    """Every index of ``low`` where one of ``words`` begins, ascending."""
    out: list[int] = []
    for word in words:
        at = low.find(word)
        while at >= 0:
            out.append(at)
            at = low.find(word, at + 1)
    out.sort()
    return out


def _sub_at(
    pattern: re.Pattern[str], text: str, starts: list[int], repl: Callable[[re.Match[str]], str]
) -> str:
    """``pattern.sub(repl, text)`` for a pattern that can only match at one of ``starts``: the same leftmost,
    non-overlapping matches, tried only there."""
    pieces: list[str] = []
    pos = 0
    for start in starts:
        if start < pos:
            continue
        match = pattern.match(text, start)
        if match is None:
            continue
        pieces.append(text[pos:start])
        pieces.append(repl(match))
        pos = match.end()
    if not pieces:
        return text
    pieces.append(text[pos:])
    return "".join(pieces)


def _form_mask(m: re.Match[str]) -> str:
    return f"{m['key']}{m['eq']}{_MASK if m['value'] else ''}"


def _json_mask(m: re.Match[str]) -> str:
    return f"{m['key']}{m['vq']}{_MASK}{m['vq']}"


def _redact_slow(text: str) -> str:
    """Both patterns over the whole text: what :func:`redact_text` does, the slow way (tests compare them)."""
    text = _FORM_SECRET.sub(_form_mask, text)
    return _JSON_SECRET.sub(_json_mask, text)


def redact_text(text: str) -> str:
    """Mask secret values inside a form body, query string, URL, JSON text or message."""
    # Every match of either pattern begins at one of the secret keys (the JSON one a quote before it): find
    # the keys with str.find on the folded text and try the patterns only there. The patterns still decide,
    # so the result is that of sub() over the whole text, at a fraction of its cost.
    low = _folded(text)
    if low is None:
        return _redact_slow(text)
    if "_token" not in low and "auth" not in low and "client_secret" not in low:
        return text
    text = _sub_at(_FORM_SECRET, text, _starts(low, _FORM_KEYS), _form_mask)
    if '"' not in text and "'" not in text:
        return text  # the JSON pattern needs a quote
    low = _folded(text)
    if low is None:
        return _JSON_SECRET.sub(_json_mask, text)
    quoted = [at - 1 for at in _starts(low, _TOKEN_KEYS) if at > 0 and text[at - 1] in "\"'"]
    return _sub_at(_JSON_SECRET, text, quoted, _json_mask)


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
