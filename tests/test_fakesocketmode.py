"""The fake Slack's Socket Mode: apps.connections.open, and the WebSocket as slack_sdk's built-in
Socket Mode client (the one Bolt's SocketModeHandler uses) and RFC 6455 see it."""

from __future__ import annotations

import base64
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.fakeslack import APP_TOKEN, FakeSlack
from bot.fakesocketmode import OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, websocket_accept


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> Iterator[SocketModeClient]:
    """slack_sdk's built-in client, answering every envelope with its type (and a big one on ask)."""
    web = WebClient(token="xoxb-test", base_url=fake.api_url)
    sm = SocketModeClient(app_token=APP_TOKEN, web_client=web, ping_interval=0.5)

    def answer(client: Any, req: SocketModeRequest) -> None:
        text = "x" * 70_000 if req.payload.get("big") else f"got {req.type}"
        client.send_socket_mode_response(
            SocketModeResponse(envelope_id=req.envelope_id, payload={"text": text})
        )

    sm.socket_mode_request_listeners.append(answer)
    sm.connect()
    yield sm
    sm.close()


@pytest.mark.parametrize(
    ("token", "error"),
    [(None, "not_authed"), ("xoxb-test", "not_allowed_token_type"), ("xapp-1-other", "invalid_auth")],
)
def test_apps_connections_open_takes_only_the_app_token(
    fake: FakeSlack, token: str | None, error: str
) -> None:
    web = WebClient(base_url=fake.api_url)
    with pytest.raises(SlackApiError) as raised:
        web.api_call("apps.connections.open", params={"token": token} if token else {})
    assert raised.value.response["error"] == error
    url = web.apps_connections_open(app_token=APP_TOKEN)["url"]
    assert url.startswith(f"ws://127.0.0.1:{fake.port}/link/?ticket=")


def test_the_builtin_client_connects_gets_envelopes_and_acks_them(
    fake: FakeSlack, client: SocketModeClient
) -> None:
    hub = fake.socket_mode
    connection = hub.wait_connection()
    assert hub.messages() == []
    for kind, payload in [
        ("slash_commands", {"command": "/ami", "text": "help"}),
        ("interactive", {"type": "block_actions", "padding": "p" * 5000}),  # a 16-bit length frame
        ("events_api", {"type": "event_callback", "padding": "p" * 80_000}),  # a 64-bit length frame
    ]:
        ack = hub.push(kind, payload)
        assert ack.payload == {"text": f"got {kind}"}
    big = hub.push("slash_commands", {"big": True})
    assert big.payload is not None and len(big.payload["text"]) == 70_000  # the client's long frame
    sent = {e.type: e.message for e in hub.envelopes()}
    assert sent["slash_commands"]["accepts_response_payload"] is True
    assert sent["interactive"]["accepts_response_payload"] is False
    assert sent["events_api"]["retry_attempt"] == 0
    assert fake.wait_for(lambda _: connection.pings >= 2, what="pings answered")
    assert client.current_session is not None
    assert client.current_session.last_ping_pong_time is not None  # our pongs reached the client


def test_a_disconnect_message_makes_the_client_reconnect(fake: FakeSlack, client: SocketModeClient) -> None:
    hub = fake.socket_mode
    first = hub.wait_connection()
    assert hub.request_reconnect() == 1
    second = hub.wait_connection(after=first)
    assert first.wait_closed(10)
    assert len(fake.calls("apps.connections.open")) == 2
    assert hub.push("slash_commands", {"text": "again"}).payload == {"text": "got slash_commands"}
    fake.stop()  # the fake going away closes connections with a close frame
    assert second.wait_closed(5)


# --- RFC 6455 from a raw socket -------------------------------------------------------------------


def handshake(
    fake: FakeSlack, ticket: str | None = None, upgrade: bool = True
) -> tuple[socket.socket, bytes]:
    if ticket is None:
        url = WebClient(base_url=fake.api_url).apps_connections_open(app_token=APP_TOKEN)["url"]
        ticket = url.rsplit("=", 1)[-1]
    sock = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    headers = f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n" if upgrade else ""
    request = f"GET /link/?ticket={ticket} HTTP/1.1\r\nHost: x\r\n{headers}Sec-WebSocket-Version: 13\r\n\r\n"
    sock.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    if upgrade and head.startswith(b"HTTP/1.1 101"):
        assert f"Sec-WebSocket-Accept: {websocket_accept(key)}".encode() in head
    return sock, head


def frame(opcode: int, data: bytes, *, fin: bool = True, masked: bool = True) -> bytes:
    mask = os.urandom(4) if masked else b""
    length = len(data)
    second = (0x80 if masked else 0) | (length if length < 126 else 126)
    head = struct.pack("!BB", (0x80 if fin else 0) | opcode, second)
    if length >= 126:
        head += struct.pack("!H", length)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(data)) if masked else data
    return head + mask + body


def read(sock: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    first, second = exactly(2)
    assert not second & 0x80, "server frames are not masked"
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", exactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", exactly(8))
    return first & 0x0F, exactly(length)


def test_handshake_tickets_are_single_use_and_upgrades_required(fake: FakeSlack) -> None:
    sock, head = handshake(fake)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols")
    opcode, hello = read(sock)
    assert opcode == OP_TEXT and b'"type": "hello"' in hello
    ticket = fake.socket_mode.connections()[0].ticket
    again, refused = handshake(fake, ticket)
    assert refused.startswith(b"HTTP/1.1 401")
    plain, bad = handshake(fake, upgrade=False)
    assert bad.startswith(b"HTTP/1.1 400")
    fake.down()
    down, unavailable = handshake(fake, "any")
    assert b" 503 " in unavailable.split(b"\r\n")[0]
    for s in (sock, again, plain, down):
        s.close()


def test_frames_ping_fragments_close_and_unmasked_frames(fake: FakeSlack) -> None:
    sock, _ = handshake(fake)
    read(sock)  # hello
    connection = fake.socket_mode.wait_connection()
    sock.sendall(frame(OP_PING, b"are you there"))
    assert read(sock) == (OP_PONG, b"are you there")
    sock.sendall(
        frame(OP_TEXT, b'{"envelope_id": "e1", ', fin=False) + frame(OP_CONTINUATION, b'"payload": {}}')
    )
    fake.wait_for(lambda f: f.socket_mode.messages(), what="the joined message")
    assert fake.socket_mode.messages() == [(connection.id, {"envelope_id": "e1", "payload": {}})]
    sock.sendall(frame(OP_CLOSE, struct.pack("!H", 1000)))
    assert read(sock) == (OP_CLOSE, struct.pack("!H", 1000))
    assert connection.wait_closed(5) and connection.close_code == 1000
    sock.close()

    sock, _ = handshake(fake)
    read(sock)
    sock.sendall(frame(OP_TEXT, b"{}", masked=False))
    opcode, data = read(sock)
    assert opcode == OP_CLOSE and struct.unpack("!H", data[:2])[0] == 1002
    sock.close()
