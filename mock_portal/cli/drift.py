"""``mock-portal drift --docs-root DIR [--event NAME]... [--write]``: do the committed files equal the docs?

Re-derives every generated file (``mock_portal.catalog``: every event schema, the event table) from the doc
pages under ``DIR`` (the complete docs holding ``b24-rest-docs/`` and ``b24restdocs/``, as
``shared/docs-full`` does), applies ``schemas/overlay.json`` and compares the result with the committed file,
field by field. Exit 0 when nothing moved; 1 with one line per changed field (``file:/json/pointer: changed
A -> B``) when the docs changed under the committed files, or an overlay entry no longer applies; 2 when the
docs folder or the overlay cannot be read. ``--event`` checks only those events (and the shared files);
``--write`` regenerates the files instead (then review ``git diff schemas/``).
"""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from mock_portal.cli import EXIT_FAILURE, EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``drift``."""
    parser.add_argument(
        "--docs-root",
        required=True,
        metavar="DIR",
        help="the docs folder holding both editions (b24-rest-docs/, b24restdocs/), e.g. ../shared/docs-full",
    )
    parser.add_argument(
        "--event",
        dest="events",
        action="append",
        metavar="NAME",
        help="check (or write) only this event's files and the shared ones; repeatable",
    )
    parser.add_argument(
        "--schemas",
        metavar="DIR",
        help="the schemas/ folder to check or write (default: the one of this checkout or installation)",
    )
    parser.add_argument(
        "--write", action="store_true", help="regenerate the committed files instead of checking"
    )
    parser.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text for people (default), json for machines",
    )


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Check (or rewrite) the generated schemas; errors reading docs or overlay propagate (exit 2)."""
    from mock_portal import catalog

    if args.write:
        changed = catalog.write(args.docs_root, schemas_dir=args.schemas, events=args.events)
        for file in changed:
            out.write(f"wrote schemas/{file}\n")
        out.write(f"{len(changed)} file(s) regenerated from the docs and the overlay\n")
        return EXIT_OK
    differences = catalog.drift(args.docs_root, schemas_dir=args.schemas, events=args.events)
    files = sorted({d.file for d in differences})
    if args.output == "json":
        listed = [
            {
                "file": d.file,
                "pointer": d.pointer,
                "kind": d.kind,
                "committed": d.committed,
                "derived": d.derived,
            }
            for d in differences
        ]
        json.dump(
            {"ok": not differences, "differences": listed, "files": files}, out, ensure_ascii=False, indent=2
        )
        out.write("\n")
    else:
        for difference in differences:
            out.write(f"{difference}\n")
        if differences:
            out.write(
                f"drift: {len(differences)} difference(s) in {len(files)} file(s): the docs changed "
                "under the committed schemas; fix schemas/overlay.json if a correction no longer fits, "
                "then run mock-portal drift --docs-root DIR --write and review the diff\n"
            )
        else:
            out.write("no drift: every generated schema equals derivation + overlay\n")
    return EXIT_FAILURE if differences else EXIT_OK
