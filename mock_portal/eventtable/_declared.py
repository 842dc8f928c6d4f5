"""What the docs do not say about an event, declared once: its kind, shapes, auth modes, who receives it and
what makes the mock portal fire it.

Everything else (the page, the scope, who may subscribe, the schema) is derived from the docs by
``mock_portal.catalog``, which merges it with these declarations into ``schemas/index.json``, the event table
every other module reads (:mod:`mock_portal.eventtable`). An event the docs describe and nobody declared gets
the defaults of its family (:data:`FAMILIES`) and a builder driven by its derived schema.

This module is plain data: it imports nothing from the project, so the generator and the loader can both
read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

USER_AND_SYSTEM = ("user", "system")
USER = ("user",)
SYSTEM = ("system",)

KINDS = ("standard", "openlines", "connector", "app-lifecycle", "chat-bot", "offline", "telephony", "bizproc")
"""How an event's payload differs in kind: ``chat-bot`` bodies carry the bot's own tokens in ``data[BOT]``,
``offline`` announces the offline queue with an empty ``data`` and a ``refresh_token``, ``app-lifecycle``
events have their own token rules (facts §2), ``telephony`` events belong to a call's user."""

RECEIVERS = {
    "bound": "every installed app that bound the event",
    "connector-owner": "only the app that registered the connector",
    "bot-owner": "only the app that registered the chat bot",
    "installed-app": "the app being installed, updated or removed",
    "calling-app": "the app that called event.test",
    "offline-subscribers": "apps bound to offline events, in place of the events themselves",
}


@dataclass(frozen=True)
class Declared:
    """The declared facts of one event (or the defaults of a family)."""

    kind: str = "standard"
    shapes: tuple[str, ...] = ("docs",)
    """Shape names; each is the schema ``<event>/<shape>.json`` (and ``.strict.json``)."""
    default_shape: str = "docs"
    any_shape: str | None = None
    """The file the ``any`` shape points at when the event has a union of its own (``any`` for
    OnSessionStart); None: ``any`` is the default shape's schema."""
    auth_modes: tuple[str, ...] = USER_AND_SYSTEM
    receivers: str = "bound"
    trigger: str | None = None
    """What makes the mock portal send it (a REST method or a control route), None if nothing does yet."""
    builder: str = "derived"
    """``hand``: a builder written for the event (``mock_portal.siblings``, ``mock_portal.events``);
    ``derived``: built from its derived schema with realistic values for each field's type and name."""
    refresh_token: bool = False
    page: str | None = None
    """The doc page, for an event no page describes the handler side of (ONAPPTEST)."""
    notes: tuple[str, ...] = field(default=())


_OPENLINES_EXTERNAL = "imconnector.send.messages (a client writes in) or POST /_portal/sessions"

DECLARED: dict[str, Declared] = {
    # facts §3: three shapes; the docs limit it to the connector's owner, the source does not
    "ONSESSIONSTART": Declared(
        kind="openlines",
        shapes=("source-2024", "docs-2024", "docs-2026"),
        default_shape="docs-2026",
        any_shape="any",
        builder="hand",
        trigger=_OPENLINES_EXTERNAL,
    ),
    "ONSESSIONFINISH": Declared(
        kind="openlines", builder="hand", trigger="POST /_portal/sessions/<id>/finish"
    ),
    "ONOPENLINEMESSAGEADD": Declared(kind="openlines", builder="hand", trigger="POST /_portal/messages"),
    "ONOPENLINEMESSAGEUPDATE": Declared(
        kind="openlines", builder="hand", trigger="POST /_portal/messages/<id>/update"
    ),
    "ONOPENLINEMESSAGEDELETE": Declared(
        kind="openlines", builder="hand", trigger="POST /_portal/messages/<id>/delete"
    ),
    # facts §3: the imconnector events go to the connector's owner only
    "ONIMCONNECTORDIALOGSTART": Declared(
        kind="connector", receivers="connector-owner", builder="hand", trigger=_OPENLINES_EXTERNAL
    ),
    "ONIMCONNECTORDIALOGFINISH": Declared(
        kind="connector",
        receivers="connector-owner",
        builder="hand",
        trigger="POST /_portal/sessions/<id>/finish",
    ),
    "ONIMCONNECTORMESSAGEADD": Declared(
        kind="connector", receivers="connector-owner", builder="hand", trigger="POST /_portal/messages"
    ),
    "ONIMCONNECTORMESSAGEUPDATE": Declared(
        kind="connector",
        receivers="connector-owner",
        builder="hand",
        trigger="POST /_portal/messages/<id>/update",
    ),
    "ONIMCONNECTORMESSAGEDELETE": Declared(
        kind="connector",
        receivers="connector-owner",
        builder="hand",
        trigger="POST /_portal/messages/<id>/delete",
    ),
    "ONIMCONNECTORSTATUSDELETE": Declared(
        kind="connector",
        receivers="connector-owner",
        builder="hand",
        trigger="imconnector.activate ACTIVE=0 or POST /_portal/connectors/<id>/deactivate",
    ),
    "ONIMCONNECTORLINEDELETE": Declared(
        kind="connector",
        receivers="connector-owner",
        builder="hand",
        trigger="POST /_portal/lines/<id>/delete",
    ),
    # facts §2, §4, §5: the install flow's own events and token rules
    "ONAPPINSTALL": Declared(
        kind="app-lifecycle",
        auth_modes=USER,
        receivers="installed-app",
        builder="hand",
        refresh_token=True,
        trigger="POST /_portal/apps (installing the app)",
    ),
    "ONAPPUPDATE": Declared(
        kind="app-lifecycle",
        auth_modes=USER,
        receivers="installed-app",
        builder="hand",
        trigger="POST /_portal/apps/<client_id>/update",
    ),
    "ONAPPUNINSTALL": Declared(
        kind="app-lifecycle",
        auth_modes=SYSTEM,
        receivers="installed-app",
        builder="hand",
        trigger="POST /_portal/apps/<client_id>/uninstall",
    ),
    # event.test works only with an application's OAuth token (test-handler.md): user mode
    "ONAPPTEST": Declared(
        kind="app-lifecycle",
        shapes=(),
        default_shape="any",
        auth_modes=USER,
        receivers="calling-app",
        builder="hand",
        trigger="event.test",
        page="api-reference/events/test-handler.md",
    ),
    # on-offline-event.md: data arrives empty (so vanishes on the wire, facts §1), auth carries refresh_token
    "ONOFFLINEEVENT": Declared(
        kind="offline",
        auth_modes=USER,
        receivers="offline-subscribers",
        refresh_token=True,
    ),
}
"""Events with facts of their own, by code."""

# the entities the portal keeps state for: each write through their REST methods fires its event
# (mock_portal.portal.crm, tasks, bots)
DECLARED.update(
    {
        f"ONCRM{entity.upper()}{change.upper()}": Declared(trigger=f"crm.{entity}.{change}")
        for entity in ("deal", "lead", "contact", "company")
        for change in ("add", "update", "delete")
    }
)
DECLARED.update(
    {
        f"ONTASK{change.upper()}": Declared(trigger=f"tasks.task.{change}")
        for change in ("add", "update", "delete")
    }
)
DECLARED.update(
    {
        "ONIMBOTMESSAGEADD": Declared(
            kind="chat-bot",
            receivers="bot-owner",
            trigger="im.message.add to the bot, imconnector.send.messages into its open-line chat, "
            "or POST /_portal/bots/<id>/messages",
        ),
        "ONIMBOTJOINCHAT": Declared(
            kind="chat-bot", receivers="bot-owner", trigger="POST /_portal/bots/<id>/join"
        ),
        "ONIMBOTDELETE": Declared(kind="chat-bot", receivers="bot-owner", trigger="imbot.unregister"),
    }
)

FAMILIES: tuple[tuple[str, Declared], ...] = (
    # "who can subscribe: a user of the app that registered the chat bot" (the chat-bot pages); the bot's own
    # tokens ride in data[BOT][<bot id>] (pages, captures/ONIMBOT*), the top-level auth in either mode
    ("ONIMBOT", Declared(kind="chat-bot", receivers="bot-owner")),
    ("ONIMCOMMANDADD", Declared(kind="chat-bot", receivers="bot-owner")),
    ("ONIMCONNECTOR", Declared(kind="connector", receivers="connector-owner")),
    ("ONAPP", Declared(kind="app-lifecycle", auth_modes=USER, receivers="installed-app")),
    # telephony events are raised by a call of a user (USER_ID on every page): user mode
    ("ONEXTERNALCALL", Declared(kind="telephony", auth_modes=USER)),
    ("ONVOXIMPLANT", Declared(kind="telephony", auth_modes=USER)),
)
"""Defaults by code prefix, first match wins; anything else is :data:`DEFAULT`."""

DEFAULT = Declared()


def declared(code: str) -> Declared:
    """The declared facts of ``code`` (upper case): its own, else its family's, else the defaults."""
    if code in DECLARED:
        return DECLARED[code]
    for prefix, facts in FAMILIES:
        if code.startswith(prefix):
            return facts
    return DEFAULT
