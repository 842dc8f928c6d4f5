"""The control API's input checks: a request matched to its route, unknown fields refused with a
did-you-mean, the body and the query checked against the route's schemas (a 400 that names the field and
says what it must be), query values typed, path ids, and the slice of a listing a page shows.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mock_portal.control_answers import HttpError
from mock_portal.control_routes import ROUTES, Route, body_schema, query_schema

__all__ = [
    "Request",
    "as_int",
    "check_fields",
    "check_schema",
    "listing_page",
    "path_id",
    "shown",
    "typed_query",
]


@dataclass(frozen=True)
class Request:
    route: Route
    params: dict[str, str]
    args: dict[str, str]
    data: dict[str, Any]
    path: str

    @property
    def portal_name(self) -> str | None:
        name = self.args.get("portal") or self.data.get("portal")
        return name if isinstance(name, str) else None


def check_fields(data: Mapping[str, Any], allowed: Mapping[str, Any], where: str) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(allowed)) or "none"
            raise HttpError(
                400, "UNKNOWN_FIELD", f"{where}: unknown field {str(key)[:60]!r}{hint} (known: {known})"
            )


@functools.cache
def _validator(schema_key: tuple[str, str, str]) -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    method, path, part = schema_key
    route = next(r for r in ROUTES if (r.method, r.path) == (method, path))
    if part == "body":
        return Draft202012Validator(body_schema(route))
    return Draft202012Validator(query_schema(route))


def check_schema(route: Route, part: str, value: Mapping[str, Any]) -> None:
    """Refuse ``value`` (the body or the query) when it breaks the route's schema, quoting what the field must
    be (its schema's description)."""
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

    error = best_match(_validator((route.method, route.path, part)).iter_errors(value))
    if error is None:
        return
    fields = route.query if part == "query" else (route.body or {})
    if error.validator == "required":
        name = next((n for n in route.required if n not in value), "?")
        got = "it is missing"
    else:
        name = str(error.absolute_path[0]) if error.absolute_path else "?"
        got = f"got {shown(value.get(name))}"
    expected = str(fields.get(name, {}).get("description", "valid"))
    if part == "query":
        raise HttpError(400, "BAD_QUERY", f"?{name}= takes {expected}, {got}")
    if error.validator == "required":
        raise HttpError(400, "BAD_FIELD", f"'{name}' is required: '{name}' must be {expected}")
    raise HttpError(400, "BAD_FIELD", f"'{name}' must be {expected}, {got}")


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def typed_query(route: Route, raw: Mapping[str, str]) -> dict[str, Any]:
    """Query values converted to the types their schemas declare (so the schema can check ranges)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        kind = route.query.get(key, {}).get("type")
        if kind in ("integer", "number"):
            try:
                if len(value) > 40:
                    raise ValueError(value)
                number: float = int(value) if kind == "integer" else float(value)
            except ValueError:
                raise HttpError(
                    400,
                    "BAD_QUERY",
                    f"?{key}= takes {route.query[key].get('description', 'a number')}, got {value[:40]!r}",
                ) from None
            if number != number or number in (float("inf"), float("-inf")):
                raise HttpError(400, "BAD_QUERY", f"?{key}= takes a finite number, got {value[:40]!r}")
            out[key] = number
        else:
            out[key] = value
    return out


def path_id(raw: str, what: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 15 or int(raw) <= 0:
        raise HttpError(400, "BAD_PATH", f"{what} id must be a positive integer, got {raw[:60]!r}")
    return int(raw)


def as_int(value: Any) -> int | None:
    return None if value is None else int(value)


def listing_page(items: list[Any], after: int | None, limit: int) -> tuple[list[Any], int | None]:
    start = after or 0
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    return chunk, (start + limit if more else None)
