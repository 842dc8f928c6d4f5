"""Recording what a run delivered: each delivery as a masked :class:`~contract_tests.verdicts.Exchange`, the
exact bodies and answers behind them, the views a report shows and the curl line that replays one.

The :class:`Recorder` is owned by :class:`~contract_tests.engine.ContractRun`. It holds the run's masker
and teaches it every secret the run's portals issue (access and refresh tokens, application tokens, client
secrets), so nothing it renders shows one: views and curl lines are built when first read, masked with every
secret known by then.
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract_tests.judging import Site, mapping_path
from contract_tests.masking import Masker
from contract_tests.verdicts import Exchange
from mock_portal.errors import UsageError
from mock_portal.redact import redact, redact_text

if TYPE_CHECKING:
    from contract_tests.config import ContractConfig
    from mock_portal.delivery import Attempt, Target

__all__ = ["FORM", "Recorder", "access_token", "body_of", "focus_view"]

FORM = "application/x-www-form-urlencoded"
_SHOWN_BODY = 400
_SHOWN_ANSWER = 300
_INLINE_CURL_BODY = 4096
_KEPT_BODY = 1 << 20
_PREFIX_BYTES = 2048  # what is kept of a larger body to show


class Recorder:
    """What a run delivered and what it answered: the exchanges in order (and the site each was delivered
    at), the bodies (up to 1 MiB each) and answers kept for them, and the masker every output goes through.

    ``target`` and ``install_target`` are where events and ONAPPINSTALL go (the curl lines point there);
    ``sites`` is the run's list of portals, read to teach the masker their secrets; ``lock`` is the run's.
    """

    def __init__(
        self,
        config: ContractConfig,
        target: Target,
        install_target: Target,
        sites: list[Site],
        lock: threading.RLock,
    ) -> None:
        self.config = config
        self.target = target
        self.install_target = install_target
        self.masker = Masker([config.application_token or ""])
        self.sites = sites
        self._lock = lock
        self.exchanges: list[Exchange] = []
        """Every delivery so far, in order (masked)."""
        self.site_of: dict[int, Site] = {}
        """Delivery serial -> the site it was delivered at."""
        self._bodies: dict[int, bytes] = {}
        self._answers: dict[int, bytes] = {}
        self._serials = 0
        self._secrets_seen: dict[str, int] = {}
        self._sites_masked: set[tuple[int, bool]] = set()

    def record(
        self,
        site: Site,
        attempt: Attempt,
        data: bytes,
        label: str,
        kind: str,
        clause: str,
        event: str,
        auth: str,
        focus: Sequence[str],
        content_type: str,
        generator: str | None,
        concurrent: bool = False,
    ) -> Exchange:
        """Record one delivery at ``site`` as an exchange (masked), keeping its body and its answer."""
        mask = self.masker
        with self._lock:
            self._serials += 1
            serial = self._serials
        answer = getattr(attempt, "response", b"") or b""
        # masked whole, then cut: a token cut in half would escape both the masker and key-based redaction
        shown = mask(answer.decode("utf-8", "replace"))[:_SHOWN_ANSWER] if answer else ""
        ex = Exchange(
            serial=serial,
            label=label,
            url=mask(attempt.target if self.target.kind == "http" else self.install_target.url)
            if kind == "install"
            else mask(self.target.url),
            sent_bytes=len(data),
            outcome=attempt.outcome,
            status=attempt.status,
            latency_ms=attempt.latency_ms,
            response=mask(shown),
            error=mask(attempt.error) if attempt.error else None,
            views=self._views_of(data, content_type, focus, generator, kind),
            valid=kind == "valid",
            event=event,
            kind=kind,
            clause=clause,
            auth=auth,
            portal=site.domain,
            concurrent=concurrent,
        )
        with self._lock:
            self.exchanges.append(ex)
            self.site_of[serial] = site
            if len(data) <= _KEPT_BODY:
                self._bodies[serial] = data
            if answer:
                self._answers[serial] = bytes(answer)
        site.delivered.append(ex)
        return ex

    def _views_of(
        self, data: bytes, content_type: str, focus: Sequence[str], generator: str | None, kind: str
    ) -> Callable[[], tuple[str, str]]:
        """What builds an exchange's ``sent`` and ``reproduce`` when they are first read, masked with every
        secret known by then. A body too large to keep is seen by its first bytes and its size."""
        mask = self.masker
        size = len(data)
        kept = data if size <= _KEPT_BODY else data[:_PREFIX_BYTES]

        def views() -> tuple[str, str]:
            return (
                mask(focus_view(kept, content_type, focus, mask, size)),
                mask(self._curl(kept, content_type, generator, kind, size=size)),
            )

        return views

    def answer_of(self, exchange: Exchange) -> bytes:
        """The whole answer to ``exchange`` (see :meth:`ClauseContext.answer_of`)."""
        with self._lock:
            return self._answers.get(exchange.serial, b"")

    def _curl(
        self,
        data: bytes,
        content_type: str,
        generator: str | None,
        kind: str,
        file: str = "",
        size: int | None = None,
    ) -> str:
        """A curl line for ``data`` (of ``size`` bytes in all: ``data`` may be only its first bytes)."""
        size = len(data) if size is None else size
        url = (self.install_target if kind == "install" else self.target).url
        if self.target.kind != "http":
            return "(an in-process handler has no URL to curl: re-run the clause instead)"
        head = f"curl -sS -i -X POST -H {shlex.quote('Content-Type: ' + content_type)}"
        if file:
            return f"{head} --data-binary @{shlex.quote(file)} {shlex.quote(url)}"
        if generator is not None:
            return f"{generator} | {head} --data-binary @- {shlex.quote(url)}"
        if size > _INLINE_CURL_BODY:
            return (
                f"{head} --data-binary @BODY {shlex.quote(url)}  "
                f"(a {size}-byte body; --save-bodies DIR keeps it in a file)"
            )
        masked = self.masker(data.decode("utf-8", "replace"))
        if len(masked) > _INLINE_CURL_BODY or not masked.isprintable():
            return (
                f"{head} --data-binary @BODY {shlex.quote(url)}  "
                f"(a {size}-byte body; --save-bodies DIR keeps it in a file)"
            )
        return f"{head} --data-binary {shlex.quote(masked)} {shlex.quote(url)}"

    def keep_body(self, ex: Exchange) -> Exchange:
        """Write the exact body of a failing exchange to ``bodies_dir`` (owner-only) and point its curl line
        at that file: a replay with the run's real values that never prints them."""
        import dataclasses

        data = self._bodies.get(ex.serial)
        if data is None or ex.body_file or self.target.kind != "http":
            return ex
        folder = Path(self.config.bodies_dir or ".")
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = folder / f"{ex.clause or 'exchange'}-{ex.serial}.body"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        except OSError as exc:
            raise UsageError(f"cannot keep the failing bodies in {str(folder)!r}: {exc.strerror}") from None
        reproduce = self.masker(self._curl(data, FORM, None, ex.kind, str(path)))
        sent = ex.sent
        return dataclasses.replace(ex, views=lambda: (sent, reproduce), body_file=str(path))

    def collect_secrets(self) -> None:
        """Teach the masker every token the run's portals issued so far (and app tokens and secrets)."""
        found: list[str] = []
        for site in list(self.sites):
            portal = site.portal
            tokens = list(portal.tokens.values())
            seen = self._secrets_seen.get(portal.domain, -1)
            if seen == len(tokens) + len(portal.apps):
                continue
            self._secrets_seen[portal.domain] = len(tokens) + len(portal.apps)
            for app in list(portal.apps.values()):
                found += [app.application_token, app.client_secret]
            for token in tokens:
                found.append(token.access_token)
                if token.refresh_token:
                    found.append(token.refresh_token)
        self.masker.add(*found)
        for site in list(self.sites):
            # a stranger's events carry a made-up token: masked, but echoing it leaks nothing
            key = (id(site), site.installed)
            if key not in self._sites_masked:
                self._sites_masked.add(key)
                self.masker.add(site.events.application_token, leak=site.installed)

    def secret_kind(self, secret: str) -> str:
        """What ``secret`` is, by where the run keeps it."""
        if secret == self.config.application_token:
            return "application_token"
        for site in self.sites:
            portal = site.portal
            for app in list(portal.apps.values()):
                if secret == app.application_token:
                    return "application_token"
                if secret == app.client_secret:
                    return "client_secret"
            if secret in portal.tokens:
                return "access_token"
            if any(t.refresh_token == secret for t in list(portal.tokens.values())):
                return "refresh_token"
        return "a token"


# ------------------------------------------------------------------------------------------------ helpers


def body_of(body: Any) -> tuple[bytes, str, str]:
    """(bytes, auth mode, event name) of what a clause delivers."""
    if isinstance(body, bytes):
        return body, "", ""
    if isinstance(body, str):
        return body.encode("utf-8"), "", ""
    text = body.body()
    return text.encode("utf-8"), str(body.auth), str(body.event)


def access_token(data: bytes) -> str | None:
    marker = b"auth%5Baccess_token%5D="
    at = data.find(marker)
    if at < 0:
        return None
    end = data.find(b"&", at)
    value = data[at + len(marker) : end if end >= 0 else len(data)]
    return value.decode("ascii", "replace") or None


def focus_view(
    data: bytes,
    content_type: str,
    focus: Sequence[str],
    mask: Callable[[str], str] = redact_text,
    size: int | None = None,
) -> str:
    """The part of a body that matters: the event, the auth block and the focused ``data`` paths (or a short
    ``data`` excerpt); for a body that is not a form, its first bytes. ``size``: the whole body's length,
    when ``data`` is only its first bytes."""
    size = len(data) if size is None else size
    import json

    from mock_portal.errors import WireError
    from mock_portal.wire import decode

    payload: Mapping[str, Any] | None = None
    if content_type.startswith(FORM) and data and data[:1] != b"{" and size <= _KEPT_BODY:
        try:
            decoded = decode(data)
        except (WireError, UnicodeDecodeError, ValueError):
            decoded = None
        if isinstance(decoded, Mapping) and "event" in decoded:
            payload = decoded
    if payload is None:
        # masked, then cut (a prefix well past any token's length is enough for 120 characters)
        head = mask(data[:2048].decode("utf-8", "backslashreplace"))[:120]
        more = f" ... ({size} bytes in all)" if size > 120 else ""
        kind = "JSON" if data[:1] == b"{" else ("empty" if not data else "not a form")
        return f"body ({kind}): {head!r}{more}"

    def compact(value: Any, limit: int = _SHOWN_BODY) -> str:
        # masked whole, then cut (a token cut in half would escape the masker)
        text = mask(json.dumps(redact(value), ensure_ascii=False, separators=(", ", ": ")))
        return text if len(text) <= limit else text[: limit - 3] + "..."

    auth = payload.get("auth")
    mode = "user mode" if isinstance(auth, Mapping) and "access_token" in auth else "system mode"
    lines = [f"event: {payload.get('event')} ({mode})"]
    handler_id = payload.get("event_handler_id")
    lines.append(f"event_handler_id: {handler_id if handler_id is not None else '(absent)'}")
    lines.append(f"auth: {compact(auth, 2 * _SHOWN_BODY)}")
    for path in focus or ("data",):
        value = mapping_path(payload, path)
        lines.append(f"{path}: {compact(value) if value is not None else '(absent)'}")
    return "\n".join(lines)
