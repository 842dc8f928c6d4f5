"""Layer 1: read a page, splice its includes, drop prose directives, and cut it into blocks.

The docs are YFM (Yandex Flavoured Markdown); only what a schema needs is understood here (facts §8):
``{% include %}`` splices a shared file (paths relative to the including file), ``{% note %}`` and
``{% if %}`` blocks are prose and vanish, ``{% list tabs %}`` and ``{% cut %}`` only wrap content, fenced
code is opaque, headings may carry an ``{#anchor}``, and tables run from ``#|`` to the matching ``|#``
(nested tables inside cells included). Every line remembers the file and line it came from, so later layers
can name them.
"""

from __future__ import annotations

import os.path
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mock_portal.errors import DeriveError

MAX_PAGE_BYTES = 1_000_000
"""A doc page (or include) larger than this is refused: the real ones are below 60 kB."""
MAX_INCLUDE_DEPTH = 8
MAX_LINES = 200_000
MAX_TABLE_NESTING = 8

REQUIRED_INCLUDE = "_includes/required.md"
"""Pages including this footnote give ``*`` after a name its meaning (facts §8)."""


@dataclass(frozen=True)
class SourcePos:
    """Where a line comes from: ``page`` is the file's path inside its docs tree, ``line`` is 1-based."""

    page: str
    line: int


@dataclass(frozen=True)
class Line:
    """One line of the spliced page; ``code`` is true inside a fenced code block."""

    text: str
    pos: SourcePos
    code: bool = False


@dataclass(frozen=True)
class Heading:
    """A markdown heading; ``anchor`` is its explicit ``{#anchor}``, if any."""

    level: int
    text: str
    anchor: str | None
    pos: SourcePos


@dataclass(frozen=True)
class TableBlock:
    """The lines between ``#|`` and its ``|#``, dedented to the opener's indentation (tables inside tabs)."""

    lines: tuple[Line, ...]
    pos: SourcePos


@dataclass(frozen=True)
class Text:
    """A line of prose (kept for completeness; prose carries no contract)."""

    line: Line


Block = Heading | TableBlock | Text


@dataclass
class Document:
    """A page after splicing and cutting: its blocks, and which files include the required-marker footnote."""

    page: str
    blocks: list[Block]
    required_aware: set[str] = field(default_factory=set)
    """Display paths of the files (page or includes) that include ``_includes/required.md``."""


_TAG = re.compile(r"^\{%-?\s*(?P<name>[a-z]+)\b(?P<rest>.*?)-?%\}(?P<after>.*)$")
_INCLUDE = re.compile(r"^(?:notitle\s+)?\[(?P<title>.*)\]\((?P<path>[^)\s]+)\)$")
_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.*?)\s*$")
_ANCHOR = re.compile(r"\s*\{#(?P<anchor>[^}\s]+)\}\s*$")
_FENCE = re.compile(r"^(?P<run>`{3,}|~{3,})(?P<info>[^`]*)$")
_FENCE_FIRST = frozenset("`~")

# directives that open a block, and the tag that closes each; "prose" blocks are dropped whole
_PROSE_BLOCKS = {"note": "endnote", "if": "endif"}
_WRAPPER_BLOCKS = {"list": "endlist", "cut": "endcut"}
_BRANCH_TAGS = {"else", "elsif"}  # inside {% if %}: still prose


class DocsTree:
    """Finds files for one page: its own docs tree first, then ``docs_root``.

    ``page_root`` is the tree the page belongs to: ``docs_root`` when the page lies inside it, otherwise the
    nearest ancestor holding ``api-reference/`` or ``_includes/`` (a page copied from history keeps its tree
    layout but not its includes, which are then found under ``docs_root``), otherwise the page's folder.
    """

    def __init__(self, page: Path, docs_root: Path | None) -> None:
        self.given = str(page)
        self.page = page.resolve()
        self.docs_root = docs_root.resolve() if docs_root is not None else None
        self.page_root = self._find_page_root()
        self.files: dict[str, Path] = {}
        """Display path -> file, for every file read, so errors can name a path the user can open."""

    def _find_page_root(self) -> Path:
        if self.docs_root is not None and self.page.is_relative_to(self.docs_root):
            return self.docs_root
        # a tree root holds api-reference/; some sections keep an _includes/ of their own (calendar, chats),
        # so _includes/ alone marks a root only where no ancestor holds api-reference/
        for marker in ("api-reference", "_includes"):
            for ancestor in self.page.parents:
                if (ancestor / marker).is_dir():
                    return ancestor
        return self.page.parent

    def display(self, path: Path) -> str:
        """The path as the docs name it (relative to its tree), for provenance."""
        for root in (self.page_root, self.docs_root):
            if root is not None and path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        return path.as_posix()

    def user_path(self, display: str) -> str:
        """The path of a file read under ``display``, as short as it can be said from the working folder."""
        path = self.files.get(display)
        if path is None:
            return display
        if path == self.page:
            return self.given
        try:
            relative = os.path.relpath(path)
        except ValueError:  # another drive on Windows
            return str(path)
        return str(path) if relative.startswith("..") else relative

    def resolve(self, relative: str, base: Path) -> Path | None:
        """The file a link ``relative`` in file ``base`` points to, or None if no tree holds it."""
        if relative.startswith("/"):
            in_tree = relative.lstrip("/")
        else:
            target = Path(os.path.normpath(base.parent / relative))
            if target.is_file():
                return target
            if target.is_relative_to(self.page_root):
                in_tree = target.relative_to(self.page_root).as_posix()
            else:  # a page away from any tree: its "../" lead to the tree root, where _includes/ lives
                in_tree = "/".join(part for part in Path(relative).parts if part not in ("..", "."))
        for root in (self.page_root, self.docs_root):
            if root is not None and (root / in_tree).is_file():
                return root / in_tree
        return None


def read_source(path: Path, display: str) -> list[str]:
    """Read one markdown file as lines, with the size limit and a clear error for bytes that are not UTF-8.

    Files are read once per version (path, size, modification time): the shared includes (the required
    footnote, the auth table) are spliced into hundreds of pages.
    """
    try:
        status = path.stat()
    except FileNotFoundError:
        raise DeriveError("no such file", page=display) from None
    except OSError as exc:
        raise DeriveError(f"cannot read the file: {exc.strerror or exc}", page=display) from None
    if status.st_size > MAX_PAGE_BYTES:
        raise DeriveError(
            f"file is {status.st_size} bytes, over the {MAX_PAGE_BYTES}-byte limit", page=display
        )
    lines = _read_lines(str(path), status.st_size, status.st_mtime_ns)
    if isinstance(lines, DeriveError):
        raise DeriveError(lines.message, page=display, line=lines.line)
    return list(lines)


@lru_cache(maxsize=256)
def _read_lines(path: str, size: int, mtime_ns: int) -> tuple[str, ...] | DeriveError:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return DeriveError(f"cannot read the file: {exc.strerror or exc}", page=path)
    if len(data) > MAX_PAGE_BYTES:
        return DeriveError(f"file is {len(data)} bytes, over the {MAX_PAGE_BYTES}-byte limit", page=path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return DeriveError("not UTF-8 text", page=path, line=line)
    return tuple(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


_INCLUDES: dict[tuple[Any, ...], tuple[tuple[Line, ...], frozenset[str], tuple[tuple[str, Path], ...]]] = {}
_MAX_CACHED_INCLUDES = 4096


class _Splicer:
    """Expands includes and directives of one page into a flat list of :class:`Line`."""

    def __init__(self, tree: DocsTree) -> None:
        self.tree = tree
        self.out: list[Line] = []
        self.required_aware: set[str] = set()

    def splice(self, path: Path, stack: tuple[Path, ...]) -> None:
        display = self.tree.display(path)
        self.tree.files.setdefault(display, path)
        if len(stack) > MAX_INCLUDE_DEPTH:
            raise DeriveError(f"includes nested deeper than {MAX_INCLUDE_DEPTH}", page=display)
        lines = read_source(path, display)
        # directives still open: (closing tag, line, whether it is prose and so hides its content)
        open_blocks: list[tuple[str, int, bool]] = []
        prose_depth = 0
        fence: str | None = None
        for number, raw in enumerate(lines, start=1):
            if len(self.out) > MAX_LINES:
                raise DeriveError(f"page expands to more than {MAX_LINES} lines", page=display, line=number)
            pos = SourcePos(display, number)
            stripped = raw.strip()
            if fence is not None:
                if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                    fence = None
                if not prose_depth:
                    self.out.append(Line(raw, pos, code=True))
                continue
            fence_match = _FENCE.match(stripped) if stripped[:1] in _FENCE_FIRST else None
            if fence_match:
                fence = fence_match["run"]
                if not prose_depth:
                    self.out.append(Line(raw, pos, code=True))
                continue
            tag = _TAG.match(stripped) if stripped.startswith("{%") else None
            if tag is None:
                if not prose_depth:
                    self.out.append(Line(raw, pos))
                continue
            name, rest, after = tag["name"], tag["rest"].strip(), tag["after"].strip()
            if after and name == "include":  # "{% include ... %}" must stand alone: it is text otherwise
                if not prose_depth:
                    self.out.append(Line(raw, pos))
                continue
            if name in _PROSE_BLOCKS or name in _WRAPPER_BLOCKS:
                closing = _PROSE_BLOCKS.get(name) or _WRAPPER_BLOCKS[name]
                open_blocks.append((closing, number, name in _PROSE_BLOCKS))
                prose_depth += name in _PROSE_BLOCKS
            elif name in _BRANCH_TAGS:
                if not open_blocks or open_blocks[-1][0] != "endif":
                    raise DeriveError(
                        f"{{% {name} %}} outside an {{% if %}} block", page=display, line=number
                    )
            elif name.startswith("end"):
                if not open_blocks or open_blocks[-1][0] != name:
                    expected = f"{{% {open_blocks[-1][0]} %}}" if open_blocks else "no closing tag"
                    raise DeriveError(
                        f"{{% {name} %}} does not close anything open here (expected {expected})",
                        page=display,
                        line=number,
                    )
                if open_blocks.pop()[2]:
                    prose_depth -= 1
            elif name == "include":
                if not prose_depth:
                    self._include(rest, path, pos, stack)
            else:
                raise DeriveError(f"unknown directive {{% {name} %}}", page=display, line=number)
            if after and not prose_depth:  # "{% endnote %} ||": the row goes on after the directive
                self.out.append(Line(after, pos))
        if fence is not None:
            raise DeriveError("code block is never closed", page=display, line=len(lines))
        if open_blocks:
            closing, number, _ = open_blocks[-1]
            raise DeriveError(f"directive is never closed (no {{% {closing} %}})", page=display, line=number)

    def _include(self, argument: str, base: Path, pos: SourcePos, stack: tuple[Path, ...]) -> None:
        match = _INCLUDE.match(argument)
        if match is None:
            raise DeriveError(
                f"cannot read the include {argument!r} (expected [title](path))", page=pos.page, line=pos.line
            )
        target = self.tree.resolve(match["path"], base)
        if target is None:
            raise DeriveError(
                f"included file {match['path']} not found (pass --docs-root, the folder holding _includes/)",
                page=pos.page,
                line=pos.line,
            )
        if target in stack:
            raise DeriveError(f"include cycle through {match['path']}", page=pos.page, line=pos.line)
        if self.tree.display(target) == REQUIRED_INCLUDE or target.as_posix().endswith(
            "/" + REQUIRED_INCLUDE
        ):
            self.required_aware.add(pos.page)
        self._splice_include(target, (*stack, target))

    def _splice_include(self, path: Path, stack: tuple[Path, ...]) -> None:
        """Splice an included file, once per file version and tree: the same few includes (the required
        footnote, the auth table, the error tables) are spliced into thousands of pages."""
        try:
            status = path.stat()
        except OSError:
            self.splice(path, stack)  # splice names the problem
            return
        key = (self.tree.page_root, self.tree.docs_root, path, len(stack), status.st_size, status.st_mtime_ns)
        cached = _INCLUDES.get(key)
        if cached is None:
            sub = _Splicer(self.tree)
            sub.splice(path, stack)
            files = tuple((d, f) for d, f in self.tree.files.items())
            cached = (tuple(sub.out), frozenset(sub.required_aware), files)
            if len(_INCLUDES) >= _MAX_CACHED_INCLUDES:
                _INCLUDES.clear()
            _INCLUDES[key] = cached
        lines, aware, files = cached
        if len(self.out) + len(lines) > MAX_LINES:
            raise DeriveError(f"page expands to more than {MAX_LINES} lines", page=self.tree.display(path))
        self.out.extend(lines)
        self.required_aware |= aware
        for display, file in files:
            self.tree.files.setdefault(display, file)


def _cut_blocks(lines: list[Line]) -> list[Block]:
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.text.strip()
        if line.code:
            blocks.append(Text(line))
        elif stripped.startswith("#|"):
            end = _table_end(lines, index)
            indent = line.text[: len(line.text) - len(line.text.lstrip())]
            body = tuple(
                Line(_dedent(inner.text, indent), inner.pos, inner.code) for inner in lines[index + 1 : end]
            )
            blocks.append(TableBlock(body, line.pos))
            index = end
        elif stripped.startswith("|#"):
            raise DeriveError("table end |# without a table start #|", page=line.pos.page, line=line.pos.line)
        elif line.text[:1] == "#" and (heading := _HEADING.match(line.text)) is not None:
            text = heading["text"]
            anchor_match = _ANCHOR.search(text)
            anchor = anchor_match["anchor"] if anchor_match else None
            if anchor_match:
                text = text[: anchor_match.start()]
            blocks.append(Heading(len(heading["hashes"]), text.strip(), anchor, line.pos))
        else:
            blocks.append(Text(line))
        index += 1
    return blocks


def _table_end(lines: list[Line], start: int) -> int:
    """Index of the ``|#`` closing the table opened at ``start`` (tables may nest inside cells)."""
    depth = 0
    for index in range(start, len(lines)):
        line = lines[index]
        if line.code:
            continue
        stripped = line.text.strip()
        if stripped.startswith("#|"):
            depth += 1
            if depth > MAX_TABLE_NESTING:
                raise DeriveError(
                    f"tables nested deeper than {MAX_TABLE_NESTING}", page=line.pos.page, line=line.pos.line
                )
        elif stripped.startswith("|#"):
            depth -= 1
            if depth == 0:
                return index
    opener = lines[start].pos
    raise DeriveError("table #| is never closed with |#", page=opener.page, line=opener.line)


def _dedent(text: str, indent: str) -> str:
    return text[len(indent) :] if indent and text.startswith(indent) else text


def load_document(tree: DocsTree) -> Document:
    """Read the tree's page with its includes and cut it into blocks (layer 1)."""
    splicer = _Splicer(tree)
    splicer.splice(tree.page, (tree.page,))
    return Document(tree.display(tree.page), _cut_blocks(splicer.out), splicer.required_aware)
