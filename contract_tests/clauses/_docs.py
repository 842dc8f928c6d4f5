"""Doc pages the built-in clauses rest on (the English REST docs)."""

from __future__ import annotations

BASE = "https://apidocs.bitrix24.com/"
ON_SESSION_START = BASE + "api-reference/imopenlines/openlines/events/on-session-start.html"
EVENTS = BASE + "api-reference/events/index.html"
SAFE_HANDLERS = BASE + "api-reference/events/safe-event-handlers.html"
SECURITY = BASE + "settings/cloud-and-on-premise/security-recommendations.html"
QUEUE = BASE + "settings/performance/queue.html"
ON_APP_INSTALL = BASE + "api-reference/common/events/on-app-install.html"
OFFLINE_EVENTS = BASE + "api-reference/events/offline-events.html"
OFFLINE_GET = BASE + "api-reference/events/event-offline-get.html"
