"""Differential tests: the codec against real PHP (facts §7), through one long-lived PHP worker.

Every example either agrees with PHP byte for byte (encode) or structure and order for structure and order
(decode), or, for decode, raises WireError where PHP itself warned, truncated or produced invalid UTF-8.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_portal.errors import WireError
from mock_portal.wire import decode, encode
from tests.support.php import PhpDecoded, PhpWorker, ordered
from tests.test_wire import DECODE_CASES, DECODE_ERRORS, ENCODE_CASES, HOSTILE

pytestmark = pytest.mark.php

_EXAMPLES = settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def php(php_binary: str) -> Iterator[PhpWorker]:
    worker = PhpWorker(php_binary)
    yield worker
    worker.close()


def _json_safe(value: Any) -> Any:
    """JSON has no NAN/INF; the worker reads {"__float__": ...} as them."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": "NAN" if math.isnan(value) else ("INF" if value > 0 else "-INF")}
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def _utf8_broken(body: bytes) -> bool:
    """Our documented rule, judged independently: some name or value is not UTF-8 after urldecode."""
    for piece in body.split(b"&"):
        for part in piece.partition(b"=")[::2]:
            try:
                unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                return True
    return False


def _php_lost_data(error: WireError, body: bytes, answer: PhpDecoded, php: PhpWorker) -> bool:
    """Whether PHP itself dropped, truncated or mangled past JSON what the error says it would."""
    warned = " ".join(answer.warnings)
    if error.limit == "max_input_vars":
        return "Input variables exceeded" in warned
    if error.limit == "max_input_nesting_level":
        return "nesting level exceeded" in warned
    if error.limit == "utf-8":
        return not answer.utf8_ok or _utf8_broken(body)
    if error.limit == "nul-byte":
        if b"\x00" in body:  # parse_str reads a C string: everything from the NUL on is gone
            return php.decode(body[: body.index(b"\x00")]).json == answer.json
        names = [unquote_to_bytes(piece.partition(b"=")[0].replace(b"+", b" ")) for piece in body.split(b"&")]
        return any(b"\x00" in name for name in names)  # PHP cuts such a name at the NUL
    if error.limit == "next-index":
        return b"9223372036854775807" in body
    return False


def _agrees_with_php(body: bytes, php: PhpWorker) -> None:
    answer = php.decode(body)
    error: WireError | None = None
    try:
        ours = decode(body)
    except WireError as raised:
        error = raised
    if error is not None:
        assert _php_lost_data(error, body, answer, php), f"{error} but PHP gave {answer}"
        return
    assert not answer.warnings
    assert answer.utf8_ok
    assert ordered(ours) == answer.value()


def test_the_reference_runs_with_php_defaults(php: PhpWorker) -> None:
    info = php.info()
    assert info["version"].startswith("8.")
    assert (info["max_input_vars"], info["max_input_nesting_level"], info["precision"]) == (
        "1000",
        "64",
        "14",
    )


@pytest.mark.parametrize("payload", [c[1] for c in ENCODE_CASES], ids=[c[0] for c in ENCODE_CASES])
def test_encode_cases_match_php(php: PhpWorker, payload: dict[Any, Any]) -> None:
    assert encode(payload) == php.encode(_json_safe(payload))


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in DECODE_CASES], ids=[c[0] for c in DECODE_CASES]
)
def test_decode_cases_match_php(php: PhpWorker, body: str | bytes, expected: dict[str, Any]) -> None:
    answer = php.decode(body)
    assert not answer.warnings
    assert answer.value() == ordered(expected)
    assert ordered(decode(body)) == answer.value()


@pytest.mark.parametrize(
    ("body", "limits"), [c[1:3] for c in DECODE_ERRORS], ids=[c[0] for c in DECODE_ERRORS]
)
def test_decode_errors_are_where_php_loses_data(
    php: PhpWorker, body: str | bytes, limits: dict[str, int]
) -> None:
    if limits or (isinstance(body, str) and not body.isascii() and "\ud800" in body):
        pytest.skip("the PHP reference runs with the default limits and takes bytes only")
    raw = body.encode("utf-8") if isinstance(body, str) else body
    with pytest.raises(WireError) as caught:
        decode(raw)
    assert _php_lost_data(caught.value, raw, php.decode(raw), php)


@pytest.mark.parametrize(("body", "limit"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_bodies_against_php(php: PhpWorker, body: bytes, limit: str | None) -> None:
    if limit == "max_body_bytes":
        pytest.skip("parse_str has no size limit; the body-size rule is ours alone")
    _agrees_with_php(body, php)


# ---------------------------------------------------------------------------------------------------------
# generated structures

_RESERVED = "".join(chr(c) for c in range(0x20, 0x7F) if not chr(c).isalnum())
_CHARS = st.characters(codec="utf-8") | st.sampled_from(_RESERVED + "\x00\x7f\t\néЖ€😀")
_TEXT = st.text(_CHARS, max_size=12)
_KEY = _TEXT | st.sampled_from(
    ["0", "1", "-1", "05", "-0", "9223372036854775807", "a.b", "a b", "[", "]", "x[y]"]
)
_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)


def _trees(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        _SCALAR,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=15,
    )


_PAYLOADS = st.dictionaries(_KEY, _trees(_KEY), max_size=5)


@st.composite
def _deep_payloads(draw: st.DrawFn) -> dict[str, Any]:
    depth = draw(st.integers(1, 64))
    value: Any = draw(_SCALAR.filter(lambda v: v is not None) | st.lists(_TEXT, min_size=1, max_size=2))
    for _ in range(depth - (1 if isinstance(value, list) else 0)):
        value = draw(st.sampled_from([lambda v: {"k": v}, lambda v: [v], lambda v: {"": v}]))(value)
    return {"top": value}


@_EXAMPLES
@given(payload=_PAYLOADS)
@pytest.mark.slow
def test_encode_matches_http_build_query(php: PhpWorker, payload: dict[str, Any]) -> None:
    assert encode(payload) == php.encode(payload)


@_EXAMPLES
@given(payload=_PAYLOADS)
@pytest.mark.slow
def test_decode_of_encoded_payloads_matches_parse_str(php: PhpWorker, payload: dict[str, Any]) -> None:
    _agrees_with_php(encode(payload).encode("ascii"), php)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(payload=_deep_payloads())
@pytest.mark.slow
def test_deep_nesting_matches_php(php: PhpWorker, payload: dict[str, Any]) -> None:
    body = encode(payload)
    assert body == php.encode(payload)
    _agrees_with_php(body.encode("ascii"), php)


_TOKENS = [
    "a", "b", "0", "1", "-1", "05", "9223372036854775807", "[", "]", "[]", "[ ]", "][", " ", ".", "=", "&",
    "&&", "+", "%", "%2", "%5B", "%5D", "%5b", "%zz", "%20", "%2E", "%26", "%3D", "%00", "%C3", "%A9",
    "%C3%A9", "é", "%FF", "x y", "_", "\x00", "\xff",
]  # fmt: skip


@_EXAMPLES
@given(tokens=st.lists(st.sampled_from(_TOKENS), max_size=30))
def test_raw_bodies_match_parse_str(php: PhpWorker, tokens: list[str]) -> None:
    # "\xff" stands for a raw non-UTF-8 byte
    body = "".join(tokens).encode("utf-8").replace("\xff".encode(), b"\xff")
    _agrees_with_php(body, php)


@pytest.mark.parametrize("levels", [63, 64, 65, 66])
def test_nesting_limit_is_php_limit(php: PhpWorker, levels: int) -> None:
    body = ("a" + "[x]" * levels + "=1").encode()
    answer = php.decode(body)
    if levels <= 64:
        assert not answer.warnings
        assert ordered(decode(body)) == answer.value()
    else:
        assert any("nesting level" in warning for warning in answer.warnings)
        with pytest.raises(WireError, match="max_input_nesting_level"):
            decode(body)


@pytest.mark.parametrize("pairs", [999, 1000, 1001])
def test_input_vars_limit_is_php_limit(php: PhpWorker, pairs: int) -> None:
    body = "&".join(f"a[]={i}" for i in range(pairs)).encode()
    answer = php.decode(body)
    if pairs <= 1000:
        assert not answer.warnings
        assert ordered(decode(body)) == answer.value()
    else:
        assert any("Input variables exceeded" in warning for warning in answer.warnings)
        with pytest.raises(WireError, match="max_input_vars"):
            decode(body)
