"""Clauses of your own app's obligations, registered next to the built-in ones (the README shows this file).

    mock-portal verify http://127.0.0.1:8080/ --events ONSESSIONSTART,ONIMCONNECTORMESSAGEADD \\
        --clauses examples.own_clauses

or, in pytest, ``--b24-clauses examples.own_clauses`` (or import it from your conftest).
"""

from contract_tests import clause

DOCS = "https://apidocs.bitrix24.com/"


@clause(
    "greets-in-own-chat",
    level="SHOULD",
    title="OnSessionStart is greeted in the event's own chat",
    expected="an im.message.add to the chat the event names",
    evidence="the client who opened the session is waiting in that chat",
    doc=DOCS + "api-reference/imopenlines/openlines/events/on-session-start.html",
    events=["ONSESSIONSTART"],
)
def greets_in_own_chat(ctx):
    site = ctx.site()  # a fresh portal where the handler is installed
    event = ctx.build(site, shape="docs-2026")  # a new session in that portal
    sent = ctx.deliver(site, event, focus=["data.DATA.0.chat"])
    chat = event.payload["data"]["DATA"][0]["chat"]["id"]
    greetings = [c for c in ctx.calls(sent) if c.method == "im.message.add"]
    assert greetings, f"no im.message.add after a new session (answer: {sent.short})"
    dialogs = {c.params.get("DIALOG_ID") for c in greetings}
    assert dialogs == {f"chat{chat}"}, f"greeted {sorted(dialogs)}, not chat{chat}"
    return f"greeted in chat{chat}"


@clause(
    "confirms-delivery",
    level="MUST",
    title="after OnImConnectorMessageAdd the connector confirms delivery of that message",
    expected="imconnector.send.status.delivery naming the event's chat and message",
    evidence="the operator sees the message as undelivered until the connector confirms it",
    doc=DOCS + "tutorials/openlines/example-connector.html",
    events=["ONIMCONNECTORMESSAGEADD"],
)
def confirms_delivery(ctx):
    site = ctx.site()
    event = ctx.build(site)  # an operator's message, in a chat of the app's own connector
    sent = ctx.deliver(site, event, focus=["data.MESSAGES"])
    im = event.payload["data"]["MESSAGES"][0]["im"]
    confirmed = [c for c in ctx.calls(sent) if c.method == "imconnector.send.status.delivery"]
    if not confirmed:
        ctx.fail("no imconnector.send.status.delivery after an operator's message", [sent])
    ids = [c.params["MESSAGES"][0]["im"] for c in confirmed]
    wanted = {"chat_id": str(im["chat_id"]), "message_id": str(im["message_id"])}
    assert any({k: i.get(k) for k in wanted} == wanted for i in ids), f"confirmed {ids}, not {wanted}"
    return f"message {im['message_id']} confirmed"
