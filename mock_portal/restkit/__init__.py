"""Standalone pieces of the portal's REST behaviour, free of any portal state or transport.

- :mod:`~mock_portal.restkit.limits`: the per-portal request-rate limiter (a leaky bucket with the cloud
  plans' defaults, ``QUERY_LIMIT_EXCEEDED``, 503) and the per-method time budget (``time.operating``,
  ``operating_reset_at``, ``OPERATION_TIME_LIMIT``, 429), both driven by an injected ``now()``.
- :mod:`~mock_portal.restkit.paging`: list pages of 50 with ``start``, ``next`` and ``total``.
- :mod:`~mock_portal.restkit.batch`: ``batch`` with ``halt``, ``$result[...]`` / ``$next[...]`` substitution,
  at most 50 commands and a per-command ``result_error``, over any callable that executes one method.

Each refusal is a :class:`RestError` carrying Bitrix's ``code``, ``description`` and HTTP ``status``, the same
three fields the REST layer's own errors carry, so a caller renders it as ``{"error", "error_description"}``.

Where the REST layer calls them: ``RateLimiter.hit(portal.domain)`` once per HTTP request before anything else
(a ``batch`` is one request); ``MethodBudget.check(key, method)`` before a method runs and
``MethodBudget.measure(key, method, start, finish)`` for its ``time`` block (``key``: the app's client_id or
the webhook); a list method returns ``page(items, params.get("start")).envelope()`` merged into its answer;
``batch`` is ``run_batch(params, execute)`` with ``execute(method, params)`` running one method and returning
its status and envelope.
"""

from __future__ import annotations

from mock_portal.restkit.batch import MAX_BATCH_COMMANDS, Outcome, Reply, run_batch
from mock_portal.restkit.errors import RestError
from mock_portal.restkit.limits import (
    PLANS,
    MethodBudget,
    Plan,
    RateLimiter,
    time_block,
)
from mock_portal.restkit.paging import PAGE_SIZE, Page, page, parse_start

__all__ = [
    "MAX_BATCH_COMMANDS",
    "PAGE_SIZE",
    "PLANS",
    "MethodBudget",
    "Outcome",
    "Page",
    "Plan",
    "RateLimiter",
    "Reply",
    "RestError",
    "page",
    "parse_start",
    "run_batch",
    "time_block",
]
