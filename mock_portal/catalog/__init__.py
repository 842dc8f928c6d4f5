"""The committed schemas as derivation + overlay: the generator, the overlay of corrections, the drift check.

Every schema in ``schemas/`` that comes from a doc page is written by this package, never by hand:

1. ``derive_schema`` reads the page (facts §8) into a faithful schema with ``x-b24-*`` provenance, from the
   canonical Russian edition with the English prose laid over it, the two compared field by field
   (``_generate``);
2. the one declared overlay, ``schemas/overlay.json``, applies the corrections the evidence demands
   (form-encoded strings, ``eventId`` vs ``event_handler_id``, the optional auth keys, shapes only the source
   shows), each entry citing its evidence; a corrected node records the entry's evidence tags and reason
   (``_overlay``);
3. every event page the overlay declares nothing for is generated too, with the patches every event gets;
4. mechanical companions follow: ``*.strict.json`` key whitelists and ``any.json`` unions;
5. the event table, ``index.json``, is generated from all of it and the declared facts (``_table``);
6. the method specs (``methods/``) and the seeded dataset of the documented read methods
   (``seeded/dataset.json``, ``_seeded``) come from the method pages and the docs' simulator.

The output is written with sorted keys (two-space indent for the files the overlay declares, one line for the
bulk of derived events), so ``generate(docs)[path]`` equals the committed file byte for byte while the docs
stay as they were, and :func:`drift` lists, field by field, what a change in the docs would change.
Hand-written files (``common/wire.json``, ``overlay.json``) are the project's own vocabulary, not the docs'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from mock_portal._resources import data_dir
from mock_portal.catalog._drift import Difference, drift
from mock_portal.catalog._generate import INDEX_FILE, METHODS_FOLDER, build_all, event_folder, locate
from mock_portal.catalog._overlay import EVIDENCE_ORDER, OVERLAY_FILE, SCHEMA_BASE, Overlay, load_overlay
from mock_portal.catalog._seeded import SEEDED_FILE

__all__ = [
    "EVIDENCE_ORDER",
    "INDEX_FILE",
    "OVERLAY_FILE",
    "SCHEMA_BASE",
    "SEEDED_FILE",
    "Difference",
    "Overlay",
    "drift",
    "event_folder",
    "generate",
    "generated_files",
    "load_overlay",
    "locate",
    "write",
]


def generate(
    docs_root: str | Path, *, overlay: Overlay | None = None, events: Iterable[str] | None = None
) -> dict[str, str]:
    """Every generated file (path under ``schemas/`` -> text) from the docs folder and the overlay.

    ``docs_root`` holds the two editions (``b24-rest-docs/``, ``b24restdocs/``), as ``shared/docs-full``
    does; pages of ``_history/`` are found there or in ``shared/docs`` beside it. An overlay entry whose
    pointer the derived schema lacks raises :class:`~mock_portal.errors.OverlayError` (the docs changed
    under it). ``events`` limits it to those events' files and the shared ones (no event table then).
    """
    build = build_all(docs_root, overlay, collect=False, events=_events(events))
    return {file: build.text(file) for file in build.schemas}


def _events(events: Iterable[str] | None) -> frozenset[str] | None:
    return frozenset(e.strip().upper() for e in events) if events is not None else None


def write(
    docs_root: str | Path, *, schemas_dir: str | Path | None = None, events: Iterable[str] | None = None
) -> list[str]:
    """Regenerate the committed files in ``schemas_dir`` (default: the checkout's); return those changed.

    Generated files the docs no longer give (an event page removed) are deleted and listed too, unless
    ``events`` limits the run.
    """
    folder = Path(schemas_dir) if schemas_dir is not None else data_dir("schemas")
    overlay = load_overlay(folder / OVERLAY_FILE)
    before = generated_files(folder) if events is None else frozenset()
    texts = generate(docs_root, overlay=overlay, events=events)
    changed = []
    for file, text in texts.items():
        path = folder / file
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(file)
    for file in sorted(before - set(texts)):
        (folder / file).unlink(missing_ok=True)
        changed.append(file)
    if schemas_dir is None:
        _default_generated.cache_clear()
    return changed


def generated_files(schemas_dir: str | Path | None = None) -> frozenset[str]:
    """The files under ``schemas/`` that are generated (so never edited by hand): the overlay's targets, the
    event table and every schema file the table names."""
    if schemas_dir is None:
        return _default_generated()
    return _generated(Path(schemas_dir))


@cache
def _default_generated() -> frozenset[str]:
    return _generated(data_dir("schemas"))


def _generated(folder: Path) -> frozenset[str]:
    files = {target.file for target in load_overlay(folder / OVERLAY_FILE).targets}
    files |= {p.relative_to(folder).as_posix() for p in (folder / METHODS_FOLDER).glob("*.json")}
    if (folder / SEEDED_FILE).is_file():
        files.add(SEEDED_FILE)
    index = folder / INDEX_FILE
    if index.is_file():
        files.add(INDEX_FILE)
        catalogue = json.loads(index.read_text(encoding="utf-8")).get("x-b24-catalogue", {})
        for entry in catalogue.values():
            for pair in entry.get("shapes", {}).values():
                for uri in pair.values():
                    if isinstance(uri, str) and uri.startswith(SCHEMA_BASE):
                        files.add(uri[len(SCHEMA_BASE) :])
    return frozenset(files)
