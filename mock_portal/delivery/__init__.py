"""Delivery: sending an event body to a handler the way Bitrix24's queue server does, recording every attempt.

One engine, four kinds of target:

* a real ``http://`` / ``https://`` URL (a plain ``str`` or :class:`UrlTarget`), through ``aiohttp``, over
  a connection of its own per attempt;
* an ASGI app (:class:`AsgiTarget`), driven through ``httpx.ASGITransport`` on the delivery loop, with its
  lifespan run as a server runs it (startup before its first request, the state in every request's scope,
  shutdown when the deliverer closes);
* a WSGI app (:class:`WsgiTarget`), driven through ``httpx.WSGITransport`` in a handler thread;
* a Python callable (:class:`CallableTarget`), sync (in a handler thread) or async (on the loop).

Handler threads come from a bounded pool of daemon threads (``handler_threads``, 64 by default).

:class:`AsyncDeliverer` is the asyncio core; :class:`Deliverer` is the synchronous facade that owns an
event-loop thread, so the portal and tests can call :meth:`Deliverer.deliver` without asyncio. Both record
every attempt in a :class:`DeliveryLog` as an :class:`Attempt`, and neither ever raises because of what a
handler did: refused connections, hangs, resets, 5xx, huge or dripping responses all end within the attempt's
timeout as a recorded outcome. Only bad arguments (an unusable URL, a body of the wrong type, a timeout of 0)
raise, as :class:`~mock_portal.errors.UsageError`, before anything is sent.

What is sent, and why:

* one ``POST`` with ``Content-Type: application/x-www-form-urlencoded`` and the body exactly as given: it is
  the PHP ``http_build_query`` output of the event (facts §1), and delivery never re-encodes it;
* **a fresh connection per event**: the queue server makes one POST per (handler x event) (facts §1), so each
  attempt connects, sends, reads the answer and closes. No connection is kept for a later attempt, so a
  handler that closes connections after answering (HTTP/1.1 allows it, even without ``Connection: close``)
  is never blamed for a stale pooled connection: ``reset`` and ``refused`` are only ever the handler's doing;
* **no retries, ever**: a failed or slow delivery is logged and never resent (facts §1);
* **no redirects followed**: the queue server makes one POST per (handler x event) and ignores the response
  (facts §1); following a 301/302/303 would turn that POST into a GET without the body, so a 3xx is recorded
  as an ``http_error`` attempt like any other non-2xx answer [inferred: no redirect behaviour is documented];
* headers: ``Host``, ``User-Agent``, ``Content-Type``, ``Content-Length`` and nothing else (see
  :data:`DEFAULT_USER_AGENT` for the user agent).

Redaction: an :class:`Attempt` keeps the raw ``body`` bytes in memory so tests can assert on exactly what was
sent; every other text field (``target``, ``error``, ``reason``, ``response_excerpt``) is redacted when the
record is made, and every printed form (``str``, ``repr``, :meth:`Attempt.to_dict`, the JSONL file)
redacts the body too.

Layout: :mod:`~mock_portal.delivery.targets` (where to), :mod:`~mock_portal.delivery.records` (the attempts
and their log), :mod:`~mock_portal.delivery.engine` (:class:`AsyncDeliverer`) and
:mod:`~mock_portal.delivery.facade` (:class:`Deliverer`). Import every public name from this package.
"""

from __future__ import annotations

from mock_portal.delivery._common import (
    BITRIX24_OBSERVED_USER_AGENT,
    CONTENT_TYPE,
    DEFAULT_HANDLER_THREADS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    DEFAULT_USER_AGENT,
    OUTCOMES,
    Outcome,
)
from mock_portal.delivery.engine import AsyncDeliverer
from mock_portal.delivery.facade import Deliverer
from mock_portal.delivery.records import Attempt, Delivery, DeliveryLog
from mock_portal.delivery.targets import (
    AsgiTarget,
    CallableTarget,
    Target,
    UrlTarget,
    WsgiTarget,
    as_target,
)

__all__ = [
    "BITRIX24_OBSERVED_USER_AGENT",
    "CONTENT_TYPE",
    "DEFAULT_HANDLER_THREADS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_USER_AGENT",
    "OUTCOMES",
    "AsgiTarget",
    "AsyncDeliverer",
    "Attempt",
    "CallableTarget",
    "Deliverer",
    "Delivery",
    "DeliveryLog",
    "Outcome",
    "Target",
    "UrlTarget",
    "WsgiTarget",
    "as_target",
]
