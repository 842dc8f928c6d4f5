"""Clauses 1 and 2: a handler accepts every shape a real portal sends, and what real portals vary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contract_tests.clauses._docs import EVENTS, ON_SESSION_START
from contract_tests.clauses._registry import clause
from contract_tests.judging import describe_answers

if TYPE_CHECKING:
    from contract_tests.judging import ClauseContext, Site
    from mock_portal.events import BuiltEvent

_LIST_SHAPES = ("docs-2024", "docs-2026")
# a line name with unicode, reserved URL and form characters and an emoji
TRICKY_TEXT = "Линия «Поддержка» & Co = 100% #1 ?/+;~ 😀 \"quoted\" 'single'"


@clause(
    "accepts-every-shape",
    number="1",
    level="MUST",
    events=["ONSESSIONSTART"],
    title="accepts every OnSessionStart shape in both auth modes",
    expected="a 2xx answer to every shape (source-2024, docs-2024, docs-2026) in user and system mode",
    evidence="events arrive form-encoded with every scalar a string, in user mode (with the user's "
    "access_token) or system mode (without one); OnSessionStart's data has three known shapes: the "
    "module source's, the 2024 doc page's and the 2026 doc page's",
    doc=ON_SESSION_START,
    _builtin=True,
)
def accepts_every_shape(ctx: ClauseContext) -> str:
    """Accepts: any 2xx answer, whatever its body, however the connection ends after it.

    Refuses: any other answer (4xx, 5xx, a reset, no answer within the timeout) to a valid OnSessionStart of
    a configured shape, in either auth mode.

    Evidence: the portal sends form-encoded bodies with string scalars (facts §1), in user and system mode
    (facts §2), and OnSessionStart has three known shapes (facts §3, the doc page's two revisions).
    """
    site = ctx.site()
    sent = [
        ctx.deliver(site, ctx.build(site, auth, shape=shape), label=f"{shape}, {auth} mode", focus=("data",))
        for shape in ctx.config.shapes
        for auth in ("user", "system")
    ]
    bad = [ex for ex in sent if not ex.ok]
    if bad:
        ctx.explain_modes(bad)
        ctx.fail(f"{len(bad)} of {len(sent)} valid events not answered 2xx: {describe_answers(bad)}", bad)
    return f"{len(sent)} valid events answered 2xx"


@clause(
    "tolerates-variation",
    number="2",
    level="MUST",
    title="tolerates what real portals vary",
    expected="a 2xx answer without event_handler_id or server_endpoint, with unknown keys at every level, in "
    "system mode, with several DATA items and with unicode and reserved characters",
    evidence="real bodies often lack event_handler_id, lacked server_endpoint for weeks in late 2024, gain "
    "keys over time and carry any text; a handler must not depend on what a portal may leave out",
    doc=EVENTS,
    _builtin=True,
)
def tolerates_variation(ctx: ClauseContext) -> str:
    """Accepts: a 2xx answer to each variant of a valid event (the handler may ignore what it does not use).

    Refuses: any other answer to a variant: a missing ``event_handler_id`` or ``server_endpoint``, unknown
    keys at every level, system mode, several ``data[DATA]`` items, unicode and reserved characters in text,
    a REST connector id with dots and dashes.

    Evidence: ``event_handler_id`` is absent from captures up to 2024 (facts §1); ``server_endpoint`` was
    missing in late 2024 (facts §2); PHP form encoding carries any text (facts §1).
    """
    site = ctx.site()
    variants = (
        session_start_variants(ctx, site) if ctx.event == "ONSESSIONSTART" else sibling_variants(ctx, site)
    )
    sent = [ctx.deliver(site, event, label=label, focus=focus) for label, event, focus in variants]
    bad = [ex for ex in sent if not ex.ok]
    if bad:
        server_errors = sum(1 for ex in bad if ex.status is not None and ex.status >= 500)
        why = f" ({server_errors} with a 5xx)" if server_errors else ""
        ctx.explain_modes(bad)
        ctx.fail(
            f"{len(bad)} of {len(sent)} real-world variants not answered 2xx{why}: {describe_answers(bad)}",
            bad,
        )
    return f"{len(sent)} variants answered 2xx"


Variant = tuple[str, "BuiltEvent", tuple[str, ...]]


def session_start_variants(ctx: ClauseContext, site: Site) -> list[Variant]:
    """What real portals vary, in OnSessionStart's shapes."""
    shapes = ctx.config.shapes
    shape = shapes[0]
    list_shape = next((s for s in shapes if s in _LIST_SHAPES), None)
    named_shape = next((s for s in shapes if s != "docs-2026"), None)
    item = "data.DATA" if shape == "source-2024" else "data.DATA.0"
    extra = {
        "x_contract_extra": "top",
        "data.x_contract_extra": "data",
        f"{item}.x_contract_extra": "item",
        f"{item}.connector.x_contract_extra": "connector",
        f"{item}.chat.x_contract_extra": "chat",
        "auth.x_contract_extra": "auth",
    }
    build = site.events.session_start
    variants: list[Variant] = [
        ("no event_handler_id", build(shape=shape, event_handler_id=False), ("data",)),
        ("no server_endpoint", build(shape=shape, overrides=["del:auth.server_endpoint"]), ("data",)),
        (
            "no server_endpoint, system mode",
            build(shape=shape, auth="system", overrides=["del:auth.server_endpoint"]),
            ("data",),
        ),
        ("unknown keys at every level", build(shape=shape, overrides=extra), ("data", "x_contract_extra")),
    ]
    if list_shape is not None:
        variants.append(("three items in data[DATA]", build(shape=list_shape, items=3), ("data.DATA",)))
    if named_shape is not None:
        line = "data.DATA.line.name" if named_shape == "source-2024" else "data.DATA.0.line.name"
        variants.append(
            (
                "unicode and reserved characters in the line name",
                build(shape=named_shape, line_name=TRICKY_TEXT),
                (line,),
            )
        )
    connector = "data.DATA.connector" if shape == "source-2024" else "data.DATA.0.connector"
    variants.append(
        (
            "a REST connector id with dots and dashes",
            build(shape=shape, connector_id="acme.chat-bridge_v2"),
            (connector,),
        )
    )
    return variants


def sibling_variants(ctx: ClauseContext, site: Site) -> list[Variant]:
    """What real portals vary, in the shape of an event other than OnSessionStart."""
    from mock_portal.events import event_spec

    spec = event_spec(ctx.event)
    sample = ctx.build(site).payload.get("data")
    extra: dict[str, str] = {"x_contract_extra": "top", "auth.x_contract_extra": "auth"}
    if isinstance(sample, dict):
        extra["data.x_contract_extra"] = "data"
        for key in ("DATA", "MESSAGES"):
            items = sample.get(key)
            if isinstance(items, list) and items and isinstance(items[0], dict):
                extra[f"data.{key}.0.x_contract_extra"] = "item"
    variants: list[Variant] = [
        ("no event_handler_id", ctx.build(site, event_handler_id=False), ("data",)),
        ("no server_endpoint", ctx.build(site, overrides=["del:auth.server_endpoint"]), ("data",)),
        ("unknown keys at every level", ctx.build(site, overrides=extra), ("data", "x_contract_extra")),
    ]
    if "system" in spec.auth_modes:
        variants.append(("system mode", ctx.build(site, "system"), ("data",)))
        variants.append(
            (
                "no server_endpoint, system mode",
                ctx.build(site, "system", overrides=["del:auth.server_endpoint"]),
                ("data",),
            )
        )
    if "message_text" in spec.text_fields:
        variants.append(
            (
                "unicode and reserved characters in the message text",
                ctx.build(site, message_text=TRICKY_TEXT),
                ("data",),
            )
        )
    return variants
