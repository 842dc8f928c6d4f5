"""Write ``mock_portal/_pools.json``: the Faker pools of the default locale, drawn once and shipped.

    python scripts/faker_pools.py            # rewrite the file with the installed Faker
    python scripts/faker_pools.py --check    # exit 1 if the file differs from what Faker draws now

Event builders read the pools from the file instead of importing Faker (the slowest part of a contract run's
start-up); a test runs ``--check``'s comparison whenever the installed Faker is the version the file names.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from mock_portal._eventspec import DEFAULT_LOCALE, POOLS_FILE, draw_pools
from mock_portal.derived import draw_class_pool
from mock_portal.fakes import FIELD_CLASSES


def document() -> dict[str, Any]:
    """What the file holds, drawn now with the installed Faker."""
    import faker

    pools = dataclasses.asdict(draw_pools(DEFAULT_LOCALE))
    classes = {cls: list(draw_class_pool(DEFAULT_LOCALE, cls)) for cls in FIELD_CLASSES}
    return {
        "faker": faker.VERSION,
        "pools": {DEFAULT_LOCALE: {k: list(v) if isinstance(v, tuple) else v for k, v in pools.items()}},
        "classes": {DEFAULT_LOCALE: classes},
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=0, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render(document())
    if args.check:
        same = POOLS_FILE.read_text(encoding="utf-8") == text
        print(f"{POOLS_FILE}: {'up to date' if same else 'differs from what Faker draws now'}")
        return 0 if same else 1
    POOLS_FILE.write_text(text, encoding="utf-8")
    print(f"written: {POOLS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
