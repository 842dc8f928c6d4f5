"""``mock-portal export {openapi,asyncapi} [--out FILE]``: every event as OpenAPI 3.1 or AsyncAPI 3.0.

The document is JSON (which is also YAML), two-space indented, written to stdout or to ``--out FILE``; one
package version always writes the same bytes. ``openapi`` has one ``webhooks`` entry per event, ``asyncapi``
one channel, receive operation and message per event; both bundle the schemas into ``components/schemas``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from mock_portal.cli import EXIT_OK

FORMATS = ("openapi", "asyncapi")


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mock-portal export``."""
    parser.add_argument(
        "format", choices=FORMATS, help="openapi: OpenAPI 3.1 webhooks; asyncapi: AsyncAPI 3.0 channels"
    )
    parser.add_argument("--out", metavar="FILE", help="write the document here (default: stdout)")


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Build the document and write it; return the exit code."""
    from mock_portal.errors import UsageError
    from mock_portal.export import asyncapi_document, openapi_document

    document = openapi_document() if args.format == "openapi" else asyncapi_document()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.out is None:
        out.write(text)
        return EXIT_OK
    target = Path(args.out)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot write ({exc.strerror or exc})") from None
    count = len(document["webhooks"] if args.format == "openapi" else document["channels"])
    out.write(f"{args.format}: {count} events written to {args.out}\n")
    return EXIT_OK
