"""Secrets replaced by stable placeholders in recorded bodies, answers and headers (``mock-portal record``).

Unlike :mod:`mock_portal.redact` (which masks secrets as ``***`` for messages), a scrubber keeps a recording
replayable: each distinct secret becomes a placeholder of its own kind, the same everywhere it appears
(``redacted-application_token-1``), so a recording still shows that two events carried the same token. The
secret values themselves are kept in memory only, never written.

What counts as a secret: the value of any key named ``access_token``, ``refresh_token``,
``application_token``, ``client_secret``, ``auth`` (the REST token parameter), or whose name contains
``token``, ``secret`` or ``password``, at any depth of a form body (PHP brackets, facts §1), a query string
or a JSON document. Once seen, a secret is also replaced wherever else it appears, in any of the encodings a
handler could echo it in: raw, percent-encoded, hex, base64 (standard and URL-safe) and JSON-escaped.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from typing import Final
from urllib.parse import quote, quote_plus, unquote_plus

__all__ = ["Scrubber", "is_secret_key"]

_EXACT: Final = frozenset({"access_token", "refresh_token", "application_token", "client_secret", "auth"})
_PARTS: Final = ("token", "secret", "password", "passwd")
# a secret this short could be any word of a body: it is replaced only where its key says it is one
_MIN_ECHO_LENGTH: Final = 8
_LAST_KEY: Final = re.compile(r"\[([^\[\]]*)\]$")
# "key": "value" in JSON text; the key is judged by is_secret_key
_JSON_PAIR: Final = re.compile(rb'"(?P<key>[A-Za-z0-9_\-]{1,64})"\s*:\s*"(?P<value>(?:[^"\\]|\\.){1,4096})"')
# key=value inside arbitrary text; the key may carry PHP brackets, plain or percent-encoded
_TEXT_PAIR: Final = re.compile(rb"(?P<key>[A-Za-z0-9_%\[\]\-]{1,200})=(?P<value>[^&\s\"'<>]{0,4096})")
# base64 text long enough to hide a secret (standard or URL-safe alphabet, padding optional)
_BASE64_RUN: Final = re.compile(rb"[A-Za-z0-9+/_\-]{16,}={0,2}")
_SECRET_HEADERS: Final = ("authorization", "cookie", "set-cookie", "proxy-authorization")


def is_secret_key(name: str) -> bool:
    """Whether a key (the last segment of a PHP bracket name, a JSON key, a header) names a secret."""
    lowered = name.strip().lower()
    return lowered in _EXACT or any(part in lowered for part in _PARTS)


def _last_key(name: str) -> str:
    found = _LAST_KEY.search(name)
    return found.group(1) if found else name


def _kind(name: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "secret"


def _encodings(value: str) -> Iterator[bytes]:
    raw = value.encode("utf-8")
    yield raw
    yield quote_plus(value, safe="").encode("ascii")
    yield quote(value, safe="").encode("ascii")
    yield binascii.hexlify(raw)
    yield binascii.hexlify(raw).upper()
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        yield encoded
        yield encoded.rstrip(b"=")
    yield json.dumps(value)[1:-1].encode("ascii")


class Scrubber:
    """Replaces secrets with stable placeholders; one per recording (see the module docstring)."""

    def __init__(self) -> None:
        self._placeholders: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        # every encoding of every secret long enough to be searched for, longest first
        self._needles: list[tuple[bytes, bytes]] = []

    @property
    def placeholders(self) -> list[str]:
        """The placeholders handed out so far, in order."""
        return list(self._placeholders.values())

    def placeholder(self, kind: str, value: str) -> str:
        """The placeholder of ``value`` (a new one, numbered per kind, the first time it is seen)."""
        found = self._placeholders.get(value)
        if found is not None:
            return found
        kind = _kind(kind)
        self._counts[kind] = self._counts.get(kind, 0) + 1
        made = f"redacted-{kind}-{self._counts[kind]}"
        self._placeholders[value] = made
        if len(value) >= _MIN_ECHO_LENGTH:
            marker = made.encode("ascii")
            self._needles.extend((needle, marker) for needle in set(_encodings(value)) if needle)
            self._needles.sort(key=lambda pair: len(pair[0]), reverse=True)
        return made

    # -------------------------------------------------------------------------------- by key

    def _form_pairs(self, data: bytes) -> bytes:
        pieces = []
        for pair in data.split(b"&"):
            name_raw, eq, value_raw = pair.partition(b"=")
            name = unquote_plus(name_raw.decode("latin-1"), encoding="utf-8", errors="replace")
            key = _last_key(name)
            if eq and value_raw and is_secret_key(key):
                value = unquote_plus(value_raw.decode("latin-1"), encoding="utf-8", errors="surrogateescape")
                pair = name_raw + b"=" + self.placeholder(key, value).encode("ascii")
            pieces.append(pair)
        return b"&".join(pieces)

    def _json_pairs(self, data: bytes) -> bytes:
        """``"key": "value"`` pairs (JSON documents, JSON inside other text) with secret values replaced."""

        def swap(match: re.Match[bytes]) -> bytes:
            key = match.group("key").decode("ascii")
            if not is_secret_key(key):
                return match.group(0)
            try:
                value = json.loads(b'"' + match.group("value") + b'"')
            except ValueError:
                value = match.group("value").decode("utf-8", "replace")
            marker = self.placeholder(key, str(value)).encode("ascii")
            return match.group(0)[: match.start("value") - match.start()] + marker + b'"'

        return _JSON_PAIR.sub(swap, data)

    def _text_pairs(self, data: bytes) -> bytes:
        """``key=value`` pairs inside any text (an error page echoing a form, a log line)."""

        def swap(match: re.Match[bytes]) -> bytes:
            name = unquote_plus(match.group("key").decode("latin-1"))
            if not is_secret_key(_last_key(name)) or not match.group("value"):
                return match.group(0)
            value = unquote_plus(match.group("value").decode("latin-1"), encoding="utf-8", errors="replace")
            return match.group("key") + b"=" + self.placeholder(_last_key(name), value).encode("ascii")

        return _TEXT_PAIR.sub(swap, data)

    # -------------------------------------------------------------------------------- public

    def scrub(self, data: bytes, content_type: str = "") -> bytes:
        """``data`` (a body or query string) with every secret replaced; learns the secrets it carries."""
        if not data:
            return data
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind == "application/x-www-form-urlencoded" or (not kind and data[:1] not in (b"{", b"[", b"<")):
            data = self._form_pairs(data)
        else:
            data = self._text_pairs(data)
        return self.echoes(self._json_pairs(data))

    def echoes(self, data: bytes) -> bytes:
        """``data`` with every known secret replaced, in each encoding it may take.

        A secret inside a larger base64 text (a handler that echoes the whole body encoded) is not a substring
        of it: every base64 run that decodes to something holding a secret is replaced as a whole.
        """
        if not self._needles:
            return data
        data = _BASE64_RUN.sub(self._encoded_run, data)
        for needle, marker in self._needles:
            if needle in data:
                data = data.replace(needle, marker)
        return data

    def _encoded_run(self, match: re.Match[bytes]) -> bytes:
        run = match.group(0)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = decode(run + b"=" * (-len(run) % 4))
            except (binascii.Error, ValueError):
                continue
            for needle, marker in self._needles:
                if len(needle) >= _MIN_ECHO_LENGTH and needle in decoded:
                    return b"redacted-base64-of-" + marker
        return run

    def header(self, name: str, value: str) -> str:
        """A header's value as recorded: secret headers by placeholder, others with known secrets replaced."""
        if name.lower() in _SECRET_HEADERS or is_secret_key(name):
            return self.placeholder(name, value) if value else value
        return self.echoes(value.encode("utf-8", "surrogateescape")).decode("utf-8", "replace")
