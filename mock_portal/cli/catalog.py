"""``mock-portal catalog [--events | --methods] [--json]``: every documented event and method, and its status.

Events: kind, scope, schema (derived from its page, or the envelope only), whether the English page agrees
with the canonical Russian one, overlay corrections, real captures validating, builder (hand or derived),
and what makes the mock portal send it. Methods: scope, read or write, documented parameters, whether the
docs' simulator reads the page the same way, and how the mock portal answers it (``implemented`` with state
of its own, ``seeded`` from the seeded dataset, ``honest-error``: a documented error, never a fake success).
Both lists end with their counts. Exit 0.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TextIO

from mock_portal.cli import EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``catalog``."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--events", action="store_true", help="list the events only")
    which.add_argument("--methods", action="store_true", help="list the methods only")
    parser.add_argument("--json", action="store_true", help="one JSON document for machines")


def _table(out: TextIO, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for line in (header, *rows):
        out.write(
            "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
        out.write("\n")


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the catalog."""
    from mock_portal import inventory

    events = inventory.event_rows() if not args.methods else None
    methods = None
    if not args.events:
        from mock_portal.rest.unsimulated import status_of

        methods = inventory.method_rows(status_of)
    counts = inventory.summary(events, methods)
    if args.json:
        document: dict[str, object] = {"summary": counts}
        if events is not None:
            document["events"] = [row.to_dict() for row in events]
        if methods is not None:
            document["methods"] = [row.to_dict() for row in methods]
        json.dump(document, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return EXIT_OK
    if events is not None:
        _table(
            out,
            ("EVENT", "KIND", "SCOPE", "SCHEMA", "EN/RU", "OVERLAY", "CAPTURES", "BUILDER", "TRIGGER"),
            [
                (
                    e.name,
                    e.kind,
                    e.scope,
                    e.schema,
                    e.translation,
                    str(e.overlay),
                    e.captures,
                    e.builder,
                    e.trigger,
                )
                for e in events
            ],
        )
        s = counts["events"]
        out.write(
            f"{s['total']} events: {s['schema_derived']} with a derived schema; translation "
            f"{_pairs(s['translation'])}; {s['with_overlay']} with overlay corrections; captures "
            f"{s['captures_valid']}/{s['captures_total']} valid; builders {_pairs(s['builder'])}; "
            f"{s['with_trigger']} fired by the mock portal\n"
        )
    if methods is not None:
        if events is not None:
            out.write("\n")
        _table(
            out,
            ("METHOD", "SCOPE", "KIND", "PARAMS", "SIMULATOR", "MOCK", "DEPRECATED"),
            [
                (m.name, m.scope, m.kind, str(m.params), m.simulator, m.mock, "yes" if m.deprecated else "")
                for m in methods
            ],
        )
        s = counts["methods"]
        out.write(
            f"{s['total']} methods: {_pairs(s['kind'])}; simulator {_pairs(s['simulator'])}; "
            f"mock portal {_pairs(s['mock'])}; {s['deprecated']} deprecated\n"
        )
    return EXIT_OK


def _pairs(counts: object) -> str:
    if not isinstance(counts, dict):
        return str(counts)
    return ", ".join(f"{value} {key}" for key, value in sorted(counts.items()))
