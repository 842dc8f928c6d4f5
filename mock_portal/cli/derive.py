"""``mock-portal derive PAGE.md [--docs-root DIR] [--id URI]``: print the JSON Schema a doc page describes.

The schema is written as the committed files are (sorted keys, two-space indent, trailing newline). A page
that cannot be read in the docs' dialect gives one line naming the file and line, and exit code 2.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from mock_portal.cli import EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``derive``."""
    parser.add_argument("page", metavar="PAGE.md", help="a doc page in the Bitrix24 docs' markdown dialect")
    parser.add_argument(
        "--docs-root",
        metavar="DIR",
        help="the docs tree holding _includes/ and api-reference/data-types.md "
        "(needed when the page's own tree lacks them, as for pages kept in _history/)",
    )
    parser.add_argument("--id", dest="schema_id", metavar="URI", help="the $id to give the schema")


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Derive the schema and print it; errors propagate as DeriveError (exit 2 in ``run``)."""
    from mock_portal.derive import derive_schema, dumps_schema

    schema = derive_schema(args.page, docs_root=args.docs_root, schema_id=args.schema_id)
    out.write(dumps_schema(schema))
    return EXIT_OK
