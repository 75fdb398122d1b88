"""A delaying TCP proxy on 127.0.0.1: the latency L of a remote backend, put on the wire in front of a
local server. Every byte the client sends reaches the server L later (a delay line: bytes sent together
arrive together, so one request costs one L however it is cut into packets), and a new connection
waits L before anything flows (the TCP handshake's round trip). Answers come back at once, so a round
trip costs L. It counts the connections it accepted: what a client's pool really opened."""
from __future__ import annotations

import asyncio
import threading
from typing import Any


class DelayProxy:
    def __init__(self, target_port: int, latency_s: float, target_host: str = "127.0.0.1"):
        self.latency_s = latency_s
        self.connections = 0
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"delay-proxy-{target_port}", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1  # only this loop's thread changes it
        try:
            await asyncio.sleep(self.latency_s)
            server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(self._delayed(client_r, server_w), self._copy(server_r, client_w),
                             return_exceptions=True)

    async def _delayed(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        line: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.ensure_future(self._send_when_due(line, dst))
        try:
            while data := await src.read(65536):
                line.put_nowait((self._loop.time() + self.latency_s, data))
        finally:
            line.put_nowait((0.0, b""))
            await sender

    async def _send_when_due(self, line: asyncio.Queue, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                due, data = await line.get()
                if not data:
                    break
                wait = due - self._loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            _close(dst)

    @staticmethod
    async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            _close(dst)


def _close(writer: Any) -> None:
    try:
        writer.close()
    except (ConnectionError, OSError, RuntimeError):
        pass
