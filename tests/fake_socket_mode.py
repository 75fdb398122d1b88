"""Slack's Socket Mode endpoint for tests: a WebSocket server (RFC 6455, by hand: the handshake and
frames are small) that hands the app envelopes and records what it sends back. It answers pings as
Slack does (slack_sdk drops a connection whose pings go unanswered) and, like Slack, never masks its
own frames and requires the client's to be masked. `hold()` makes new connections wait in the
handshake (a reconnect that does not get through yet); `refresh()` ends the live connection as Slack
does, `drop()` cuts it."""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
from typing import Any

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


class FakeSocketMode:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self._listener.getsockname()[1]}/link"
        self.connections = 0
        self.received: list[dict[str, Any]] = []  # the app's text frames (acks), decoded
        self.close_codes: list[int] = []  # close frames the app sent
        self._live: socket.socket | None = None
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def drop(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.shutdown(socket.SHUT_RDWR)
                self._live.close()
                self._live = None

    def send(self, envelope: dict[str, Any]) -> None:
        with self._lock:
            assert self._live is not None, "no live connection"
            self._live.sendall(_frame(0x1, json.dumps(envelope).encode()))

    def refresh(self) -> None:
        """As Slack ends a connection on its own schedule: a `disconnect` message, then the close."""
        self.send({"type": "disconnect", "reason": "refresh_requested",
                   "debug_info": {"host": "applink-test"}})

    def connected(self) -> bool:
        return self._live is not None

    def close(self) -> None:
        self.drop()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            self._open.wait(60)
            headers = dict(line.split(": ", 1) for line in request.decode().split("\r\n")[1:] if ": " in line)
            accept = base64.b64encode(hashlib.sha1((headers["Sec-WebSocket-Key"] + _GUID).encode()).digest()).decode()
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
            with self._lock:
                self._live, self.connections = conn, self.connections + 1
            conn.sendall(_frame(0x1, json.dumps({"type": "hello", "num_connections": 1}).encode()))
            self._frames(conn)
        except OSError:
            pass
        finally:
            with self._lock:
                if self._live is conn:
                    self._live = None
            conn.close()

    def _frames(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        while True:
            head = reader.read(2)
            if len(head) < 2:
                return
            opcode, masked, length = head[0] & 0x0F, head[1] & 0x80, head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", reader.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", reader.read(8))[0]
            assert masked, "a client's frames are masked (RFC 6455 5.1)"
            mask = reader.read(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(reader.read(length)))
            if opcode == 0x9:  # ping
                with self._lock:
                    conn.sendall(_frame(0xA, payload))
            elif opcode == 0x1:
                self.received.append(json.loads(payload))
            elif opcode == 0x8:
                self.close_codes.append(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005)
                with self._lock:
                    conn.sendall(_frame(0x8, payload[:2]))
                return


def _frame(opcode: int, payload: bytes) -> bytes:
    """A server's frame: FIN set, unmasked."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return head + payload
