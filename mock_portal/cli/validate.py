"""``mock-portal validate``: check event bodies (wire form or JSON) against the schemas.

Each input is a file, a directory (its files, recursively) or ``-`` for stdin. A body is read as a form
body (what the portal POSTs, decoded as PHP ``parse_str`` would) or as JSON (a decoded payload, a doc-style
example, or a capture from ``captures/`` with its ``payload`` wrapper); ``--format auto`` tells them apart by
the first character. Without ``--event`` the schema is chosen from the body's own ``event``.

Exit codes: 0 every body valid, 1 at least one invalid, 2 an input could not be read or decoded (one line
naming the input and what was wrong, never a traceback) or the command line was wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mock_portal.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from mock_portal.errors import MockPortalError, UnknownNameError
from mock_portal.redact import SECRET_KEYS, redact_text

MAX_INPUT_BYTES = 8 * 1024 * 1024
"""Largest body read (PHP's default ``post_max_size``, 8 MiB); a larger input is refused, not truncated."""

_SKIPPED_SUFFIXES = (".expect.json", ".md")


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mock-portal validate``."""
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="FILE|DIR|-",
        default=["-"],
        help="bodies to check: files, directories (recursively; hidden files, *.md and *.expect.json "
        "sidecars are skipped) or - for stdin (the default)",
    )
    parser.add_argument("--event", help="validate as this event (default: the body's own 'event')")
    parser.add_argument(
        "--shape",
        default="any",
        help="any (default), or one shape of the event: source-2024, docs-2024, docs-2026 for ONSESSIONSTART",
    )
    parser.add_argument("--strict", action="store_true", help="forbid keys beyond the known ones")
    parser.add_argument(
        "--schema",
        metavar="FILE",
        help="validate against this JSON Schema file instead of the catalogue (its relative $refs resolve "
        "against schemas/, so a derived or edited schema can use common/wire.json)",
    )
    parser.add_argument(
        "--format",
        choices=("auto", "form", "json"),
        default="auto",
        help="how to read a body: form-encoded as the portal sends it, JSON, or auto (default)",
    )
    parser.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text for people (default), json for machines",
    )


@dataclass(frozen=True)
class _Input:
    name: str
    data: bytes | None
    problem: str | None = None


class _Unreadable(MockPortalError):
    """An input that cannot be read or decoded; the message names what was wrong."""


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Validate every input; print one verdict per body; return the exit code."""
    from mock_portal import schemas

    checker = None
    if args.schema is not None:
        if args.event is not None or args.shape != "any" or args.strict:
            raise _Unreadable(
                "--schema names the schema itself: it cannot be combined with --event, --shape or --strict"
            )
        checker = _SchemaFile.load(Path(args.schema))
    elif args.event is not None:
        schemas.schema_uri(args.event, args.shape, strict=args.strict)  # unknown names: usage error, exit 2
    results: list[dict[str, Any]] = []
    worst = EXIT_OK
    stdin = sys.stdin.buffer if args.inputs.count("-") else None
    for item in _inputs(args.inputs, stdin):
        try:
            if item.problem is not None or item.data is None:
                raise _Unreadable(item.problem or "unreadable")
            payload = _decode(item.data, args.format)
            if checker is not None:
                report = checker.validate(payload)
            else:
                report = _validate(payload, args.event, args.shape, args.strict)
        except _Unreadable as exc:
            worst = EXIT_USAGE
            message = redact_text(str(exc))
            results.append({"input": item.name, "ok": False, "error": message})
            if args.output == "text":
                err.write(f"mock-portal: error: {item.name}: {message}\n")
            continue
        if not report.ok and worst == EXIT_OK:
            worst = EXIT_FAILURE
        results.append({"input": item.name, **report.to_dict()})
        if args.output == "text":
            out.write(f"{item.name}: {report.format()}\n")
    if args.output == "json":
        valid = sum(1 for r in results if r.get("ok"))
        summary = {"inputs": len(results), "valid": valid, "invalid": len(results) - valid}
        json.dump({"results": results, "summary": summary}, out, ensure_ascii=False, indent=2)
        out.write("\n")
    return worst


def _validate(payload: Any, event: str | None, shape: str, strict: bool) -> Any:
    from mock_portal import schemas

    named = payload.get("event") if isinstance(payload, Mapping) else None
    if event is None:
        # a body without a usable event name is checked as the one event with shapes; the report then
        # names the missing or malformed $.event
        event = named if isinstance(named, str) and named else "ONSESSIONSTART"
    try:
        return schemas.validate(payload, event, shape, strict=strict)
    except UnknownNameError as exc:
        raise _Unreadable(f"cannot choose a schema from the body's event: {exc}; pass --event") from exc


def _inputs(names: list[str], stdin: Any) -> Iterator[_Input]:
    for name in names:
        if name == "-":
            yield _read_stream("<stdin>", stdin)
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not _skipped(p, path))
            if not files:
                yield _Input(name, None, "directory holds no files to check")
            for file in files:
                yield _read_file(file)
        else:
            yield _read_file(path)


def _skipped(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return any(part.startswith(".") for part in parts) or path.name.endswith(_SKIPPED_SUFFIXES)


def _read_file(path: Path) -> _Input:
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            return _Input(name, None, f"larger than {MAX_INPUT_BYTES} bytes ({size})")
        with path.open("rb") as handle:
            return _Input(name, handle.read(MAX_INPUT_BYTES + 1))
    except FileNotFoundError:
        return _Input(name, None, "no such file or directory")
    except IsADirectoryError:
        return _Input(name, None, "is a directory")
    except OSError as exc:
        return _Input(name, None, f"cannot be read ({exc.strerror or exc})")


def _read_stream(name: str, stream: Any) -> _Input:
    try:
        data = stream.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        return _Input(name, None, f"cannot be read ({exc.strerror or exc})")
    if len(data) > MAX_INPUT_BYTES:
        return _Input(name, None, f"larger than {MAX_INPUT_BYTES} bytes")
    return _Input(name, bytes(data))


def _decode(data: bytes, fmt: str) -> Any:
    if b"\x00" in data:
        raise _Unreadable("binary data (a NUL byte), not an event body")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"not UTF-8 text (byte {exc.start}): binary data is not an event body") from exc
    stripped = text.strip()
    if not stripped:
        raise _Unreadable("empty input")
    if fmt == "json" or (fmt == "auto" and stripped[0] in "{["):
        return _from_json(stripped)
    from mock_portal import wire
    from mock_portal.errors import WireError

    try:
        return wire.decode(stripped.encode("utf-8"))
    except WireError as exc:
        raise _Unreadable(f"not a valid form body: {exc}") from exc


def _from_json(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Unreadable(f"bad JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise _Unreadable("JSON nested too deeply") from exc
    if not isinstance(value, dict):
        raise _Unreadable(f"JSON must be an object (an event body), got {type(value).__name__}")
    payload = value.get("payload")
    if isinstance(payload, dict) and "source" in value and "event" in value:
        return payload  # a capture from captures/: {"event", "source", ..., "payload"}
    return value


MAX_SCHEMA_BYTES = 1 << 20


@dataclass(frozen=True)
class _SchemaFile:
    """A schema named on the command line, checked and compiled against the project's registry."""

    name: str
    uri: str
    validator: Any

    @classmethod
    def load(cls, path: Path) -> _SchemaFile:
        from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
        from jsonschema.exceptions import SchemaError as InvalidSchema  # type: ignore[import-untyped]
        from referencing import Resource
        from referencing.jsonschema import DRAFT202012

        from mock_portal import schemas

        where = f"--schema {path}"
        read = _read_file(path)
        if read.problem is not None or read.data is None:
            raise _Unreadable(f"{where}: {read.problem or 'unreadable'}")
        if len(read.data) > MAX_SCHEMA_BYTES:
            raise _Unreadable(f"{where}: larger than {MAX_SCHEMA_BYTES} bytes")
        try:
            contents = json.loads(read.data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise _Unreadable(f"{where}: not JSON ({exc})") from None
        if not isinstance(contents, dict):
            raise _Unreadable(f"{where}: a schema is a JSON object, got {type(contents).__name__}")
        try:
            Draft202012Validator.check_schema(contents)
        except InvalidSchema as exc:
            at = "/".join(str(p) for p in exc.absolute_path) or "the root"
            raise _Unreadable(f"{where}: not a valid 2020-12 schema at {at}: {exc.message}") from None
        uri = contents.get("$id")
        if not isinstance(uri, str) or not uri:
            # no $id: place it beside the project's schemas, so "../common/wire.json" resolves
            uri = f"{schemas.BASE_URI}external/{path.name}"
            contents = {**contents, "$id": uri}
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        registry = schemas.registry().with_resource(uri, resource).crawl()
        return cls(str(path), uri, Draft202012Validator(contents, registry=registry))

    def validate(self, payload: Any) -> Any:
        """A :class:`~mock_portal.schemas.ValidationReport` of ``payload`` against this schema."""
        from referencing.exceptions import Unresolvable

        from mock_portal import schemas

        issues: dict[tuple[str, str, str], schemas.Issue] = {}
        try:
            for error in self.validator.iter_errors(payload):
                for issue in _issues_of(error):
                    issues.setdefault((issue.path, issue.keyword, issue.message), issue)
        except Unresolvable as exc:
            raise _Unreadable(f"--schema {self.name}: cannot resolve {exc}") from None
        except RecursionError:
            raise _Unreadable(f"--schema {self.name}: the body or the schema nests too deeply") from None
        named = payload.get("event") if isinstance(payload, Mapping) else None
        return schemas.ValidationReport(
            event=named if isinstance(named, str) and named else "(no event)",
            shape=Path(self.name).name,
            strict=False,
            errors=tuple(issues[key] for key in sorted(issues)),
            notes=(f"checked against {self.name} ({self.uri})",),
        )


def _issues_of(error: Any) -> Iterator[Any]:
    from mock_portal import schemas

    where = list(error.absolute_path)
    annotation = error.schema.get("x-b24-doc") if isinstance(error.schema, Mapping) else None
    doc = schemas.DocRef.from_annotation(annotation) if isinstance(annotation, Mapping) else None
    keyword = str(error.validator)
    if keyword == "required" and isinstance(error.instance, Mapping):
        missing = [n for n in error.validator_value if n not in error.instance]
        for name in missing:
            path = schemas.json_path([*where, name])
            yield schemas.Issue(path, f"missing required property {name!r}", "present", keyword, doc)
        return
    expected = redact_text(json.dumps(error.validator_value, ensure_ascii=False)[:200])
    secret = any(isinstance(part, str) and part.lower() in SECRET_KEYS for part in where)
    if secret or isinstance(error.instance, (Mapping, list)):
        # jsonschema quotes the value; a secret, or a block that may hold one, is never shown
        kind = type(error.instance).__name__
        message = f"a {kind} value breaks {keyword!r} (expected {expected}; value not shown)"
    else:
        message = redact_text(error.message)
    yield schemas.Issue(schemas.json_path(where), message, expected, keyword, doc)
