"""A Redis primary, a replica and three sentinels, started from the machine's own `redis-server` on
loopback ports of their own (26300-26399), for the failover tests. The sentinels notice a dead primary
after a second and promote the replica within a few more; the killed server is then started again as a
replica of the new primary, as an operator (or a managed service) would, so replicas can confirm
writes again."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis as redis_lib

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PORTS = range(26300, 26400)
MASTER = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


def free_ports(count: int) -> list[int]:
    """Ports of the range nobody listens on now (another session may be using some)."""
    found = []
    for port in PORTS:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis-server binds: TIME_WAIT is free
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError("no free loopback ports in 26300-26399")


def wait_until(check, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except redis_lib.RedisError:
            found = None
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class RedisHA:
    def __init__(self, root: Path):
        self.root = root
        ports = free_ports(5)
        self.data_ports, self.sentinel_ports = ports[:2], ports[2:]
        self.procs: dict[int, subprocess.Popen] = {}
        self.stopped: set[int] = set()

    # -- processes -----------------------------------------------------------------------------------

    def start(self) -> "RedisHA":
        primary, replica = self.data_ports
        self._server(primary)
        self._server(replica, replica_of=primary)
        for port in self.sentinel_ports:
            conf = self.root / f"sentinel-{port}.conf"  # sentinel rewrites its file: one each, writable
            conf.write_text(f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.root}\n"
                            f"logfile {self.root / f'sentinel-{port}.log'}\n"
                            f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n"
                            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                            f"sentinel parallel-syncs {MASTER} 1\n")
            self.procs[port] = subprocess.Popen([REDIS_SERVER, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
        self.wait_replicated()
        # Each sentinel must know the replica and the two others (hello messages every 2 s) to fail over.
        for port in self.sentinel_ports:
            s = redis_lib.Redis(port=port, socket_timeout=1)
            wait_until(lambda: len(s.sentinel_slaves(MASTER)) == 1 and len(s.sentinel_sentinels(MASTER)) == 2,
                       30, f"sentinel {port} to see the replica and the other sentinels")
        return self

    def _server(self, port: int, replica_of: int | None = None) -> None:
        data = self.root / f"redis-{port}"
        data.mkdir(exist_ok=True)
        args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "no",
                "--dir", str(data), "--appendonly", "yes", "--save", "", "--repl-diskless-sync-delay", "0", "--logfile", str(data / "log")]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.procs[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: redis_lib.Redis(port=port, socket_timeout=1).ping(), 10, f"redis on {port}")

    def stop(self) -> None:
        for port, proc in self.procs.items():
            if proc.poll() is None:
                if port in self.stopped:
                    os.kill(proc.pid, signal.SIGCONT)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    # -- who is who ----------------------------------------------------------------------------------

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def primary_port(self) -> int:
        for port in self.sentinel_ports:
            try:
                return int(redis_lib.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(MASTER)[1])
            except (redis_lib.RedisError, TypeError):
                continue
        raise AssertionError("no sentinel answers")

    def replica_port(self) -> int:
        return next(p for p in self.data_ports if p != self.primary_port())

    def primary(self, db: int = 0) -> redis_lib.Redis:
        return redis_lib.Redis(port=self.primary_port(), db=db, socket_timeout=2)

    def wait_replicated(self, timeout: float = 30) -> None:
        """The replica is linked and has every write the primary had when this was called."""
        primary = redis_lib.Redis(port=self.primary_port(), socket_timeout=2)

        def caught_up():
            info = primary.info("replication")
            replica = info.get("slave0")
            return isinstance(replica, dict) and replica.get("state") == "online" and \
                int(replica["offset"]) >= int(info["master_repl_offset"])
        wait_until(caught_up, timeout, "the replica to catch up")

    # -- faults --------------------------------------------------------------------------------------

    def kill_primary(self) -> float:
        """SIGKILL the primary; returns when (time.monotonic()) it died."""
        port = self.primary_port()
        proc = self.procs[port]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.killed = port
        return time.monotonic()

    def after_failover(self, timeout: float = 60) -> float:
        """Waits until the sentinels promoted the replica, then starts the killed server again as its
        replica and waits until it is linked; returns how long after the kill the promotion was seen."""
        killed = self.killed
        new = wait_until(lambda: (p := self.primary_port()) != killed and p, timeout, "the sentinels to fail over")
        promoted = time.monotonic()
        self._server(killed, replica_of=new)
        self.wait_replicated(timeout)
        return promoted

    def kill_replica(self) -> int:
        port = self.replica_port()
        os.kill(self.procs[port].pid, signal.SIGKILL)
        self.procs[port].wait(timeout=10)
        return port

    def restart_replica(self, port: int) -> None:
        self._server(port, replica_of=self.primary_port())
        self.wait_replicated()

    def pause_replica(self) -> int:
        """SIGSTOP the replica: it holds its connections but confirms nothing (a partitioned replica)."""
        port = self.replica_port()
        os.kill(self.procs[port].pid, signal.SIGSTOP)
        self.stopped.add(port)
        return port

    def resume_replica(self, port: int) -> None:
        os.kill(self.procs[port].pid, signal.SIGCONT)
        self.stopped.discard(port)
