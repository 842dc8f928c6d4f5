"""The documented validate path against its floor and the naive way, side by side on one core.

- **public path**: ``mock_portal.validate(mock_portal.decode(body))``, as the README shows it, on valid
  OnSessionStart wire bodies of the three shapes (shape ``any``, tolerant);
- **floor**: ``json.loads`` plus jsonschema-rs on the same payloads as JSON text, against the same ``any``
  schema (patterns ported as the project ports them): the least a Python validator can cost;
- **naive**: urllib's ``parse_qsl``, brackets nested into dicts by hand, then pure-Python ``jsonschema`` on
  the same schema: what a handler author writes without this project.

Targets (issue 10): public path within 3x of the floor, and at least 50x the naive one.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from bench.core import Row, Stat, interleave, one_core, per_round, rate, register


def naive_nested(body: str) -> dict[str, Any]:
    """The naive decoder: ``parse_qsl``, then PHP brackets into nested dicts, 0..n-1 dicts into lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head, *rest = key.replace("]", "").split("[")
        parts = [head, *rest]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(value: Any) -> Any:
        if isinstance(value, dict):
            items = {k: listify(v) for k, v in value.items()}
            if items and list(items) == [str(i) for i in range(len(items))]:
                return list(items.values())
            return items
        return value

    result: dict[str, Any] = listify(root)
    return result


@register("validate", needs=("jsonschema_rs",), help="mock_portal.validate(decode(body)) vs floor and naive")
def run(quick: bool) -> list[Row]:
    import jsonschema  # type: ignore[import-untyped]

    import mock_portal
    from mock_portal import schemas, schemas_rs
    from mock_portal.events import SHAPES, EventStream

    per_shape = 50 if quick else 400
    bodies = [b for s in SHAPES for b in EventStream(shape=s, seed=f"bench-{s}").bodies(per_shape)]
    wire = [b.encode() for b in bodies]
    texts = [json.dumps(mock_portal.decode(b)) for b in wire]
    registry = schemas.registry()
    uri = schemas.schema_uri()
    naive_validator = jsonschema.Draft202012Validator(registry.contents(uri), registry=registry)
    floor_validator = schemas_rs.compile_validator(
        schemas_rs.compile_registry(registry), registry.contents(uri)
    )

    # each path must agree on the verdicts before its speed means anything
    assert all(mock_portal.validate(mock_portal.decode(b)).ok for b in wire)
    assert all(floor_validator.is_valid(json.loads(t)) for t in texts)
    assert all(naive_validator.is_valid(naive_nested(b)) for b in bodies[:: max(1, len(bodies) // 30)])
    assert naive_nested(bodies[0]) == mock_portal.decode(wire[0])

    validate, decode, loads, floor_check = (
        mock_portal.validate,
        mock_portal.decode,
        json.loads,
        floor_validator.is_valid,
    )
    naive_batch = bodies[:: max(1, len(bodies) // 60)]

    def public() -> int:
        for body in wire:
            validate(decode(body))
        return len(wire)

    def floor() -> int:
        for text in texts:
            floor_check(loads(text))
        return len(texts)

    def naive() -> int:
        for body in naive_batch:
            naive_validator.is_valid(naive_nested(body))
        return len(naive_batch)

    window = 0.2 if quick else 0.4
    with one_core() as pinning:
        figures = interleave(
            {
                "public": lambda: rate(public, window),
                "floor": lambda: rate(floor, window),
                "naive": lambda: rate(naive, window),
            },
            rounds=3 if quick else 7,
        )
    vs_naive = per_round(figures["public"], figures["naive"])
    floor_over = per_round(figures["floor"], figures["public"])
    return [
        Row(
            "validate",
            "mock_portal.validate(mock_portal.decode(body)): valid OnSessionStart wire bodies, shape any",
            Stat.of(figures["public"]),
            "events/s",
            baselines={
                "floor: json.loads + jsonschema_rs, same payloads as JSON": Stat.of(figures["floor"]),
                "naive: parse_qsl + pure-Python jsonschema, same schema": Stat.of(figures["naive"]),
            },
            ratios={"public / naive (x)": vs_naive, "floor / public (x slower than the floor)": floor_over},
            target="public >= 50x naive, and within 3x of the floor",
            met=vs_naive.median >= 50 and floor_over.median <= 3,
            notes=f"{pinning}; {len(wire)} bodies, three shapes; {len(figures['public'])} rounds; "
            f"verdicts from {schemas.fast_backend()}",
        )
    ]
