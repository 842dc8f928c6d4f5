"""What the views keep and do besides answering: the installations, the bodies already seen, and the REST
calls back to the portal, made on worker threads after the answer has gone.

Kept in memory, per process: a project served by several processes keeps installations in its database
(a model keyed by ``member_id``) and the work on a task queue instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

log = logging.getLogger("b24_handler.django")

GREETING = "Hello! Thank you for writing to us. An operator will answer you shortly."


@dataclass
class Installation:
    """What ONAPPINSTALL brought for one portal (one ``member_id``)."""

    application_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    client_endpoint: str | None = None
    domain: str | None = None

    def accepts(self, given: str) -> bool:
        """Whether ``given`` is this installation's ``application_token`` (compared in constant time)."""
        return hmac.compare_digest(given.encode("utf-8"), self.application_token.encode("utf-8"))


class Installations:
    """Installations by ``member_id``."""

    def __init__(self) -> None:
        self._by_member: dict[str, Installation] = {}
        self._lock = threading.Lock()

    def get(self, member_id: str) -> Installation | None:
        with self._lock:
            return self._by_member.get(member_id)

    def put(self, member_id: str, installation: Installation) -> None:
        with self._lock:
            self._by_member[member_id] = installation

    def forget(self, member_id: str) -> None:
        with self._lock:
            self._by_member.pop(member_id, None)


class Seen:
    """The digests of the last ``size`` bodies: the portal may deliver one event twice."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._digests: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, body: bytes) -> bool:
        digest = hashlib.sha256(body).digest()
        with self._lock:
            if digest in self._digests:
                return False
            self._digests[digest] = None
            if len(self._digests) > self._size:
                self._digests.popitem(last=False)
            return True


installations = Installations()
seen = Seen()
_workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="b24-rest")
_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def greet_later(client_endpoint: str, access_token: str, chat_ids: list[str]) -> None:
    """Queue one greeting per new session; the view answers without waiting for them."""
    for chat_id in chat_ids:
        _workers.submit(_greet, client_endpoint, access_token, chat_id)


def _greet(client_endpoint: str, access_token: str, chat_id: str) -> None:
    url = client_endpoint.rstrip("/") + "/im.message.add.json"
    params = {"DIALOG_ID": f"chat{chat_id}", "MESSAGE": GREETING, "auth": access_token}
    try:
        reply = _session().post(url, data=params, timeout=10)
        answer = reply.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning("im.message.add to chat%s failed: %s", chat_id, type(exc).__name__)
        return
    if reply.status_code >= 400 or not isinstance(answer, dict) or "error" in answer:
        # an expired_token here means: refresh with the stored refresh_token and try once more
        error = answer.get("error", "") if isinstance(answer, dict) else "not JSON"
        log.warning("im.message.add to chat%s: HTTP %d %s", chat_id, reply.status_code, error)
