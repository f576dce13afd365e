"""Socket Mode for the fake Slack (`bot.fakeslack`): the WebSocket side of Slack's Socket Mode.

Slack's flow, copied here: the app calls `apps.connections.open` with its app-level token
(`xapp-…`) and gets a one-time URL; it opens a WebSocket there and receives `hello`; Slack
sends envelopes (`{"envelope_id", "type": "slash_commands" | "interactive" | "events_api",
"payload", "accepts_response_payload"}`), and the app acknowledges each one by sending back
`{"envelope_id", "payload"?}`, the payload being what HTTP mode would answer (an ephemeral
reply to a slash command, `response_action` for a modal). Slack may ask the app to reconnect
with a `disconnect` message; the app then opens a new connection and drops the old one.

The WebSocket is the server side of RFC 6455 on the fake's own HTTP port (`GET /link/?ticket=…`
with the Upgrade handshake): client frames must be masked, server frames are not; pings are
answered with pongs; fragmented messages are joined; a close frame is answered with a close
frame. Nothing beyond the standard library is needed, so `amibot demo` stays dependency-free.

A test drives it through `FakeSlack.socket_mode`, a `SocketModeHub`: `wait_connection()`,
`push(kind, payload)` (send an envelope, wait for its ack, return the `SocketAck`),
`send(...)` (without waiting), `request_reconnect()`, `envelopes()`, `messages()`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import logging
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 1 << 20  # bytes; a longer message from a client is closed with 1009
ENVELOPE_TYPES = ("slash_commands", "interactive", "events_api")
# interactive payloads whose ack may carry a response (modal validation, select options)
_RESPONDING_INTERACTIONS = ("view_submission", "block_suggestion")


def websocket_accept(key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()


def encode_frame(opcode: int, data: bytes) -> bytes:
    """One unmasked, final frame (a server's frame)."""
    length = len(data)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return head + data


class Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _read_exactly(stream: Reader, n: int) -> bytes | None:
    data = stream.read(n) if n else b""
    return data if len(data) == n else None


def read_frame(stream: Reader) -> tuple[bool, int, bytes] | None:
    """(fin, opcode, unmasked data) of the next client frame; None at the end of the stream.
    Raises ProtocolError for an unmasked or oversized frame."""
    head = _read_exactly(stream, 2)
    if head is None:
        return None
    fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
    masked, length = bool(head[1] & 0x80), head[1] & 0x7F
    if length in (126, 127):
        extended = _read_exactly(stream, 2 if length == 126 else 8)
        if extended is None:
            return None
        length = struct.unpack("!H" if length == 126 else "!Q", extended)[0]
    if not masked:
        raise ProtocolError(1002, "client frames must be masked")
    if length > MAX_MESSAGE:
        raise ProtocolError(1009, "message too big")
    mask = _read_exactly(stream, 4)
    data = _read_exactly(stream, length)
    if mask is None or data is None:
        return None
    if length:
        key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
        data = (int.from_bytes(data, "big") ^ key).to_bytes(length, "big")
    return fin, opcode, data


@dataclass(frozen=True)
class SocketAck:
    """A client's acknowledgement of an envelope."""

    envelope_id: str
    payload: JsonDict | None  # the response payload sent with the ack, if any
    seconds: float  # from sending the envelope to receiving the ack
    message: JsonDict  # the whole message as the client sent it


class Envelope:
    """An envelope sent to a client; `wait_ack()` returns its acknowledgement."""

    def __init__(self, message: JsonDict, connection: SocketConnection) -> None:
        self.message = message
        self.envelope_id: str = message["envelope_id"]
        self.type: str = message["type"]
        self.payload: JsonDict = message["payload"]
        self.connection = connection
        self.sent_at = time.monotonic()
        self.ack: SocketAck | None = None
        self._acked = threading.Event()

    def acknowledge(self, message: JsonDict) -> bool:
        """Record the first ack; later ones are ignored (Slack takes the first). True if recorded."""
        if self.ack is not None:
            return False
        payload = message.get("payload")
        self.ack = SocketAck(
            self.envelope_id,
            payload if isinstance(payload, dict) else None,
            time.monotonic() - self.sent_at,
            message,
        )
        self._acked.set()
        return True

    def wait_ack(self, timeout: float = 10.0) -> SocketAck:
        if not self._acked.wait(timeout):
            raise AssertionError(
                f"fake slack: no ack of the {self.type} envelope {self.envelope_id} within {timeout}s"
                f" (connection {self.connection.id} {'closed' if self.connection.closed else 'open'})"
            )
        assert self.ack is not None
        return self.ack


class SocketConnection:
    """One client's WebSocket. `serve()` reads until the client or `close()` ends it."""

    def __init__(
        self, number: int, sock: socket.socket, stream: Reader, ticket: str, hub: SocketModeHub
    ) -> None:
        self.id = number
        self.ticket = ticket
        self.pings = 0  # pings the client sent (each answered with a pong)
        self.close_code: int | None = None  # from the client's close frame, if it sent one
        self._sock = sock
        self._stream = stream
        self._hub = hub
        self._send_lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def wait_closed(self, timeout: float = 10.0) -> bool:
        return self._closed.wait(timeout)

    def send_json(self, data: Mapping[str, Any]) -> None:
        self._send(OP_TEXT, json.dumps(data).encode())

    def _send(self, opcode: int, data: bytes) -> None:
        with self._send_lock:
            if self.closed:
                raise ConnectionError(f"socket mode connection {self.id} is closed")
            self._sock.sendall(encode_frame(opcode, data))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (when still open) and end the connection."""
        with contextlib.suppress(OSError):
            self._send(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:120])
        self._end()

    def _end(self) -> None:
        with self._send_lock:
            if self._closed.is_set():
                return
            self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread

    def serve(self) -> None:
        parts: list[bytes] = []
        kind: int | None = None  # the opcode of the message being joined from fragments
        try:
            while not self.closed:
                frame = read_frame(self._stream)
                if frame is None:
                    break
                fin, opcode, data = frame
                if opcode >= OP_CLOSE:  # control frames: never fragmented, at most 125 bytes
                    if not fin or len(data) > 125:
                        raise ProtocolError(1002, "bad control frame")
                    if opcode == OP_PING:
                        self.pings += 1
                        self._send(OP_PONG, data)
                    elif opcode == OP_CLOSE:
                        self.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                        self.close(1000 if self.close_code == 1005 else self.close_code)
                    elif opcode != OP_PONG:
                        raise ProtocolError(1002, f"unknown opcode {opcode}")
                    continue
                if opcode == OP_CONTINUATION:
                    if kind is None:
                        raise ProtocolError(1002, "continuation without a message")
                elif opcode in (OP_TEXT, OP_BINARY):
                    if kind is not None:
                        raise ProtocolError(1002, "new message inside a fragmented one")
                    kind = opcode
                else:
                    raise ProtocolError(1002, f"unknown opcode {opcode}")
                parts.append(data)
                if sum(map(len, parts)) > MAX_MESSAGE:
                    raise ProtocolError(1009, "message too big")
                if fin:
                    message, parts, was = b"".join(parts), [], kind
                    kind = None
                    if was == OP_TEXT:
                        self._hub._received(self, message.decode("utf-8", "replace"))
        except ProtocolError as exc:
            log.info("fake slack: socket mode protocol error: %s", exc.reason)
            self.close(exc.code, exc.reason)
        except (OSError, ValueError):
            pass
        finally:
            self._end()


class SocketModeHub:
    """The Socket Mode side of one FakeSlack: tickets, connections, envelopes and acks.
    Thread-safe. The fake calls `issue_ticket()` for apps.connections.open and `accept()` for
    a `GET /link/` request; tests call the rest."""

    def __init__(self, app_id: str, on_change: Callable[[], None] = lambda: None) -> None:
        self.app_id = app_id
        self._on_change = on_change
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tickets: set[str] = set()
        self._numbers = itertools.count(1)
        self._connections: list[SocketConnection] = []
        self._envelopes: dict[str, Envelope] = {}
        self._messages: list[tuple[int, Any]] = []

    # --- the fake's side

    def issue_ticket(self) -> str:
        """A one-time ticket for the URL that apps.connections.open answers."""
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        return ticket

    def accept(self, path: str, headers: Mapping[str, str], sock: socket.socket, stream: Reader) -> None:
        """Serve `GET /link/?ticket=…` (headers with lowercase names): the handshake, then the
        connection until it ends. Runs in the HTTP server's thread for that request."""
        key = headers.get("sec-websocket-key", "")
        upgrade = (
            headers.get("upgrade", "").lower() == "websocket"
            and "upgrade" in headers.get("connection", "").lower()
            and headers.get("sec-websocket-version") == "13"
            and key
        )
        if not upgrade:
            _http_refusal(sock, 400, "Bad Request", "expected a WebSocket upgrade (version 13)")
            return
        ticket = dict(parse_qsl(urlsplit(path).query)).get("ticket", "")
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)  # one use, as Slack's
        if not valid:
            _http_refusal(sock, 401, "Unauthorized", "unknown or used ticket; call apps.connections.open")
            return
        sock.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {websocket_accept(key)}\r\n\r\n"
            ).encode()
        )
        sock.settimeout(None)  # the client pings; the connection lives until one side ends it
        connection = SocketConnection(next(self._numbers), sock, stream, ticket, self)
        with self._changed:
            self._connections.append(connection)
            count = sum(not c.closed for c in self._connections)
        try:
            connection.send_json(
                {
                    "type": "hello",
                    "num_connections": count,
                    "debug_info": {"host": "applink-fakeslack", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": self.app_id},
                }
            )
        except OSError:
            connection._end()
        self._notify()
        try:
            connection.serve()
        finally:
            self._notify()

    def _received(self, connection: SocketConnection, text: str) -> None:
        try:
            message: Any = json.loads(text)
        except ValueError:
            message = text
        with self._changed:
            self._messages.append((connection.id, message))
            envelope = None
            if isinstance(message, dict):
                envelope = self._envelopes.get(str(message.get("envelope_id")))
        if envelope is not None and not envelope.acknowledge(message):
            log.info("fake slack: envelope %s acknowledged again", envelope.envelope_id)
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()
        self._on_change()

    # --- a test's side

    def connections(self, *, include_closed: bool = False) -> list[SocketConnection]:
        """Connections in the order they were opened (open ones only, by default)."""
        with self._lock:
            return [c for c in self._connections if include_closed or not c.closed]

    def wait_connection(
        self, timeout: float = 10.0, *, after: SocketConnection | None = None
    ) -> SocketConnection:
        """The first open connection (opened after `after`, if given), waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for connection in self._connections:
                    if not connection.closed and (after is None or connection.id > after.id):
                        return connection
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"fake slack: no Socket Mode connection within {timeout}s")
                self._changed.wait(min(remaining, 0.1))

    def send(
        self,
        kind: str,
        payload: JsonDict,
        *,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        connection: SocketConnection | None = None,
    ) -> Envelope:
        """Send an envelope of `kind` ("slash_commands", "interactive" or "events_api") to
        `connection` (default: the newest open one), shaped as Slack shapes it."""
        if kind not in ENVELOPE_TYPES:
            raise ValueError(f"unknown envelope type {kind!r}: expected one of {ENVELOPE_TYPES}")
        target = connection or self._newest()
        message: JsonDict = {"envelope_id": str(uuid.uuid4()), "type": kind, "payload": payload}
        if kind == "events_api":
            message.update(
                accepts_response_payload=False, retry_attempt=retry_attempt, retry_reason=retry_reason
            )
        else:
            if accepts_response_payload is None:
                accepts_response_payload = (
                    kind == "slash_commands" or payload.get("type") in _RESPONDING_INTERACTIONS
                )
            message["accepts_response_payload"] = accepts_response_payload
        envelope = Envelope(message, target)
        with self._lock:
            self._envelopes[envelope.envelope_id] = envelope
        target.send_json(message)
        return envelope

    def push(self, kind: str, payload: JsonDict, *, timeout: float = 10.0, **options: Any) -> SocketAck:
        """Send an envelope and wait for its ack (AssertionError if none comes within `timeout`)."""
        return self.send(kind, payload, **options).wait_ack(timeout)

    def request_reconnect(self, reason: str = "refresh_requested") -> int:
        """Send Slack's `disconnect` message to every open connection (the client should open a
        new one and drop the old). Returns how many were asked."""
        connections = self.connections()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}})
        return len(connections)

    def close_all(self, code: int = 1001, reason: str = "going away") -> None:
        """Close every open connection with a close frame (a Slack restart, or the fake stopping)."""
        for connection in self.connections():
            connection.close(code, reason)

    def envelopes(self) -> list[Envelope]:
        with self._lock:
            return list(self._envelopes.values())

    def messages(self) -> list[tuple[int, Any]]:
        """(connection id, message) for every text message clients sent, acks included."""
        with self._lock:
            return list(self._messages)

    def reset(self) -> None:
        """Close open connections and forget envelopes and messages."""
        self.close_all()
        with self._lock:
            self._envelopes.clear()
            self._messages.clear()

    def _newest(self) -> SocketConnection:
        open_ = self.connections()
        if not open_:
            raise AssertionError("fake slack: no Socket Mode client is connected")
        return open_[-1]


def _http_refusal(sock: socket.socket, status: int, phrase: str, text: str) -> None:
    body = text.encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        sock.sendall(head.encode() + body)
