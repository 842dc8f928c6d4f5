"""The inspector page (``GET /_portal/ui``), served by a real server and driven in real headless Chromium.

The browser tests click through a lifecycle against the bundled reference handler (install, start a session
from the page, see ONSESSIONSTART delivered and the handler's ``im.message.add`` recorded, send a message,
finish) and assert what the page shows: every wait is Playwright's wait for a condition on the page, never a
sleep. They skip only where no Chromium is installed (``apt-get install chromium``).
"""

from __future__ import annotations

import gc
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_portal.inspector import ASSETS
from mock_portal.server import PortalServer
from tests.conftest import REPO_ROOT

# Playwright's driver pipe is left to the garbage collector on some Pythons (3.10): its unclosed-socket
# warning is the browser driver's, not the page's or the server's
pytestmark = [
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    # the page is JavaScript in Chromium; the portal side it reads is tested on every Python elsewhere
    pytest.mark.once,
]

TOKEN = "inspector-control-token-0123456789"
LIFECYCLE_EVENTS = ("ONSESSIONSTART", "ONOPENLINEMESSAGEADD", "ONSESSIONFINISH")
XSS = "<img src=x onerror=\"document.title='owned'\">"
UI_DIR = REPO_ROOT / "mock_portal" / "ui"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000  # the longest Playwright waits for a condition (a bound on a hang, not a timing assertion)


# ---------------------------------------------------------------------------------------------- over HTTP


def test_the_page_and_its_files_are_served_without_the_token_and_the_data_only_with_it() -> None:
    with PortalServer(control_token=TOKEN) as server, httpx.Client(base_url=server.url) as client:
        page = client.get("/_portal/ui")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "img-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"
        assert '<script src="/_portal/ui/app.js" defer></script>' in page.text
        assert client.get("/_portal/ui/").text == page.text
        for name, media in ASSETS.items():
            answer = client.get(f"/_portal/ui/{name}")
            assert answer.status_code == 200, name
            assert answer.headers["content-type"] == media
            assert answer.content == (UI_DIR / name).read_bytes()
            assert TOKEN not in answer.text
        # the data stays behind the token
        assert client.get("/_portal/deliveries").status_code == 401
        assert client.get("/_portal/apps").status_code == 401
        authorized = client.get("/_portal/deliveries", headers={"authorization": f"Bearer {TOKEN}"})
        assert authorized.status_code == 200
        # anything else under /_portal/ui is a JSON refusal, never a file read by name
        for path in ("/_portal/ui/nope.js", "/_portal/ui/%2e%2e", "/_portal/ui/style.css%00"):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["error"] == "NOT_FOUND"
        assert client.post("/_portal/ui").status_code == 401  # only GET is open
        assert client.post("/_portal/ui", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 405
        # a path deeper than a file's matches no open route: the token is asked for, then nothing is found
        for path in ("/_portal/ui/..%2f..%2fpyproject.toml", "/_portal/ui/app.js/x"):
            assert client.get(path).status_code == 401, path
            answer = client.get(path, headers={"authorization": f"Bearer {TOKEN}"})
            assert answer.status_code == 404, path
            assert answer.json()["error"] == "NOT_FOUND"


def test_the_openapi_document_lists_the_page_as_open_and_html() -> None:
    with PortalServer(control_token=TOKEN) as server:
        document = httpx.get(
            server.url + "/_portal/openapi.json", headers={"authorization": f"Bearer {TOKEN}"}
        ).json()
    page = document["paths"]["/_portal/ui"]["get"]
    assert page["security"] == []
    assert list(page["responses"]["200"]["content"]) == ["text/html"]
    assets = document["paths"]["/_portal/ui/{asset}"]["get"]
    assert set(assets["responses"]["200"]["content"]) == {"text/javascript", "text/css"}
    assert "security" not in document["paths"]["/_portal/deliveries"]["get"]
    assert document["security"] == [{"control": []}]


def test_serve_prints_where_the_page_is() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_portal", "serve", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = {}
        for line in process.stdout:
            if line.startswith("serving"):
                break
            key, _, value = line.partition(" ")
            lines[key] = value.strip()
        assert lines["inspector"] == lines["url"] + "/_portal/ui"
        assert httpx.get(lines["inspector"], timeout=10).headers["content-type"].startswith("text/html")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_stopping_the_server_answers_a_pending_long_poll(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # an open inspector page always has a long poll pending: stopping answers it with what there is
    server = PortalServer().start()
    store = server.portal.records
    listening = threading.Event()
    listen = store.listen

    def listen_and_tell(callback: Any) -> None:
        listen(callback)
        listening.set()

    monkeypatch.setattr(store, "listen", listen_and_tell)
    answers: list[httpx.Response] = []
    url = server.url + "/_portal/deliveries?after=0&min=1&timeout=60"
    poll = threading.Thread(target=lambda: answers.append(httpx.get(url, timeout=90)))
    poll.start()
    try:
        assert listening.wait(30), "the long poll never started waiting"
    finally:
        server.stop()
        poll.join(timeout=90)
    assert [a.status_code for a in answers] == [200]
    assert answers[0].json() == []
    assert "Exception in ASGI application" not in caplog.text


def test_the_script_never_writes_html() -> None:
    # everything from the server goes in through textContent; CSP forbids inline script besides
    script = (UI_DIR / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "textContent" in script
    assert "sessionStorage" in script
    assert "localStorage" not in script


# ---------------------------------------------------------------------------------------------- in Chromium


def _chromium() -> str | None:
    configured = os.environ.get("B24_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium installed (apt-get install chromium), so the inspector page is not driven")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, chromium_sandbox=False, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            launched.close()
    # the driver's pipes left to the garbage collector are collected here, under this module's warning filter,
    # and not in whatever test runs next on this worker
    gc.collect()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # each test gets a fresh context: its own storage, as a new profile would have
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, errors


@pytest.fixture
def handler() -> Iterator[str]:
    """The bundled reference handler on a free loopback port; yields its URL."""
    from examples.python_handler import HandlerApp, HandlerConfig, make_server

    logger = logging.getLogger("b24_handler")
    level = logger.level
    logger.setLevel(logging.ERROR)
    app = HandlerApp(HandlerConfig()).start()
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        app.close()
        logger.setLevel(level)


def _install(server: PortalServer, handler_url: str, token: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    answer = httpx.post(
        server.url + "/_portal/apps",
        json={
            "install_url": handler_url + "install",
            "handlers": dict.fromkeys(LIFECYCLE_EVENTS, handler_url),
        },
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    installed: dict[str, Any] = answer.json()
    assert [d["outcome"] for d in installed["deliveries"]] == ["ok"]
    return installed


def _secrets(installed: dict[str, Any]) -> list[str]:
    return [installed[k] for k in ("client_secret", "application_token", "access_token", "refresh_token")]


def _row(page: Any, table: str, **data: str) -> Any:
    selector = "".join(f'[data-{k.replace("_", "-")}="{v}"]' for k, v in data.items())
    return page.locator(f"#{table} tbody tr{selector}")


def _body_of(row: Any) -> str:
    row.locator("summary").click()
    text: str = row.locator("pre.body").inner_text()
    return text


def test_a_lifecycle_clicked_through_the_page(page: Any, handler: str) -> None:
    from playwright.sync_api import expect

    with PortalServer() as server:
        portal = server.portal
        installed = _install(server, handler)
        page.goto(server.url + "/_portal/ui")
        expect(page.locator("#status")).to_have_text("live")
        # portals and apps
        expect(page.locator("#portals tbody tr")).to_have_count(1)
        expect(_row(page, "portals", domain=portal.domain)).to_contain_text(portal.member_id)
        expect(_row(page, "apps", client_id=installed["client_id"])).to_have_count(1)
        expect(_row(page, "deliveries", event="ONAPPINSTALL", outcome="ok")).to_have_count(1)

        # start a session from the page: OnSessionStart reaches the handler, which calls im.message.add
        page.click("#start-session")
        expect(page.locator("#action-result")).to_contain_text("started in chat")
        expect(page.locator("#action-result")).to_contain_text("1 delivery: ONSESSIONSTART ok")
        started = _row(page, "deliveries", event="ONSESSIONSTART", outcome="ok")
        expect(started).to_have_count(1)
        expect(started.locator("td.latency")).to_have_text(re.compile(r"^\d+\.\d$"))
        expect(_row(page, "calls", method="im.message.add")).to_have_count(1)
        # the handler's message lands in the Open Lines chat: the portal raises OnOpenLineMessageAdd for it
        expect(_row(page, "deliveries", event="ONOPENLINEMESSAGEADD", outcome="ok")).to_have_count(1)
        body = _body_of(started)
        assert f'"domain": "{portal.domain}"' in body
        assert '"application_token": "***"' in body
        assert '"access_token": "***"' in body
        call = _row(page, "calls", method="im.message.add")
        expect(call.locator("td").nth(2)).to_have_text("200")
        call.locator("summary").click()
        expect(call.locator("pre")).to_contain_text('"DIALOG_ID": "chat')
        session_id = page.input_value("#session-id")
        chat_id = page.input_value("#chat-id")
        assert session_id.isdigit()
        assert chat_id.isdigit()

        # an operator's message, then the end of the session
        page.fill("#message-text", "Hello from the inspector")
        page.click("#send-message")
        expect(page.locator("#action-result")).to_contain_text(f"sent in chat {chat_id}")
        messages = _row(page, "deliveries", event="ONOPENLINEMESSAGEADD", outcome="ok")
        expect(messages).to_have_count(2)
        assert "Hello from the inspector" in _body_of(messages.last)
        page.click("#finish-session")
        expect(page.locator("#action-result")).to_contain_text(f"session {session_id} finished")
        expect(_row(page, "deliveries", event="ONSESSIONFINISH", outcome="ok")).to_have_count(1)
        expect(page.locator("#deliveries-count")).to_have_text("5")

        # what the page shows agrees with the control API
        listed = httpx.get(server.url + "/_portal/deliveries").json()
        assert [d["event"] for d in listed] == [
            "ONAPPINSTALL",
            "ONSESSIONSTART",
            "ONOPENLINEMESSAGEADD",
            "ONOPENLINEMESSAGEADD",
            "ONSESSIONFINISH",
        ]
        shown = page.locator("#deliveries tbody tr td.event").all_inner_texts()
        assert shown == [d["event"] for d in listed]

        # filters: event and outcome for deliveries, method for REST calls
        page.fill("#filter-event", "onsessionstart")
        expect(page.locator("#deliveries tbody tr")).to_have_count(1)
        expect(page.locator("#deliveries tbody tr td.event")).to_have_text("ONSESSIONSTART")
        page.select_option("#filter-outcome", "timeout")
        expect(page.locator("#deliveries tbody tr")).to_have_count(0)
        page.select_option("#filter-outcome", "ok")
        page.fill("#filter-event", "")
        expect(page.locator("#deliveries tbody tr")).to_have_count(5)
        page.fill("#filter-method", "app.info")
        expect(page.locator("#calls tbody tr")).to_have_count(0)
        page.fill("#filter-method", "im.message.add")
        expect(page.locator("#calls tbody tr")).to_have_count(1)

        # nothing the page holds carries a secret, in any of the details opened or closed
        for summary in page.locator("summary").all():
            summary.click()
        content = page.content()
        for secret in _secrets(installed):
            assert secret not in content
        for call in portal.records.calls():
            assert call.token in (None, "", "***")


def test_writing_to_a_chat_bot_from_the_page(page: Any) -> None:
    from playwright.sync_api import expect

    from tests.support.contract import serve_wsgi

    def answer_ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with PortalServer() as server, serve_wsgi(answer_ok) as bot_url:
        installed = httpx.post(server.url + "/_portal/apps", json={"scopes": "imbot,im"}, timeout=30).json()
        registered = httpx.post(
            f"{server.url}/{server.portal.domain}/rest/imbot.register.json",
            json={
                "auth": installed["access_token"],
                "CODE": "page_bot",
                "EVENT_HANDLER": bot_url,
                "PROPERTIES": {"NAME": "Page bot"},
            },
            timeout=30,
        ).json()
        page.goto(server.url + "/_portal/ui")
        expect(page.locator("#status")).to_have_text("live")
        page.fill("#bot-id", str(registered["result"]))
        page.click("#write-bot")
        expect(page.locator("#action-result")).to_contain_text("1 delivery: ONIMBOTMESSAGEADD ok")
        expect(_row(page, "deliveries", event="ONIMBOTMESSAGEADD", outcome="ok")).to_have_count(1)
        page.fill("#bot-id", "x")
        page.click("#write-bot")
        expect(page.locator("#action-result")).to_have_text("the bot must be a positive integer")


def test_an_event_field_holding_markup_is_shown_as_text(page: Any, handler: str) -> None:
    from playwright.sync_api import expect

    with PortalServer() as server:
        _install(server, handler)
        page.goto(server.url + "/_portal/ui")
        expect(page.locator("#status")).to_have_text("live")
        page.click("#start-session")
        expect(page.locator("#action-result")).to_contain_text("started in chat")
        # the handler's own message first (it raises OnOpenLineMessageAdd), then the operator's
        expect(_row(page, "calls", method="im.message.add")).to_have_count(1)
        messages = _row(page, "deliveries", event="ONOPENLINEMESSAGEADD")
        expect(messages).to_have_count(1)
        title = page.title()
        page.fill("#message-text", XSS)
        page.click("#send-message")
        expect(page.locator("#action-result")).to_contain_text("sent in chat")
        expect(messages).to_have_count(2)
        body = _body_of(messages.last)
        # the markup is there, as characters on the screen, and no element was made of it
        assert XSS.replace('"', '\\"') in body
        assert page.locator("img").count() == 0
        assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
        assert page.title() == title


def test_a_control_token_is_asked_for_and_kept_out_of_the_url(page: Any, handler: str) -> None:
    from playwright.sync_api import expect

    with PortalServer(control_token=TOKEN) as server:
        installed = _install(server, handler, token=TOKEN)
        page.goto(server.url + "/_portal/ui")
        form = page.locator("#token-form")
        expect(form).to_be_visible()
        expect(page.locator("#status")).to_have_text("control token needed")
        page.fill("#token", "a-wrong-token-of-enough-length")
        page.click("#token-save")
        expect(page.locator("#token-error")).to_have_text("that token was refused")
        page.fill("#token", TOKEN)
        page.click("#token-save")
        expect(form).to_be_hidden()
        expect(page.locator("#status")).to_have_text("live")
        expect(_row(page, "apps", client_id=installed["client_id"])).to_have_count(1)
        page.click("#start-session")
        expect(page.locator("#action-result")).to_contain_text("1 delivery: ONSESSIONSTART ok")
        expect(_row(page, "calls", method="im.message.add")).to_have_count(1)
        assert page.evaluate("sessionStorage.getItem('mock-portal-control-token')") == TOKEN
        assert page.evaluate("localStorage.length") == 0
        assert TOKEN not in page.url
        assert page.input_value("#token") == ""
        content = page.content()
        for secret in [TOKEN, *_secrets(installed)]:
            assert secret not in content
        # a reload in the same tab keeps the token; the form stays hidden
        page.reload()
        expect(page.locator("#status")).to_have_text("live")
        expect(form).to_be_hidden()


def test_the_page_reads_bounded_pages_with_cursors_and_follows_the_chosen_portal(page: Any) -> None:
    from playwright.sync_api import expect

    listings: list[str] = []
    page.on(
        "request",
        lambda request: listings.append(request.url) if "/_portal/deliveries" in request.url else None,
    )
    with PortalServer() as server:
        first = server.portal
        second = server.add_portal("second.example.com")
        # 250 attempts on the second portal, refused at once by a closed loopback port
        second.install_app(None, handlers={"ONSESSIONSTART": "http://127.0.0.1:9/events"})
        for _ in range(250):
            second.start_session()
        first.install_app(None, handlers={"ONSESSIONSTART": "http://127.0.0.1:9/events"})
        page.goto(server.url + "/_portal/ui")
        expect(page.locator("#status")).to_have_text("live")
        expect(page.locator("#portals tbody tr")).to_have_count(2)
        expect(page.locator("#deliveries tbody tr")).to_have_count(0)
        page.select_option("#portal", "second.example.com")
        expect(page.locator("#deliveries-count")).to_have_text("250")
        expect(page.locator("#deliveries tbody tr.outcome-refused")).to_have_count(250)
        # a session started from the page goes to the chosen portal
        page.click("#start-session")
        expect(page.locator("#action-result")).to_contain_text("1 delivery: ONSESSIONSTART refused")
        expect(page.locator("#deliveries-count")).to_have_text("251")
        assert len(second.records.deliveries()) == 251
        assert first.records.deliveries() == []
        page.goto("about:blank")
    # every listing was one bounded page: a limit, the portal, and past the first page a cursor to wait after
    second_reads = [url for url in listings if "portal=second.example.com" in url]
    assert second_reads
    assert all("limit=200" in url for url in listings), listings
    assert "after=" not in second_reads[0]
    assert all("after=" in url and "min=1" in url for url in second_reads[1:]), second_reads
