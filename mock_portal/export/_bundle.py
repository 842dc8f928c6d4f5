"""Bundling the schemas of ``schemas/`` into one document's ``components/schemas``.

Each file an event schema reaches becomes one component, named by its path (``onsessionstart/docs-2026.json``
-> ``onsessionstart.docs-2026``); its ``$id`` and ``$schema`` go, and every ``$ref`` is rewritten to a JSON
pointer into the document (``#/components/schemas/common.wire/$defs/id``), so no tool has to resolve the
``.invalid`` ids. The annotations (``x-b24-doc``, ``x-b24-evidence``...) stay: both OpenAPI 3.1 and AsyncAPI
allow extension keywords in schemas.

``ref_siblings="all-of"`` turns ``{"$ref": R, ...siblings}`` into ``{"allOf": [{"$ref": R}, {...siblings}]}``:
the same meaning in draft 2020-12, and the only one in draft-07 (where siblings of ``$ref`` are ignored), the
base of AsyncAPI's schema format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal
from urllib.parse import urldefrag, urljoin

from mock_portal.errors import SchemaError

__all__ = ["bundle", "component_name"]

_COMPONENTS: Final = "#/components/schemas/"
_DROPPED: Final = frozenset({"$id", "$schema"})
_STAY: Final = frozenset({"$defs", "title", "description"})

RefSiblings = Literal["keep", "all-of"]


def component_name(uri: str) -> str:
    """The component name of the schema file with ``$id`` ``uri``."""
    from mock_portal.schemas import BASE_URI

    if not uri.startswith(BASE_URI) or not uri.endswith(".json"):
        raise SchemaError(f"export: {uri!r} is not a schema of schemas/")
    return uri[len(BASE_URI) : -len(".json")].replace("/", ".")


def _rewrite(node: Any, base: str, found: set[str], ref_siblings: RefSiblings) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, base, found, ref_siblings) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "$ref" and isinstance(value, str):
            target, fragment = urldefrag(urljoin(base, value))
            found.add(target)
            out[key] = _COMPONENTS + component_name(target) + fragment
        elif key in ("properties", "$defs") and isinstance(value, Mapping):
            # names here are property or definition names, never keywords
            out[key] = {name: _rewrite(sub, base, found, ref_siblings) for name, sub in value.items()}
        else:
            out[key] = _rewrite(value, base, found, ref_siblings)
    if ref_siblings == "all-of" and "$ref" in out:
        # definitions and annotations stay where they are, so pointers into them still hold
        kept = {k: v for k, v in out.items() if k in _STAY or k.startswith("x-")}
        siblings = {k: v for k, v in out.items() if k != "$ref" and k not in kept}
        if siblings:
            return {"allOf": [{"$ref": out["$ref"]}, siblings], **kept}
    return out


def bundle(roots: Iterable[str], *, ref_siblings: RefSiblings = "keep") -> dict[str, Any]:
    """``components/schemas`` holding every schema file reachable from ``roots`` (``$id`` URIs), sorted."""
    from mock_portal.schemas import registry

    pending = list(roots)
    done: dict[str, Any] = {}
    while pending:
        uri = pending.pop()
        if uri in done:
            continue
        found: set[str] = set()
        done[uri] = _rewrite(registry().contents(uri), uri, found, ref_siblings)
        pending.extend(found - done.keys())
    return {component_name(uri): done[uri] for uri in sorted(done)}
