"""The least HTTP/1.1 a load sender needs: pre-encoded request heads and an incremental response reader.

Hand-written on purpose (the lean load sender is one of the few things this project does not take from a
library): :mod:`mock_portal.loadgen` sends one request at a time per connection and must spend as little CPU
as possible per request, so the request head is encoded once per target and body length, and the reader looks
only at what decides where a response ends (RFC 9112 §6.3) and whether the connection may be reused:

* the status line (``HTTP/1.0`` or ``HTTP/1.1``, a three-digit status);
* ``Transfer-Encoding: chunked`` (chunk sizes, extensions and trailers are read and dropped), else
  ``Content-Length`` (several different values, or one that is not a number, make the response invalid),
  else the body runs until the server closes the connection;
* ``Connection: close`` (and HTTP/1.0 without ``Connection: keep-alive``): no further request on it;
* interim ``1xx`` answers are skipped; ``204`` and ``304`` have no body.

The body is counted, never kept. Past ``max_body`` bytes the reader stops and says so (``truncated``): the
caller drops the connection rather than read the rest into the void.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

__all__ = ["MAX_HEAD_BYTES", "BadResponse", "RequestHeads", "ResponseReader"]

MAX_HEAD_BYTES = 64 * 1024
"""The largest response head read; a longer one makes the response invalid."""

_MAX_CHUNK_LINE = 4096
_MAX_KNOWN = 256
_MAX_KNOWN_BYTES = 4096
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _UNTIL_CLOSE = range(7)


class BadResponse(Exception):
    """What the server sent is not a valid HTTP/1.x response; the message says why."""


class RequestHeads:
    """``POST`` request heads for one URL, encoded once: ``wire(body)`` is the whole request as bytes.

    Headers, in this order: ``Host``, ``User-Agent``, ``Content-Type``, ``Content-Length`` (what the portal's
    deliveries carry; see :mod:`mock_portal.delivery`). The head of each body length is built once and kept.
    """

    __slots__ = ("_by_length", "_prefix")

    def __init__(self, url: str, *, user_agent: str, content_type: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        # an IPv6 literal keeps its brackets in Host; a name beyond ASCII goes as IDNA
        host = f"[{host}]" if ":" in host else host.encode("idna").decode("ascii")
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        # a path given with characters HTTP does not allow is sent percent-encoded, as a browser would
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
        if parts.query:
            target += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=~?")
        self._prefix = (
            f"POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: "
        ).encode("latin-1")
        self._by_length: dict[int, bytes] = {}

    def wire(self, body: bytes) -> bytes:
        """The request (head and body) that sends ``body``."""
        size = len(body)
        head = self._by_length.get(size)
        if head is None:
            if len(self._by_length) > 4096:  # bodies of endlessly many sizes: keep the cache bounded
                self._by_length.clear()
            head = self._by_length[size] = self._prefix + b"%d\r\n\r\n" % size
        return head + body


def _header(lower_head: bytes, name: bytes, start: int) -> list[bytes]:
    """Every value of header ``name`` (lower case, after CRLF, with the colon) in a lower-cased head, the
    first found at ``start``."""
    values = []
    while start >= 0:
        first = start + len(name)
        end = lower_head.find(b"\r\n", first)
        values.append(lower_head[first : end if end >= 0 else None].strip())
        start = lower_head.find(name, start + 1)
    return values


class ResponseReader:
    """Reads the responses of one connection, one request at a time (the sender never pipelines).

    :meth:`feed` takes the bytes as they arrive and returns True once the response to the request in flight is
    complete; then ``status``, ``keep_alive`` (whether another request may follow on this connection),
    ``body_bytes`` and ``truncated`` describe it, and :meth:`reset` prepares for the next one. ``started``
    says whether any byte of an answer arrived. :meth:`eof` is told when the server closes: it completes a
    response whose body runs until the close, and says whether one was cut short.
    """

    __slots__ = (
        "_buf",
        "_known",
        "_left",
        "_state",
        "body_bytes",
        "keep_alive",
        "max_body",
        "started",
        "status",
        "truncated",
    )

    def __init__(
        self, max_body: int = 1 << 20, known: dict[bytes, tuple[int, bool, int]] | None = None
    ) -> None:
        self.max_body = max_body
        # whole responses already read, by their exact bytes: servers answer a load run with the same bytes
        # again and again, and the same bytes always read the same way. Shared by a sender's connections.
        self._known: dict[bytes, tuple[int, bool, int]] = known if known is not None else {}
        self.reset()

    def reset(self) -> None:
        """Forget the last response (call it before sending the next request)."""
        self._buf = b""
        self._state = _HEAD
        self._left = 0
        self.status = 0
        self.keep_alive = True
        self.body_bytes = 0
        self.truncated = False
        self.started = False

    def feed(self, data: bytes) -> bool:
        """Take bytes off the connection; True once the response is complete. Raises :class:`BadResponse`.

        Bytes past the end of the response (the server sent more than it answered) leave ``keep_alive``
        False: the connection is not reused.
        """
        self.started = True
        if self._buf:
            data = self._buf + data
            self._buf = b""
        elif self._state == _HEAD:
            known = self._known.get(data)
            if known is not None:
                self.status, self.keep_alive, self.body_bytes = known
                return True
            complete = self._advance(data)
            # exactly one whole response, the connection reusable: the same bytes will read the same way
            if complete and self.keep_alive and not self.truncated and len(data) <= _MAX_KNOWN_BYTES:
                if len(self._known) >= _MAX_KNOWN:
                    self._known.clear()
                self._known[data] = (self.status, True, self.body_bytes)
            return complete
        return self._advance(data)

    def _advance(self, data: bytes) -> bool:
        state = self._state
        while state == _HEAD:
            end = data.find(b"\r\n\r\n")
            if end < 0 or end > MAX_HEAD_BYTES:
                if len(data) > MAX_HEAD_BYTES:
                    raise BadResponse(f"a response head over {MAX_HEAD_BYTES} bytes")
                self._buf = data
                return False
            head, data = data[:end], data[end + 4 :]
            state = self._parse_head(head)
            if state == _HEAD and self.status >= 200:  # a final answer without a body
                return self._done(data)
            if state == _LENGTH and not self._left:
                self._state = _HEAD
                return self._done(data)
        if state == _LENGTH:
            return self._body_by_length(data)
        if state == _UNTIL_CLOSE:
            self._count(len(data))
            if self.truncated:
                self.keep_alive = False
                return True
            return False
        if not self._chunked(data):
            return False
        return self._done(self._buf)

    def _parse_head(self, head: bytes) -> int:
        """Read a response head; set the status, reuse and framing; return the next state.

        ``_HEAD`` after an interim ``1xx`` answer (status below 200: another head follows) or for a final
        answer without a body.
        """
        if not head.startswith(b"HTTP/1.") or head[8:9] != b" " or head[12:13] not in (b" ", b"\r", b""):
            raise BadResponse(f"not an HTTP/1.x status line: {head[:40]!r}")
        code = head[9:12]
        if not code.isdigit():
            raise BadResponse(f"not a status code: {code!r}")
        status = int(code)
        if status < 100:
            raise BadResponse(f"not a status code: {code!r}")
        self.status = status
        if status < 200:
            if status == 101:
                raise BadResponse("101 Switching Protocols to a POST that asked for no upgrade")
            self._state = _HEAD
            return _HEAD
        lower = head.lower()
        at = lower.find(b"\r\nconnection:")
        connection = b",".join(_header(lower, b"\r\nconnection:", at)) if at >= 0 else b""
        if head[7:8] == b"0":  # HTTP/1.0: closed after the answer unless kept alive explicitly
            self.keep_alive = b"keep-alive" in connection
        else:
            self.keep_alive = b"close" not in connection
        if status in (204, 304):
            self._state = _HEAD
            return _HEAD
        at = lower.find(b"\r\ntransfer-encoding:")
        if at >= 0:
            codings = b",".join(_header(lower, b"\r\ntransfer-encoding:", at))
            if codings.rsplit(b",", 1)[-1].strip() != b"chunked":
                # framed by the close (RFC 9112 §6.3), and never reused
                self.keep_alive = False
                self._state = _UNTIL_CLOSE
                return _UNTIL_CLOSE
            self._state = _CHUNK_SIZE
            return _CHUNK_SIZE
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:
            self.keep_alive = False
            self._state = _UNTIL_CLOSE
            return _UNTIL_CLOSE
        values = _header(lower, b"\r\ncontent-length:", at)
        length = values[0]
        if len(values) > 1 or b"," in length:
            lengths = {v.strip() for value in values for v in value.split(b",")}
            if len(lengths) > 1:
                raise BadResponse(f"conflicting Content-Length values {sorted(lengths)!r}")
            (length,) = lengths
        if not length.isdigit() or len(length) > 18:
            raise BadResponse(f"a bad Content-Length {length[:20]!r}")
        self._left = int(length)
        self._state = _LENGTH
        return _LENGTH

    def eof(self) -> bool:
        """The server closed the connection: True if that completes the response (a body that runs until the
        close); False if the response was cut short or never started."""
        if self._state == _UNTIL_CLOSE:
            self.keep_alive = False
            return True
        return False

    # ---------------------------------------------------------------------------------------- internals

    def _done(self, rest: bytes) -> bool:
        if rest:
            self.keep_alive = False
        self._buf = b""
        return True

    def _count(self, size: int) -> None:
        self.body_bytes += size
        if self.body_bytes > self.max_body:
            self.body_bytes = self.max_body
            self.truncated = True

    def _body_by_length(self, data: bytes) -> bool:
        size = len(data)
        if size < self._left:
            self._left -= size
            self._count(size)
            if self.truncated:
                self.keep_alive = False
                return True
            return False
        self._count(self._left)
        rest = data[self._left :]
        self._left = 0
        self._state = _HEAD
        return self._done(rest)

    def _chunked(self, data: bytes) -> bool:
        """Advance through a chunked body; True when the last chunk and the trailers have been read."""
        while True:
            state = self._state
            if state == _CHUNK_DATA:
                size = len(data)
                if size < self._left:
                    self._left -= size
                    self._count(size)
                    if self.truncated:
                        self.keep_alive = False
                        self._buf = b""
                        return True
                    return False
                self._count(self._left)
                data = data[self._left :]
                self._left = 0
                self._state = _CHUNK_END
                continue
            end = data.find(b"\r\n")
            if end < 0:
                if len(data) > _MAX_CHUNK_LINE:
                    raise BadResponse("a chunk-size or trailer line too long")
                self._buf = data
                return False
            line, data = data[:end], data[end + 2 :]
            if state == _CHUNK_END:
                if line:
                    raise BadResponse("a chunk not followed by CRLF")
                self._state = _CHUNK_SIZE
            elif state == _CHUNK_SIZE:
                digits = line.split(b";", 1)[0].strip()
                try:
                    size = int(digits, 16)
                except ValueError:
                    raise BadResponse(f"a bad chunk size {digits[:20]!r}") from None
                if size < 0 or digits.startswith((b"-", b"+", b"0x", b"0X")):
                    raise BadResponse(f"a bad chunk size {digits[:20]!r}")
                self._left = size
                self._state = _CHUNK_DATA if size else _TRAILER
            elif not line:  # _TRAILER: the empty line ends the message
                self._state = _HEAD
                self._buf = data
                return True
