"""The wire codec: PHP's ``http_build_query`` and ``parse_str``, byte for byte.

A Bitrix24 portal delivers every event as an ``application/x-www-form-urlencoded`` body built by PHP
``http_build_query`` (facts §1), and a PHP handler reads it back with ``parse_str`` (or ``$_POST``, which
applies the same rules). PHP is the reference (facts §7): :func:`encode` gives the bytes
``http_build_query($payload)`` gives, and :func:`decode` gives what ``parse_str`` gives, shaped as
``json_encode`` would show it. The reference is PHP 8.2 with its default ini settings
(``precision`` 14, ``arg_separator.output`` ``&``, ``max_input_vars`` 1000, ``max_input_nesting_level`` 64);
the differential tests in ``tests/test_wire_php.py`` hold the two side by side.

Encoding (``http_build_query``, PHP_QUERY_RFC1738)
    Keys keep their order; nested keys are ``outer%5Binner%5D``; list items are ``[0]``, ``[1]``...;
    ``True`` is ``1``, ``False`` is ``0``; ``None`` and empty containers are left out (facts §1); letters,
    digits, ``-``, ``.`` and ``_`` are kept, a space is ``+``, every other byte of the UTF-8 text is ``%XX``
    (so ``~`` is ``%7E`` and ``*`` is ``%2A``). Floats are written as PHP writes them, ``%.14G`` in PHP's own
    layout (``0.1``, ``1.0E+20``, ``-0``, ``NAN``, ``INF``). Integer keys are written in decimal. Keys must be
    ``str`` or ``int``, integers must fit PHP's 64-bit int, and ``1`` and ``"1"`` in one mapping are refused
    (PHP would merge them); anything else raises :class:`WireError` naming the key.

Decoding (``parse_str``)
    Pairs are split on ``&`` (empty ones skipped) and at the first ``=``; ``+`` is a space; ``%XX`` is a byte
    and any other ``%`` stays as it is. A top-level name loses its leading spaces and has `` `` and ``.``
    turned into ``_`` before its first ``[``; an unclosed first ``[`` becomes ``_`` and so do `` ``, ``.`` and
    ``[`` after it; an empty name is dropped. ``[]`` appends, and so does ``[`` + one whitespace character +
    ``]``; text after a ``]`` that is not ``[`` is ignored; an unclosed deeper ``[`` ends the key at the last
    complete index. Keys that are canonical integers are PHP integer keys: an array whose keys are exactly
    ``0..n-1`` in order becomes a ``list``, any other a ``dict`` with string keys; ``[]`` appends after the
    largest integer key (so after ``-5`` comes ``-4``, as in PHP 8.2). The last value of a duplicate key wins,
    in the place the key first took. Every value is a ``str``. The top level is always a ``dict``
    (``json_encode`` would show ``0=a&1=b`` as a list, but a payload is a mapping of names).

Where PHP silently truncates or drops, :func:`decode` raises :class:`~mock_portal.errors.WireError` instead,
with ``limit`` naming the rule and ``where`` the place (pair number, key, byte offset):

=============================  ===================================================================
``limit``                      PHP's silent behaviour that we refuse
=============================  ===================================================================
``max_body_bytes``             (no limit in ``parse_str``; a POST over ``post_max_size`` is emptied)
``max_input_vars``             pairs after the 1000th are dropped, with only a warning
``max_input_nesting_level``    a key deeper than 64 brackets deletes the whole top-level variable
``nul-byte``                   a raw NUL ends the body (C string); ``%00`` in a name cuts the name
``next-index``                 ``a[]`` after integer key ``PHP_INT_MAX`` is dropped
``utf-8``                      see below
=============================  ===================================================================

Invalid UTF-8 is rejected, not replaced. A key or value that is not valid UTF-8 after percent-decoding raises
``WireError(limit="utf-8")``, even where PHP would later drop that key. Why: a portal only ever sends UTF-8
(its values come from the database via ``http_build_query``), so such a body is corrupt or hostile; PHP's own
JSON view of it fails (``json_encode`` returns ``false`` without ``JSON_INVALID_UTF8_SUBSTITUTE``);
replacing bytes with U+FFFD would silently change data, against the project's rule that bad input gets a clear
error and loses nothing; and the caller learns exactly which key carried it.

Speed: parsed keys are memoised (keys repeat across events), values without ``%``/``+`` are taken as they are,
and the splitting and escaping run in C (``bytes.split``, ``str.translate``) rather than in per-character
Python loops. Error messages never quote values, so secrets cannot leak through them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias

from mock_portal.errors import WireError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_INPUT_NESTING_LEVEL",
    "DEFAULT_MAX_INPUT_VARS",
    "decode",
    "encode",
]

DEFAULT_MAX_INPUT_VARS: Final = 1000
"""PHP's ``max_input_vars`` default: at most this many ``&``-separated pairs (facts §7)."""

DEFAULT_MAX_INPUT_NESTING_LEVEL: Final = 64
"""PHP's ``max_input_nesting_level`` default: at most this many bracket levels in one key (facts §7)."""

DEFAULT_MAX_BODY_BYTES: Final = 8 * 1024 * 1024
"""8 MiB, PHP's default ``post_max_size`` ("8M")."""

_PHP_INT_MAX: Final = 2**63 - 1
_PHP_INT_MIN: Final = -(2**63)
_PHP_PRECISION: Final = 14  # PHP's default ``precision`` ini, used by http_build_query for floats
_CACHE_LIMIT: Final = 8192  # entries per memo; a memo that fills up is cleared, so memory stays bounded
_CACHEABLE_LEN: Final = 512  # longer keys and values are not memoised

# ---------------------------------------------------------------------------------------------------------
# encode


# php_url_encode: letters, digits and "-._" stay, space is "+", every other byte is %XX (upper-case hex)
_SAFE_ASCII: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._")
_QUOTE_TABLE: Final[dict[int, str]] = {
    byte: "+" if byte == 0x20 else chr(byte) if byte in _SAFE_ASCII else f"%{byte:02X}" for byte in range(256)
}
_encoded_texts: dict[str, str] = {}
_encoded_names: dict[str, dict[str, str]] = {}
_INDEX_KEYS: Final = tuple(str(i) for i in range(256))


def _quote(text: str, encoded_name: str) -> str:
    """php_url_encode for text that is not plain ASCII letters and digits (those the callers pass as is)."""
    encoded = _encoded_texts.get(text)
    if encoded is not None:
        return encoded
    if text.isascii():
        encoded = text.translate(_QUOTE_TABLE)
    else:
        try:
            # one char per UTF-8 byte, so the 256-entry table applies byte by byte
            encoded = text.encode("utf-8").decode("latin-1").translate(_QUOTE_TABLE)
        except UnicodeEncodeError as exc:
            name = _unquote_name(encoded_name)
            raise WireError(
                f"text at {name!r} is not encodable as UTF-8 ({exc.reason} at character {exc.start})",
                limit="utf-8",
                where=name,
            ) from None
    if len(text) <= _CACHEABLE_LEN:
        if len(_encoded_texts) >= _CACHE_LIMIT:
            _encoded_texts.clear()
        _encoded_texts[text] = encoded
    return encoded


def _php_float(value: float) -> str:
    """``sprintf("%.14G")`` as PHP's own formatter (php_gcvt) writes it."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    # Python and zend_dtoa both round correctly, so 14 significant digits agree exactly
    mantissa, _, exponent = f"{value:.{_PHP_PRECISION - 1}e}".partition("e")
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    point = int(exponent) + 1  # the decimal point sits after this many digits
    if (point < -3) if point < 0 else (point > _PHP_PRECISION):
        power = point - 1
        return f"{sign}{digits[0]}.{digits[1:] or '0'}E{'-' if power < 0 else '+'}{abs(power)}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    whole = digits[:point].ljust(point, "0")
    fraction = digits[point:]
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def _unquote_name(encoded: str) -> str:
    """The PHP name of an encoded name or prefix, for messages (``data%5BDATA%5D=`` -> ``data[DATA]``)."""
    encoded = encoded.removesuffix("=").removesuffix("%5B")
    if not encoded:
        return "<top level>"
    return _urldecode(encoded.encode("ascii", "replace")).decode("utf-8", "replace")


def _names_under(prefix: str) -> dict[str, str]:
    names = _encoded_names.get(prefix)
    if names is None:
        if len(_encoded_names) >= _CACHE_LIMIT:
            _encoded_names.clear()
        names = _encoded_names[prefix] = {}
    return names


def _encode_into(
    items: Iterable[tuple[Any, Any]],
    mapping: Mapping[Any, Any] | None,
    prefix: str,
    out: list[str],
    levels_left: int,
) -> None:
    # prefix is the encoded parent name plus "%5B" (or "" at the top level); names[key] is "<name>="
    suffix = "%5D=" if prefix else "="
    names = _names_under(prefix)
    append = out.append
    for key, value in items:
        if type(key) is str:
            name = names.get(key)
            if name is None:
                name = prefix + (key if key.isalnum() and key.isascii() else _quote(key, prefix)) + suffix
                if len(names) < _CACHE_LIMIT and len(key) <= _CACHEABLE_LEN:
                    names[key] = name
        elif type(key) is int:
            name = prefix + (_INDEX_KEYS[key] if 0 <= key < 256 else str(key)) + suffix
            if mapping is not None:
                _check_int_key(key, mapping, prefix)
        else:
            raise WireError(
                f"key {key!r} under {_unquote_name(prefix)!r} is a {type(key).__name__}; "
                "keys must be str or int",
                limit="type",
                where=_unquote_name(prefix),
            )
        kind = type(value)
        if kind is str:
            append(name + value if value.isalnum() and value.isascii() else name + _quote(value, name))
        elif value is None:
            continue  # null vanishes: facts §1
        elif kind is bool:
            append(name + ("1" if value else "0"))  # true -> 1, false -> 0: facts §1
        elif kind is int:
            if not _PHP_INT_MIN <= value <= _PHP_INT_MAX:
                raise WireError(
                    f"integer at {_unquote_name(name)!r} does not fit PHP's 64-bit int",
                    limit="int64",
                    where=_unquote_name(name),
                )
            append(f"{name}{value}")
        elif kind is dict or kind is list or kind is tuple or isinstance(value, (Mapping, list, tuple)):
            if not value:
                continue  # an empty container writes nothing, so empty arrays vanish: facts §1
            if levels_left == 0:
                raise WireError(
                    f"payload nests deeper than PHP's max_input_nesting_level at {_unquote_name(name)!r} "
                    "(PHP's parse_str would drop the variable; a cyclic payload also ends here)",
                    limit="max_input_nesting_level",
                    where=_unquote_name(name),
                )
            inner = name[:-1] + "%5B"  # the name without its "="
            if kind is list or kind is tuple:
                _encode_into(enumerate(value), None, inner, out, levels_left - 1)
            elif kind is dict or isinstance(value, Mapping):
                _encode_into(value.items(), value, inner, out, levels_left - 1)
            else:
                _encode_into(enumerate(value), None, inner, out, levels_left - 1)
        elif kind is float:
            append(name + _php_float(value).replace("+", "%2B"))
        else:
            raise WireError(
                f"cannot encode a {kind.__name__} at {_unquote_name(name)!r} "
                "(supported: str, int, bool, float, None, mappings, lists, tuples)",
                limit="type",
                where=_unquote_name(name),
            )


def _check_int_key(key: int, mapping: Mapping[Any, Any], prefix: str) -> None:
    where = _unquote_name(prefix)
    if not _PHP_INT_MIN <= key <= _PHP_INT_MAX:
        raise WireError(
            f"key {key} under {where!r} does not fit PHP's 64-bit int", limit="int64", where=where
        )
    if str(key) in mapping:
        # PHP turns the string "5" into the integer key 5, so the two would be one key
        raise WireError(
            f"keys {key!r} and {str(key)!r} under {where!r} are the same PHP array key",
            limit="duplicate-key",
            where=where,
        )


def encode(
    payload: Mapping[str, Any], *, max_nesting_level: int | None = DEFAULT_MAX_INPUT_NESTING_LEVEL
) -> str:
    """Encode ``payload`` exactly as PHP ``http_build_query($payload)`` does (RFC 1738, ``&``).

    ``payload`` is a mapping of str (or int) keys to str, int, bool, float, None, or nested mappings and
    lists of them. ``max_nesting_level`` refuses payloads whose keys would carry more bracket levels than
    PHP's ``parse_str`` accepts (and stops cycles); ``None`` lifts it. Raises :class:`WireError` on anything
    PHP could not represent the same way.
    """
    if not isinstance(payload, Mapping):
        raise WireError(
            f"a payload must be a mapping of names, not a {type(payload).__name__}",
            limit="type",
            where="<top level>",
        )
    out: list[str] = []
    # each container entered adds one bracket level to the keys inside it; -1 never reaches 0
    levels = -1 if max_nesting_level is None else max_nesting_level
    _encode_into(payload.items(), payload, "", out, levels)
    return "&".join(out)


# ---------------------------------------------------------------------------------------------------------
# decode


class _PhpArray(dict[str, Any]):
    """A PHP array while it is being built: string keys plus PHP's next free index and list-ness."""

    __slots__ = ("is_list", "next_index")

    def __init__(self) -> None:
        super().__init__()
        self.next_index: int | None = None  # None: no integer key yet, so the next append is 0
        self.is_list = True  # keys so far are exactly 0..n-1 in order


# A parsed key: the top-level name, then each bracket index as (key, integer value or None); a key of None
# is an append ("[]"). ``levels`` counts the bracket levels PHP walked, including an unclosed last one.
_Step: TypeAlias = "tuple[str | None, int | None]"
_ParsedKey: TypeAlias = "tuple[tuple[str, int | None], tuple[_Step, ...], int]"
_parsed_keys: dict[bytes, _ParsedKey | tuple[()]] = {}
_decoded_texts: dict[str, str] = {}
_CANONICAL_INT: Final = re.compile(r"-?[1-9][0-9]*|0")


def _int_key(key: str) -> int | None:
    """PHP's numeric-string rule: canonical decimal integers in the 64-bit range are integer keys."""
    if len(key) > 20 or _CANONICAL_INT.fullmatch(key) is None:
        return None
    number = int(key)
    return number if _PHP_INT_MIN <= number <= _PHP_INT_MAX else None


_C_SPACE: Final = " \t\n\v\f\r"
_HEX_DIGITS: Final = "0123456789abcdefABCDEF"
_ESCAPES: Final = {
    f"{high}{low}".encode(): bytes([int(high + low, 16)]) for high in _HEX_DIGITS for low in _HEX_DIGITS
}
_URLDECODE_CHUNK: Final = 64 * 1024


def _urldecode(raw: bytes) -> bytes:
    """PHP's php_url_decode: "+" is a space, "%XX" a byte, any other "%" stays as it is.

    Unlike urllib's unquote, a bad escape costs no exception, and a long value is done in 64 KiB chunks, so
    an 8 MiB value of escapes takes a fraction of a second and a few MiB rather than seconds and 600 MiB.
    """
    raw = raw.replace(b"+", b" ")
    if len(raw) <= _URLDECODE_CHUNK:
        return _urldecode_chunk(raw)
    out: list[bytes] = []
    start = 0
    while start < len(raw):
        end = start + _URLDECODE_CHUNK
        if end < len(raw):
            # never cut an escape in two: start the next chunk at a "%" among the last two bytes
            if raw[end - 2] == 0x25:
                end -= 2
            elif raw[end - 1] == 0x25:
                end -= 1
        out.append(_urldecode_chunk(raw[start:end]))
        start = end
    return b"".join(out)


def _urldecode_chunk(raw: bytes) -> bytes:
    pieces = raw.split(b"%")
    if len(pieces) == 1:
        return raw
    escape = _ESCAPES.get
    out = [pieces[0]]
    for piece in pieces[1:]:
        byte = escape(piece[:2])
        if byte is None:
            out += (b"%", piece)
        else:
            out += (byte, piece[2:])
    return b"".join(out)


def _mangle_top(name: str) -> str:
    return name.replace(" ", "_").replace(".", "_")


def _utf8(raw: str, what: str) -> str:
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(
            f"{what} is not valid UTF-8 after percent-decoding (byte {exc.start} of it)", limit="utf-8"
        ) from None


def _parse_key(raw_key: bytes) -> _ParsedKey | tuple[()]:
    """Split a raw (still percent-encoded) name the way php_register_variable_ex does."""
    data = _urldecode(raw_key) if b"%" in raw_key or b"+" in raw_key else raw_key
    if b"\x00" in data:
        raise WireError("a name contains a NUL byte (%00); PHP would cut the name there", limit="nul-byte")
    # latin-1 maps bytes to chars one to one, so the ASCII rules below see exactly PHP's bytes
    name = data.decode("latin-1").lstrip(" ")
    length = len(name)
    open_at = name.find("[")
    if open_at < 0:
        top = _mangle_top(name)
        if not top:
            return ()  # an empty name: PHP drops the pair
        text = _utf8(top, "the name")
        return (text, _int_key(text)), (), 0
    top = _mangle_top(name[:open_at])
    if not top:
        return ()  # an empty name: PHP drops the pair
    steps: list[tuple[str | None, int | None]] = []
    levels = 0
    pos = open_at  # at a "["
    while True:
        levels += 1
        start = pos + 1
        # one C-locale whitespace character before "]" still makes an append (isspace in main/php_variables.c)
        probe = start + 1 if start < length and name[start] in _C_SPACE else start
        if probe < length and name[probe] == "]":
            close = probe
            steps.append((None, None))  # "[]" or "[ ]" appends
        else:
            close = name.find("]", probe)
            if close < 0:
                if levels == 1:
                    # not an index: the "[" becomes "_", and so do " ", "." and "[" after it
                    rest = name[start:].replace(" ", "_").replace(".", "_").replace("[", "_")
                    top = f"{top}_{rest}"
                break  # deeper: the key ends at the last complete index
            index = _utf8(name[start:close], "an index in the name")
            steps.append((index, _int_key(index)))
        pos = close + 1
        if pos >= length or name[pos] != "[":
            break  # anything after "]" that is not "[" is ignored
    text = _utf8(top, "the name")
    return (text, _int_key(text)), tuple(steps), levels


def _append(array: _PhpArray, value: Any) -> None:
    index = 0 if array.next_index is None else array.next_index
    key = str(index)
    if key in array:
        # only after PHP_INT_MAX: zend_hash_next_index_insert fails and PHP drops the value silently
        raise WireError("cannot append with [] after the largest integer key PHP allows", limit="next-index")
    if array.is_list and index != len(array):
        array.is_list = False
    array[key] = value
    array.next_index = index + 1 if index < _PHP_INT_MAX else _PHP_INT_MAX


def _store(array: _PhpArray, key: str, number: int | None, value: Any) -> None:
    if array.is_list and key not in array and number != len(array):
        array.is_list = False
    array[key] = value  # an existing key keeps its place: zend_symtable_update
    if number is not None and (array.next_index is None or number >= array.next_index):
        array.next_index = number + 1 if number < _PHP_INT_MAX else _PHP_INT_MAX


# A plan is what a sequence of names makes of a body, whatever the values: PHP's result depends on the
# names alone, so it is worked out once per name sequence and then filled with each body's values.
# A node is (is_list, keys, children); a child is a node or the position of the pair whose value it takes.
_Node: TypeAlias = "tuple[bool, tuple[str, ...], tuple[Any, ...]]"


class _Plan:
    __slots__ = ("fill", "levels", "pairs", "root", "uses")

    def __init__(self, root: _Node, pairs: int, levels: int) -> None:
        self.root = root
        self.pairs = pairs  # non-empty pairs, which count against max_input_vars
        self.levels = levels  # the deepest bracket nesting of a kept name
        self.uses = 0
        self.fill: Callable[[list[str]], dict[str, Any]] | None = None

    def apply(self, values: list[str]) -> dict[str, Any]:
        """The decoded payload: this plan's shape holding ``values`` (one per ``&`` piece)."""
        if self.fill is not None:
            return self.fill(values)
        self.uses += 1
        if self.uses >= _COMPILE_AFTER_USES:
            self.fill = _compile(self.root)
            return self.fill(values)
        result: dict[str, Any] = _fill(self.root, values)
        return result


_plans: dict[bytes, _Plan] = {}
_PLAN_CACHE_LIMIT: Final = 1024
_PLANNABLE_LEN: Final = 16 * 1024  # longer name sequences are planned every time, not memoised
# a plan seen this often is compiled (~0.1 ms once); a name sequence seen once never costs that
_COMPILE_AFTER_USES: Final = 2


def _node(array: _PhpArray) -> _Node:
    children = tuple(_node(item) if type(item) is _PhpArray else item for item in array.values())
    return (array.is_list, tuple(array), children)


def _fill(node: _Node, values: list[str]) -> Any:
    is_list, keys, children = node
    items = [values[child] if type(child) is int else _fill(child, values) for child in children]
    return items if is_list else dict(zip(keys, items, strict=True))


def _literal(node: _Node | int) -> str:
    if type(node) is int:
        return f"v[{node}]"
    is_list, keys, children = node  # type: ignore[misc]
    if is_list:
        return "[" + ", ".join(_literal(child) for child in children) + "]"
    return (
        "{"
        + ", ".join(f"{key!r}: {_literal(child)}" for key, child in zip(keys, children, strict=True))
        + "}"
    )


def _compile(node: _Node) -> Callable[[list[str]], dict[str, Any]]:
    """Turn a plan into one dict/list display, which CPython builds ~8x faster than walking the plan.

    The source holds nothing from the body but ``repr()`` of str keys (always a literal of that very str)
    and positions this module counted; it is evaluated with no builtins.
    """
    source = "lambda v: " + _literal(node)
    function: Callable[[list[str]], dict[str, Any]] = eval(  # noqa: S307 - see the docstring
        compile(source, "<mock_portal.wire plan>", "eval"), {"__builtins__": {}}
    )
    return function


def _where(data: bytes, position: int) -> str:
    """Describe the ``position``-th non-empty ``&`` piece of ``data`` for a message (never its value)."""
    offset = 0
    number = -1
    for piece in data.split(b"&"):
        if piece:
            number += 1
            if number == position:
                break
        offset += len(piece) + 1
    raw_key = piece.partition(b"=")[0]
    shown = raw_key if len(raw_key) <= 80 else raw_key[:77] + b"..."
    return f"pair {position + 1} (name {shown.decode('latin-1')!r}) at byte {offset}"


def _plan(signature: bytes, data: bytes, max_input_vars: int, max_nesting_level: int) -> _Plan:
    """Run PHP's php_register_variable_ex over the names in ``signature`` (one per non-empty piece)."""
    root = _PhpArray()
    count = 0
    deepest = 0
    parsed_keys = _parsed_keys
    for position, raw_key in enumerate(signature.split(b"&")):
        count += 1
        if count > max_input_vars:
            raise _too_many_vars(data, max_input_vars)
        try:
            parsed = parsed_keys.get(raw_key)
            if parsed is None:
                parsed = _parse_key(raw_key)
                if len(raw_key) <= _CACHEABLE_LEN:
                    if len(parsed_keys) >= _CACHE_LIMIT:
                        parsed_keys.clear()
                    parsed_keys[raw_key] = parsed
            if not parsed:
                continue  # an empty name: PHP drops the pair
            (top, top_number), steps, levels = parsed
            if levels > max_nesting_level:
                raise WireError(
                    f"name nests {levels} bracket levels, more than max_input_nesting_level="
                    f"{max_nesting_level}; PHP would delete the whole variable",
                    limit="max_input_nesting_level",
                )
            deepest = max(deepest, levels)
            _place(root, top, top_number, steps, position)
        except WireError as exc:
            # the helpers build messages without the place so the hot path pays nothing for it
            raise WireError(exc.message, limit=exc.limit, where=_where(data, position)) from None
    root.is_list = False  # the top level is a mapping of names, always
    return _Plan(_node(root), count, deepest)


def _too_many_vars(data: bytes, max_input_vars: int) -> WireError:
    return WireError(
        f"body has more than max_input_vars={max_input_vars} pairs; PHP would drop the rest",
        limit="max_input_vars",
        where=_where(data, max_input_vars),
    )


def _place(root: _PhpArray, top: str, top_number: int | None, steps: tuple[_Step, ...], leaf: int) -> None:
    array = root
    key: str | None = top
    number = top_number
    for step_key, step_number in steps:
        # walk to (or create) the array under the current key; a scalar in the way is replaced
        if key is None:
            child = _PhpArray()
            _append(array, child)
        else:
            existing = array.get(key)
            if type(existing) is _PhpArray:
                child = existing
            else:
                child = _PhpArray()
                _store(array, key, number, child)
        array = child
        key, number = step_key, step_number
    if key is None:
        _append(array, leaf)
    else:
        _store(array, key, number, leaf)


def _as_bytes(body: str | bytes | bytearray | memoryview, max_body_bytes: int) -> bytes:
    if isinstance(body, str):
        if len(body) > max_body_bytes:
            raise WireError(
                f"body has at least {len(body)} bytes, more than max_body_bytes={max_body_bytes}",
                limit="max_body_bytes",
                where=f"byte {max_body_bytes}",
            )
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise WireError(
                f"body text is not encodable as UTF-8 ({exc.reason})",
                limit="utf-8",
                where=f"character {exc.start}",
            ) from None
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    else:
        raise WireError(
            f"a body must be str or bytes, not {type(body).__name__}", limit="type", where="<body>"
        )
    if len(data) > max_body_bytes:
        raise WireError(
            f"body has {len(data)} bytes, more than max_body_bytes={max_body_bytes}",
            limit="max_body_bytes",
            where=f"byte {max_body_bytes}",
        )
    return data


_NOT_SEPARATORS: Final = bytes(byte for byte in range(256) if byte not in b"&=")
_VALUES: Final = re.compile(rb"=[^&]*")
_AMPERSANDS: Final = re.compile(rb"&{2,}")
_alternating: dict[int, bytes] = {}


def _split(data: bytes) -> tuple[bytes, list[bytes]]:
    """The names (joined by ``&``) and the raw value of every piece of a body without empty pieces."""
    separators = data.translate(None, _NOT_SEPARATORS)
    pieces = (len(separators) + 1) // 2
    expected = _alternating.get(pieces)
    if expected is None:
        expected = b"=&" * (pieces - 1) + b"=" if pieces else b"-"
        if len(_alternating) < _CACHE_LIMIT:
            _alternating[pieces] = expected
    if separators == expected:
        # "k=v&k=v...": every piece has exactly one "=", the shape http_build_query always writes
        flat = data.replace(b"&", b"=").split(b"=")
        return b"&".join(flat[0::2]), flat[1::2]
    return _VALUES.sub(b"", data), [piece.partition(b"=")[2] for piece in data.split(b"&")]


def _values(raw_values: list[bytes], data: bytes) -> list[str]:
    try:
        values = b"&".join(raw_values).decode("utf-8").split("&")  # no raw value holds "&"
    except UnicodeDecodeError:
        # a raw byte and an escape may make one character together ("\xc3%A9"), so judge each value whole
        return [_decode_bytes(raw, data, position) for position, raw in enumerate(raw_values)]
    for position, value in enumerate(values):
        if "%" in value or "+" in value:
            decoded = _decoded_texts.get(value)
            if decoded is None:
                decoded = _decode_bytes(raw_values[position], data, position)
                if len(value) <= _CACHEABLE_LEN:
                    if len(_decoded_texts) >= _CACHE_LIMIT:
                        _decoded_texts.clear()
                    _decoded_texts[value] = decoded
            values[position] = decoded
    return values


def _decode_bytes(raw: bytes, data: bytes, position: int) -> str:
    """urldecode as PHP does it ("+" is a space, bad escapes stay as they are), then strict UTF-8."""
    decoded = _urldecode(raw) if b"%" in raw or b"+" in raw else raw
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(
            f"a value is not valid UTF-8 after percent-decoding (byte {exc.start} of it)",
            limit="utf-8",
            where=_where(data, position),
        ) from None


def decode(
    body: str | bytes,
    *,
    max_input_vars: int = DEFAULT_MAX_INPUT_VARS,
    max_nesting_level: int = DEFAULT_MAX_INPUT_NESTING_LEVEL,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> dict[str, Any]:
    """Decode a form body exactly as PHP ``parse_str`` does, shaped as ``json_encode`` would show it.

    Arrays keyed ``0..n-1`` in order become lists, other arrays dicts with string keys, every scalar a str.
    A ``str`` body is taken as its UTF-8 bytes. Raises :class:`WireError` (``limit`` and ``where`` set) when a
    limit is exceeded or where PHP would silently truncate or drop data; see the module docstring.
    """
    data = _as_bytes(body, max_body_bytes)
    if not data:
        return {}
    nul_at = data.find(b"\x00")
    if nul_at >= 0:
        raise WireError(
            "body contains a raw NUL byte; PHP's parse_str would silently stop reading there",
            limit="nul-byte",
            where=f"byte {nul_at}",
        )
    pieces = data
    if b"&&" in pieces or pieces[:1] == b"&" or pieces[-1:] == b"&":
        # strtok skips empty pieces ("a=1&&b=2"); dropping them first keeps later steps linear in the pairs
        pieces = _AMPERSANDS.sub(b"&", pieces).strip(b"&")
        if not pieces:
            return {}
    if pieces.count(b"&") >= max_input_vars:  # counted before anything is split, so 100k pairs cost little
        raise _too_many_vars(data, max_input_vars)
    signature, raw_values = _split(pieces)
    plan = _plans.get(signature)
    if plan is None or plan.pairs > max_input_vars or plan.levels > max_nesting_level:
        plan = _plan(signature, data, max_input_vars, max_nesting_level)
        if len(signature) <= _PLANNABLE_LEN:
            if len(_plans) >= _PLAN_CACHE_LIMIT:
                _plans.clear()
            _plans[signature] = plan
    return plan.apply(_values(raw_values, data))
