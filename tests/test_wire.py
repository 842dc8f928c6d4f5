"""Unit tests of the wire codec, rule by rule. The same tables run against real PHP in test_wire_php.py."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import OrderedDict
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mock_portal
from mock_portal import wire
from mock_portal.errors import MockPortalError, WireError
from mock_portal.wire import decode, encode
from tests.support.php import ordered

# ---------------------------------------------------------------------------------------------------------
# encode: (id, payload, the bytes PHP 8.2's http_build_query gives)

ENCODE_CASES: list[tuple[str, dict[Any, Any], str]] = [
    ("flat-strings", {"event": "ONSESSIONSTART", "ts": "1735900000"}, "event=ONSESSIONSTART&ts=1735900000"),
    ("key-order-kept", {"b": "1", "a": "2", "c": "3"}, "b=1&a=2&c=3"),
    ("nested-brackets-encoded", {"data": {"DATA": {"line_id": "128"}}}, "data%5BDATA%5D%5Bline_id%5D=128"),
    ("list-indices", {"a": ["x", "y"]}, "a%5B0%5D=x&a%5B1%5D=y"),
    ("tuple-is-a-list", {"a": ("x", "y")}, "a%5B0%5D=x&a%5B1%5D=y"),
    ("list-of-dicts", {"m": [{"id": "1"}, {"id": "2"}]}, "m%5B0%5D%5Bid%5D=1&m%5B1%5D%5Bid%5D=2"),
    ("true-is-1-false-is-0", {"t": True, "f": False}, "t=1&f=0"),
    ("none-omitted", {"a": None, "b": "1", "c": None}, "b=1"),
    ("empty-containers-omitted", {"e": {}, "l": [], "b": "1", "n": {"x": {}, "y": None}}, "b=1"),
    ("none-in-list-keeps-indices", {"a": ["x", None, "z"]}, "a%5B0%5D=x&a%5B2%5D=z"),
    (
        "ints",
        {"i": 42, "neg": -7, "big": 2**63 - 1, "small": -(2**63)},
        "i=42&neg=-7&big=9223372036854775807&small=-9223372036854775808",
    ),
    ("space-is-plus", {"sp ace": "a b"}, "sp+ace=a+b"),
    ("tilde-escaped", {"t~": "~"}, "t%7E=%7E"),
    ("star-escaped-dash-dot-underscore-kept", {"k": "*-._"}, "k=%2A-._"),
    (
        "reserved-ascii",
        {"r": "!\"#$%&'()+,/:;<=>?@[\\]^`{|}"},
        "r=%21%22%23%24%25%26%27%28%29%2B%2C%2F%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E%60%7B%7C%7D",
    ),
    ("control-chars", {"c": "\x00\x1f\x7f\t\n"}, "c=%00%1F%7F%09%0A"),
    ("unicode-utf8-bytes", {"u": "é€😀"}, "u=%C3%A9%E2%82%AC%F0%9F%98%80"),
    (
        "cyrillic-key",
        {"имя": "Открытая линия"},
        "%D0%B8%D0%BC%D1%8F=%D0%9E%D1%82%D0%BA%D1%80%D1%8B%D1%82%D0%B0%D1%8F+%D0%BB%D0%B8%D0%BD%D0%B8%D1%8F",
    ),
    ("brackets-in-keys-escaped", {"bad[": {"in]": "1"}}, "bad%5B%5Bin%5D%5D=1"),
    ("int-keys", {5: "five", -3: "neg", "s": {7: "x", 2: "y"}}, "5=five&-3=neg&s%5B7%5D=x&s%5B2%5D=y"),
    ("empty-key", {"": "e", "o": {"": "x"}}, "=e&o%5B%5D=x"),
    ("empty-string-value", {"text": ""}, "text="),
    ("empty-payload", {}, ""),
    (
        "floats",
        {"a": 0.1, "b": 2.5, "c": 1.0, "d": -0.0, "e": 0.30000000000000004, "f": 123.456},
        "a=0.1&b=2.5&c=1&d=-0&e=0.3&f=123.456",
    ),
    (
        "floats-exponent",
        {"a": 1e20, "b": 1e15, "c": 1e14, "d": 123456789012345678.0, "e": 1e-5, "f": -1.5e-7},
        "a=1.0E%2B20&b=1.0E%2B15&c=1.0E%2B14&d=1.2345678901235E%2B17&e=1.0E-5&f=-1.5E-7",
    ),
    (
        "floats-precision-14",
        {"a": 0.0001, "b": 99999999999999.5, "c": 0.00012345678901234567},
        "a=0.0001&b=1.0E%2B14&c=0.00012345678901235",
    ),
    ("floats-special", {"n": math.nan, "i": math.inf, "m": -math.inf}, "n=NAN&i=INF&m=-INF"),
    ("ordered-dict", {"o": OrderedDict([("z", "1"), ("a", "2")])}, "o%5Bz%5D=1&o%5Ba%5D=2"),
]


@pytest.mark.parametrize(
    ("payload", "expected"), [c[1:] for c in ENCODE_CASES], ids=[c[0] for c in ENCODE_CASES]
)
def test_encode(payload: dict[Any, Any], expected: str) -> None:
    assert encode(payload) == expected


def test_encode_reuses_memoised_names_correctly() -> None:
    # the same keys under different parents must not share their encoded names
    assert encode({"a": {"x": "1"}, "b": {"x": "2"}}) == "a%5Bx%5D=1&b%5Bx%5D=2"
    assert encode({"x": "3"}) == "x=3"
    assert encode({"b": {"x": "4"}}) == "b%5Bx%5D=4"


def _deep(levels: int) -> dict[str, Any]:
    payload: dict[str, Any] = {"leaf": "1"}
    for _ in range(levels):
        payload = {"k": payload}
    return payload


ENCODE_ERRORS: list[tuple[str, Any, str, str]] = [
    ("bool-key", {"a": {True: "x"}}, "type", "a"),
    ("float-key", {"a": {1.5: "x"}}, "type", "a"),
    ("none-key", {None: "x"}, "type", "<top level>"),
    ("int-value-over-int64", {"a": {"b": 2**63}}, "int64", "a[b]"),
    ("int-key-over-int64", {"a": {2**63: "x"}}, "int64", "a"),
    ("int-and-numeric-string-key", {"a": {"1": "x", 1: "y"}}, "duplicate-key", "a"),
    ("bytes-value", {"a": [b"x"]}, "type", "a[0]"),
    ("set-value", {"a": {"x"}}, "type", "a"),
    ("object-value", {"a": object()}, "type", "a"),
    ("lone-surrogate-value", {"a": "\ud800"}, "utf-8", "a"),
    ("lone-surrogate-key", {"a": {"\udc80": "x"}}, "utf-8", "a"),
    ("payload-not-a-mapping", ["a"], "type", "<top level>"),
    ("deeper-than-64-brackets", _deep(65), "max_input_nesting_level", "k" + "[k]" * 64),
]


@pytest.mark.parametrize(
    ("payload", "limit", "where"), [c[1:] for c in ENCODE_ERRORS], ids=[c[0] for c in ENCODE_ERRORS]
)
def test_encode_rejects_clearly(payload: Any, limit: str, where: str) -> None:
    with pytest.raises(WireError) as caught:
        encode(payload)
    assert caught.value.limit == limit
    assert caught.value.where == where
    assert where in str(caught.value)
    assert "\n" not in str(caught.value)


def test_encode_64_bracket_levels_is_fine_and_the_limit_can_be_lifted() -> None:
    assert encode(_deep(64)) == "k" + "%5Bk%5D" * 63 + "%5Bleaf%5D=1"
    assert encode(_deep(100), max_nesting_level=None).endswith("%5Bleaf%5D=1")
    with pytest.raises(WireError, match="max_input_nesting_level"):
        encode(_deep(3), max_nesting_level=2)


def test_encode_stops_a_cyclic_payload() -> None:
    cyclic: dict[str, Any] = {"a": "1"}
    cyclic["self"] = cyclic
    with pytest.raises(WireError, match="cyclic") as caught:
        encode(cyclic)
    assert caught.value.limit == "max_input_nesting_level"


# ---------------------------------------------------------------------------------------------------------
# decode: (id, body, what PHP 8.2's parse_str gives, as json_encode shows it; top level always a dict)

DECODE_CASES: list[tuple[str, str | bytes, dict[str, Any]]] = [
    ("flat", "event=ONSESSIONSTART&ts=1735900000", {"event": "ONSESSIONSTART", "ts": "1735900000"}),
    ("nested", "data%5BDATA%5D%5Bline_id%5D=128", {"data": {"DATA": {"line_id": "128"}}}),
    ("raw-brackets", "a[b][c]=1", {"a": {"b": {"c": "1"}}}),
    ("list", "a[0]=x&a[1]=y", {"a": ["x", "y"]}),
    ("append", "a[]=1&a[]=2", {"a": ["1", "2"]}),
    ("append-with-space", "a[ ]=1&a[ ]=2", {"a": ["1", "2"]}),
    ("two-spaces-is-a-key", "a[  ]=1", {"a": {"  ": "1"}}),
    (
        "append-with-one-whitespace",
        "a[%09]=1&a[%0A]=2&a[%0B]=3&a[%0C]=4&a[%0D]=5",
        {"a": ["1", "2", "3", "4", "5"]},
    ),
    ("whitespace-then-text-is-a-key", "a[%09b]=1&a[%0D%0D]=2", {"a": {"\tb": "1", "\r\r": "2"}}),
    ("unclosed-bracket-keeps-tab", "a[%09=1", {"a_\t": "1"}),
    ("top-level-keeps-leading-tab", "%09a=1", {"\ta": "1"}),
    ("append-nested", "a[][]=1&a[][]=2", {"a": [["1"], ["2"]]}),
    ("append-under-key", "a[b][]=1&a[b][]=2", {"a": {"b": ["1", "2"]}}),
    ("keys-out-of-order-are-a-dict", "a[1]=x&a[0]=y", {"a": {"1": "x", "0": "y"}}),
    ("append-after-int-key", "a[5]=x&a[]=y", {"a": {"5": "x", "6": "y"}}),
    ("append-after-negative-key", "a[-5]=x&a[]=y", {"a": {"-5": "x", "-4": "y"}}),
    ("append-after-minus-one-makes-0-1", "a[-1]=1&a[]=2&a[]=3", {"a": {"-1": "1", "0": "2", "1": "3"}}),
    ("append-after-gap", "a[]=1&a[3]=2&a[]=3", {"a": {"0": "1", "3": "2", "4": "3"}}),
    ("append-after-string-key", "a[x]=1&a[]=2", {"a": {"x": "1", "0": "2"}}),
    ("leading-zero-is-a-string-key", "a[05]=x&a[]=y", {"a": {"05": "x", "0": "y"}}),
    ("minus-zero-is-a-string-key", "a[-0]=1&a[]=2", {"a": {"-0": "1", "0": "2"}}),
    (
        "over-int64-is-a-string-key",
        "a[9223372036854775808]=1&a[]=2",
        {"a": {"9223372036854775808": "1", "0": "2"}},
    ),
    (
        "append-up-to-int64-max",
        "a[9223372036854775806]=1&a[]=2",
        {"a": {"9223372036854775806": "1", "9223372036854775807": "2"}},
    ),
    (
        "int64-min-key",
        "a[-9223372036854775808]=1&a[]=2",
        {"a": {"-9223372036854775808": "1", "-9223372036854775807": "2"}},
    ),
    ("duplicate-last-wins-in-first-place", "a[x]=1&a[y]=2&a[x]=3", {"a": {"x": "3", "y": "2"}}),
    ("overwrite-by-index", "a[]=1&a[0]=2", {"a": ["2"]}),
    ("scalar-replaced-by-array", "a=1&a[b]=2", {"a": {"b": "2"}}),
    ("array-replaced-by-scalar", "a[b]=2&a=1", {"a": "1"}),
    ("scalar-inside-replaced-by-array", "a[x]=1&a[x][y]=2&a[z]=3", {"a": {"x": {"y": "2"}, "z": "3"}}),
    ("list-item-replaced-by-array", "a[0]=1&a[0][]=2&a[1]=3", {"a": [["2"], "3"]}),
    ("top-level-numeric-names-stay-a-dict", "0=a&1=b", {"0": "a", "1": "b"}),
    ("unclosed-bracket-becomes-underscore", "a[=1", {"a_": "1"}),
    ("unclosed-bracket-mangles-rest", "a[b.c=1", {"a_b_c": "1"}),
    ("unclosed-bracket-mangles-space-dot-bracket", "a[b c[d=1", {"a_b_c_d": "1"}),
    ("unclosed-bracket-after-space", "a[ b=1", {"a__b": "1"}),
    ("unclosed-deeper-bracket-ends-key", "a[b][c=1", {"a": {"b": "1"}}),
    ("unclosed-empty-deeper-bracket", "a[x][=1", {"a": {"x": "1"}}),
    ("unclosed-space-deeper-bracket", "a[x][ =1", {"a": {"x": "1"}}),
    ("text-after-bracket-ignored", "a[b]c=1", {"a": {"b": "1"}}),
    ("text-after-bracket-ends-key", "a[b]c[d]=1", {"a": {"b": "1"}}),
    ("junk-between-brackets", "x[a][b]junk[c]=1", {"x": {"a": {"b": "1"}}}),
    ("append-then-junk", "a[]x[y]=1", {"a": ["1"]}),
    ("extra-close-bracket", "a[]]=1", {"a": ["1"]}),
    ("bracket-inside-index", "a[b[c]=1", {"a": {"b[c": "1"}}),
    ("space-bracket-inside-index", "a[ [b]=1", {"a": {" [b": "1"}}),
    ("dot-inside-index-kept", "a[.]=1", {"a": {".": "1"}}),
    ("close-bracket-in-name", "a]=1", {"a]": "1"}),
    ("empty-name-dropped", "=x&b=1", {"b": "1"}),
    ("bracket-only-name-dropped", "[a]=1", {}),
    ("escaped-bracket-only-name-dropped", "%5B=1", {}),
    ("escaped-brackets-parse", "a%5Bb%5D=1", {"a": {"b": "1"}}),
    ("escaped-unclosed-bracket", "a%5B=1&a%5Bx=2", {"a_": "1", "a_x": "2"}),
    ("top-dot-space-mangled", "a b.c[x y]=1", {"a_b_c": {"x y": "1"}}),
    ("top-dot-before-bracket", "a.b[c.d]=1", {"a_b": {"c.d": "1"}}),
    ("space-before-bracket", "a [b]=1", {"a_": {"b": "1"}}),
    ("dot-before-bracket", "a.[b]=1", {"a_": {"b": "1"}}),
    ("leading-space-stripped", "%20a=1", {"a": "1"}),
    ("leading-plus-stripped-dot-mangled", "+a.b=1", {"a_b": "1"}),
    ("leading-space-kept-in-index", " a[ b ]=1", {"a": {" b ": "1"}}),
    ("plus-is-space", "a=x+y", {"a": "x y"}),
    ("escaped-plus", "a=x%2By", {"a": "x+y"}),
    ("invalid-escapes-kept", "a=%zz%4%", {"a": "%zz%4%"}),
    ("double-percent", "a=%%41", {"a": "%A"}),
    ("lower-case-hex", "a=%c3%a9", {"a": "é"}),
    ("first-equals-splits", "a=b=c", {"a": "b=c"}),
    ("no-equals-is-empty", "a", {"a": ""}),
    ("empty-pieces-skipped", "a&&b=1&", {"a": "", "b": "1"}),
    ("leading-ampersands", "&&&a=1", {"a": "1"}),
    ("only-ampersands", "&&&", {}),
    ("empty-body", "", {}),
    ("escaped-nul-in-value-kept", "a=1%00b", {"a": "1\x00b"}),
    ("raw-utf8", "имя=значение", {"имя": "значение"}),
    ("raw-byte-plus-escape-make-one-char", b"\xc3%A9=1&a=\xc3%A9", {"é": "1", "a": "é"}),
    ("invalid-utf8-after-bracket-ignored", "a[b]%FF=1", {"a": {"b": "1"}}),
    ("trailing-junk-deep", "a[b][c]d.e=1", {"a": {"b": {"c": "1"}}}),
    ("bytes-body", b"a=1", {"a": "1"}),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in DECODE_CASES], ids=[c[0] for c in DECODE_CASES]
)
def test_decode(body: str | bytes, expected: dict[str, Any]) -> None:
    # key order matters (json_encode keeps PHP's order), so compare the ordered forms
    assert ordered(decode(body)) == ordered(expected)


def test_decode_gives_lists_only_for_0_to_n_minus_1() -> None:
    result = decode("a[0]=x&a[1]=y&b[1]=x&c[0]=x&c[2]=y")
    assert result["a"] == ["x", "y"]
    assert isinstance(result["b"], dict)
    assert isinstance(result["c"], dict)


def test_decode_of_a_repeated_shape_stays_exact() -> None:
    # the third body of one name sequence runs a compiled plan; each must still carry its own values
    bodies = [f"a[x]={i}&a[y][]=v{i}&a[y][]=w&b=%2B{i}" for i in range(5)]
    for i, body in enumerate(bodies):
        assert ordered(decode(body)) == ordered({"a": {"x": str(i), "y": [f"v{i}", "w"]}, "b": f"+{i}"})


@pytest.mark.parametrize("shift", range(4))
@pytest.mark.parametrize("unit", ["%41", "%%41", "%4x", "%zz", "%C3%A9", "a+%2B"])
def test_long_values_decode_the_same_across_chunk_boundaries(shift: int, unit: str) -> None:
    # values over 64 KiB are url-decoded in chunks; urllib's unquote follows the same rules in one go
    value = "y" * shift + unit * (3 * 65536 // len(unit))
    expected = unquote_to_bytes(value.replace("+", " ")).decode("utf-8")
    assert decode(f"a={value}") == {"a": expected}


def test_the_deepest_and_widest_shapes_compile() -> None:
    deep = "a" + "[]" * 32 + "[x]" * 32 + "=1&b=2"
    wide = "&".join(f"w[{i}][k]={i}" for i in range(1000))
    for body in (deep, wide):
        first = decode(body)
        for _ in range(3):  # the second use compiles the plan
            assert ordered(decode(body)) == ordered(first)
    assert decode(wide)["w"][999] == {"k": "999"}


def test_decode_accepts_memoryview_and_bytearray() -> None:
    assert decode(bytearray(b"a=1")) == {"a": "1"}
    assert decode(memoryview(b"a[]=1")) == {"a": ["1"]}


# ---------------------------------------------------------------------------------------------------------
# decode: what PHP drops or truncates silently raises WireError, naming the limit and the place


def _pairs(count: int) -> str:
    return "&".join(f"v{i}=1" for i in range(count))


DECODE_ERRORS: list[tuple[str, str | bytes, dict[str, int], str, str]] = [
    ("over-max-input-vars", _pairs(1001), {}, "max_input_vars", "pair 1001 (name 'v1000')"),
    (
        "over-custom-max-input-vars",
        "a=1&b=2&c=3",
        {"max_input_vars": 2},
        "max_input_vars",
        "pair 3 (name 'c')",
    ),
    ("empty-names-count-as-vars", "=1&=2&a=3", {"max_input_vars": 2}, "max_input_vars", "pair 3"),
    ("over-nesting-level", "a" + "[x]" * 65 + "=1", {}, "max_input_nesting_level", "pair 1"),
    ("unclosed-65th-bracket-counts", "a" + "[x]" * 64 + "[=1", {}, "max_input_nesting_level", "pair 1"),
    (
        "over-custom-nesting-level",
        "b=1&a[x][y]=1",
        {"max_nesting_level": 1},
        "max_input_nesting_level",
        "pair 2",
    ),
    ("over-max-body-bytes", "a=" + "x" * 100, {"max_body_bytes": 64}, "max_body_bytes", "byte 64"),
    ("raw-nul-in-body", b"a=1&b\x00c=2", {}, "nul-byte", "byte 5"),
    ("escaped-nul-in-name", "x=1&a%00b=1", {}, "nul-byte", "pair 2 (name 'a%00b') at byte 4"),
    ("invalid-utf8-value", "a=1&b=%C3", {}, "utf-8", "pair 2 (name 'b') at byte 4"),
    ("invalid-utf8-raw-value", b"a=\xff", {}, "utf-8", "pair 1 (name 'a')"),
    ("invalid-utf8-name", "%C3=1", {}, "utf-8", "pair 1"),
    ("invalid-utf8-index", "a[%C3]=1", {}, "utf-8", "pair 1"),
    ("lone-surrogate-in-str-body", "a=\ud800", {}, "utf-8", "character 2"),
    ("append-after-int64-max", "a[9223372036854775807]=1&a[]=2", {}, "next-index", "pair 2 (name 'a[]')"),
    ("offset-counts-skipped-empty-pieces", "&&a=1&b=%FF", {}, "utf-8", "pair 2 (name 'b') at byte 6"),
]


@pytest.mark.parametrize(
    ("body", "limits", "limit", "where"), [c[1:] for c in DECODE_ERRORS], ids=[c[0] for c in DECODE_ERRORS]
)
def test_decode_raises_where_php_loses_data(
    body: str | bytes, limits: dict[str, int], limit: str, where: str
) -> None:
    with pytest.raises(WireError) as caught:
        decode(body, **limits)  # type: ignore[arg-type]
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, MockPortalError)
    assert error.limit == limit
    assert error.where is not None
    assert error.where.startswith(where)
    assert f"limit: {limit}" in str(error)
    assert "\n" not in str(error)


def test_decode_exactly_at_the_limits_is_fine() -> None:
    assert len(decode(_pairs(1000))) == 1000
    deep = decode("a" + "[x]" * 64 + "=1")
    for _ in range(65):  # "a", then 64 times "x"
        deep = deep["a" if "a" in deep else "x"]
    assert deep == "1"
    assert decode("a=" + "x" * 62, max_body_bytes=64) == {"a": "x" * 62}


def test_a_cached_shape_still_obeys_tighter_limits() -> None:
    body = "p=1&q[r][s]=2&t=3"
    assert decode(body) == {"p": "1", "q": {"r": {"s": "2"}}, "t": "3"}
    with pytest.raises(WireError, match="max_input_vars"):
        decode(body, max_input_vars=2)
    with pytest.raises(WireError, match="max_input_nesting_level"):
        decode(body, max_nesting_level=1)


def test_decode_rejects_a_non_body() -> None:
    with pytest.raises(WireError, match="str or bytes") as caught:
        decode(123)  # type: ignore[arg-type]
    assert caught.value.limit == "type"


def test_errors_never_show_values() -> None:
    secret = "s6p6eclrvim6da22ft9ch94ekreb52lv"
    for body in (f"auth[access_token]={secret}%FF", f"auth[application_token]={secret}&" + "a[]=1&" * 1000):
        with pytest.raises(WireError) as caught:
            decode(body)
        assert secret not in str(caught.value)


# ---------------------------------------------------------------------------------------------------------
# hostile bodies: each decodes exactly (PHP agreement is checked in test_wire_php.py) or raises WireError


def _hostile_binary() -> bytes:
    import random

    rng = random.Random(20240101)
    return bytes(rng.randrange(256) for _ in range(64 * 1024))


# (id, body, None if it decodes, else the expected WireError limit)
HOSTILE: list[tuple[str, bytes, str | None]] = [
    ("truncated-escape-end", b"a=%", None),
    ("truncated-escape-one-digit", b"a=%4&b=%", None),
    ("non-hex-escape", b"a=%zz&%zz=1", None),
    ("escape-of-escape", b"a=%2525", None),
    ("open-bracket", b"a[=1", None),
    ("close-bracket", b"a]=1", None),
    ("bracketed-name", b"[a]=1", None),
    ("unclosed-second-bracket", b"a[b][=1", None),
    ("double-append", b"a[][]=1", None),
    ("nul-escaped-in-value", b"a=%00", None),
    ("nul-escaped-in-name", b"a%00=1", "nul-byte"),
    ("nul-raw", b"a=1\x00&b=2", "nul-byte"),
    ("binary-64k", _hostile_binary(), "nul-byte"),
    ("binary-no-nul", bytes(range(1, 256)) * 4, "utf-8"),
    ("invalid-utf8-escapes", b"a=%C3%28&b=%FF%FE", "utf-8"),
    ("overlong-utf8", b"a=%C0%AF", "utf-8"),
    ("very-long-key", b"k" * 1_000_000 + b"=1", None),
    ("very-long-index", b"a[" + b"i" * 1_000_000 + b"]=1", None),
    ("very-long-value", b"a=" + b"%41" * 500_000, None),
    ("1000-deep-brackets", b"a" + b"[x]" * 1000 + b"=1", "max_input_nesting_level"),
    ("1000-open-brackets", b"a" + b"[" * 1000 + b"=1", None),
    ("100k-pairs", b"&".join(b"k%d=%d" % (i, i) for i in range(100_000)), "max_input_vars"),
    ("1001-vars", _pairs(1001).encode(), "max_input_vars"),
    ("1000-vars", _pairs(1000).encode(), None),
    ("10MB-body", b"a=" + b"x" * (10 * 1024 * 1024), "max_body_bytes"),
    ("8MiB-of-ampersands", b"&" * (8 * 1024 * 1024 - 8) + b"a=1", None),
    ("mangled-names", b"a.b=1&c d=2&e[f=3&g[h][i=4& j=5&k.[l]=6", None),
    ("this-and-globals-names", b"this=1&GLOBALS[x]=2&_SERVER=3", None),
    ("int-key-boundaries", b"a[9223372036854775807]=1&b[-9223372036854775809]=2&c[00]=3", None),
]


@pytest.mark.parametrize(("body", "limit"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_body_decodes_or_raises_wire_error(body: bytes, limit: str | None) -> None:
    if limit is None:
        result = decode(body)
        assert isinstance(result, dict)
    else:
        with pytest.raises(WireError) as caught:
            decode(body)
        assert caught.value.limit == limit
        assert caught.value.where


def test_hostile_bodies_leave_the_memos_bounded() -> None:
    for start in range(0, 40_000, 1000):
        decode("&".join(f"k{i}[x]=%41{i}" for i in range(start, start + 1000)))
    assert len(wire._parsed_keys) <= wire._CACHE_LIMIT
    assert len(wire._decoded_texts) <= wire._CACHE_LIMIT
    assert len(wire._plans) <= wire._PLAN_CACHE_LIMIT


# ---------------------------------------------------------------------------------------------------------
# round trip without PHP: decode(encode(x)) is x as PHP would hand it back

_NAME = st.text(st.characters(codec="utf-8", exclude_characters="[] .\x00"), min_size=1)
# "" and one whitespace character are appends ("a[]", "a[ ]") and "]" ends an index: those cannot round-trip
_INDEX = st.text(st.characters(codec="utf-8", exclude_characters="]\x00")).filter(
    lambda key: key != "" and key not in " \t\n\v\f\r"
)
_SCALAR = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(st.characters(codec="utf-8"))


def _tree(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    # empty containers are leaves, so every drawn container uses its children (hypothesis warns otherwise)
    leaves = _SCALAR | st.builds(list) | st.builds(dict)
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, min_size=1, max_size=4)
            | st.dictionaries(keys, children, min_size=1, max_size=4)
        ),
        max_leaves=12,
    )


def _php_view(value: Any) -> Any:
    """What PHP hands back for an encoded value: strings, no nulls, no empty arrays, lists for 0..n-1."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    items = list(enumerate(value)) if isinstance(value, list) else list(value.items())
    kept = [(str(key), _php_view(item)) for key, item in items]
    kept = [(key, item) for key, item in kept if item is not None]
    if not kept:
        return None
    if [key for key, _ in kept] == [str(i) for i in range(len(kept))]:
        return [item for _, item in kept]
    return dict(kept)


@pytest.mark.slow
@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.dictionaries(_NAME, _tree(_INDEX), max_size=5))
def test_round_trip(payload: dict[str, Any]) -> None:
    expected = {
        key: item for key, item in ((k, _php_view(v)) for k, v in payload.items()) if item is not None
    }
    assert ordered(decode(encode(payload))) == ordered(expected)


# ---------------------------------------------------------------------------------------------------------
# the package surface


def test_reexported_lazily_from_the_package() -> None:
    assert mock_portal.encode is encode
    assert mock_portal.decode is decode
    assert issubclass(WireError, ValueError)


def test_importing_the_codec_stays_light() -> None:
    code = (
        "import sys, mock_portal.wire; "
        "heavy = [m for m in ('jsonschema', 'aiohttp', 'uvicorn', 'faker', 'httpx', 'referencing') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
