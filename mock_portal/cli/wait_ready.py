"""``mock-portal wait-ready URL...``: wait until each URL answers HTTP, so a script can go on safely.

A server started in the background (``mock-portal serve &``, your handler) takes a moment to listen; a
request sent before then fails with "connection refused". This polls each URL with a GET until it gets an
HTTP answer, whatever its status (an answer proves the server is up), and exits 0; or exits 1 naming the
URLs that did not answer within ``--timeout`` and the last error for each. Proxies are never used.
"""

from __future__ import annotations

import argparse
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import TextIO

from mock_portal.errors import UsageError
from mock_portal.redact import redact_text

_POLL_SECONDS = 0.05  # between two tries at one URL that refused: there is no event to wait on instead


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mock-portal wait-ready``."""
    parser.add_argument("urls", nargs="+", metavar="URL", help="http(s) URLs to wait for, e.g. .../_portal")
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="give up after S seconds (default: 30)"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing when every URL is ready")


def _answer(opener: urllib.request.OpenerDirector, url: str, timeout: float) -> str | None:
    """None when ``url`` gave an HTTP answer, else why not."""
    try:
        with opener.open(url, timeout=timeout) as response:
            response.read(65536)
        return None
    except urllib.error.HTTPError as exc:  # a 4xx or 5xx is still an answer: the server listens
        exc.close()
        return None
    except urllib.error.URLError as exc:
        return str(exc.reason)
    except (OSError, ValueError) as exc:
        return str(exc) or type(exc).__name__


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Poll every URL until it answers or the timeout passes."""
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    for url in args.urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"not an http(s) URL: {redact_text(url)!r}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + args.timeout
    waiting = {url: "not tried yet" for url in args.urls}
    while waiting:
        for url in list(waiting):
            left = deadline - time.monotonic()
            reason = _answer(opener, url, timeout=max(0.1, min(left, 5.0)))
            if reason is None:
                del waiting[url]
            else:
                waiting[url] = reason
        if waiting and time.monotonic() >= deadline:
            for url, reason in waiting.items():
                err.write(
                    f"mock-portal: error: {redact_text(url)} did not answer within {args.timeout:g} s"
                    f" ({redact_text(reason)})\n"
                )
            return 1
        if waiting:
            time.sleep(_POLL_SECONDS)
    if not args.quiet:
        out.writelines(f"ready {redact_text(url)}\n" for url in args.urls)
        out.flush()
    return 0
