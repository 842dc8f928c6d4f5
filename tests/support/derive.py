"""Helpers for the derive tests: a compact outline of a derived schema, and the language-neutral view."""

from __future__ import annotations

from typing import Any

Outline = dict[str, Any]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/"):
        target: dict[str, Any] = schema["$defs"][ref[len("#/$defs/") :]]
        return target
    return node


def outline(schema: dict[str, Any], node: dict[str, Any] | None = None) -> Outline:
    """{name: children outline or None} for a schema's properties, following local $refs and list items.

    A list is written as a one-key dict ``{"[]": outline}`` so a list and an object never look alike.
    """
    node = _resolve(schema, schema if node is None else node)
    result: Outline = {}
    for name, prop in node.get("properties", {}).items():
        result[name] = _children(schema, prop)
    return result


def _children(schema: dict[str, Any], prop: dict[str, Any]) -> Any:
    prop = _resolve(schema, prop)
    if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
        items = _resolve(schema, prop["items"])
        return {"[]": outline(schema, items)} if "properties" in items else {"[]": None}
    if "properties" in prop:
        return outline(schema, prop)
    return None


def field(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    """The property at ``path`` (names; "[]" steps into list items), following local $refs."""
    node = _resolve(schema, schema)
    for step in path:
        node = _resolve(schema, node["items"] if step == "[]" else node["properties"][step])
    return node


def without_prose(node: Any, *, top: bool = True) -> Any:
    """The schema minus what differs between the Russian and English editions of a page: descriptions,
    titles, and the root's x-b24-source (repository, language, published URL)."""
    if isinstance(node, dict):
        return {
            key: without_prose(value, top=False)
            for key, value in node.items()
            if key not in ("description", "title") and not (top and key == "x-b24-source")
        }
    if isinstance(node, list):
        return [without_prose(value, top=False) for value in node]
    return node
