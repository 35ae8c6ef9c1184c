"""A private Redis Cluster on loopback for the benchmarks (`--start-cluster`).

The load benchmark must also run against a 3-master cluster; starting one here
means nobody has to set one up by hand, and the temporary directory and the
processes are always removed afterwards, even when the benchmark fails.
Synchronous on purpose: it runs before and after the event loop, never inside it.
"""

from __future__ import annotations

import functools
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

from redis import Redis

from bench.common import DEFAULT_URLS

START_TIMEOUT = 20.0


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int) -> list[int]:
    """Loopback ports that are free together with their cluster-bus port (port + 10000)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 <= 65535 and port not in ports and _port_free(port + 10000):
            ports.append(port)
    return ports


class RedisClusterServer:
    """`masters` redis-server processes on 127.0.0.1 joined into one cluster without replicas.

    Use as a context manager; `url` is a `redis+cluster://` store URL for the first node.
    """

    def __init__(self, masters: int = 3) -> None:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            raise RuntimeError("--start-cluster needs the redis-server and redis-cli binaries on PATH")
        self.masters = masters
        self.ports: list[int] = []
        self._dir: Path | None = None
        self._processes: list[subprocess.Popen[bytes]] = []
        self._previous_sigterm: Any = signal.SIG_DFL

    @property
    def url(self) -> str:
        if not self.ports:
            raise RuntimeError("the cluster is not started")
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> str:
        self._dir = Path(tempfile.mkdtemp(prefix="bench-redis-cluster-"))
        self.ports = free_cluster_ports(self.masters)
        try:
            for port in self.ports:
                self._processes.append(self._spawn(port))
            for port in self.ports:
                self._wait(functools.partial(self._ping, port), f"node {port} to answer PING")
            nodes = [f"127.0.0.1:{port}" for port in self.ports]
            subprocess.run(
                ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=START_TIMEOUT,
            )
            for port in self.ports:
                self._wait(functools.partial(self._cluster_ok, port), f"node {port} to report cluster_state:ok")
        except BaseException:
            self.stop()
            raise
        return self.url

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        assert self._dir is not None
        node_dir = self._dir / str(port)
        node_dir.mkdir()
        options = {
            "port": str(port),
            "bind": "127.0.0.1",
            "cluster-enabled": "yes",
            "cluster-config-file": str(node_dir / "nodes.conf"),
            "dir": str(node_dir),
            "save": "",
            "appendonly": "no",
        }
        argv = ["redis-server"] + [part for name, value in options.items() for part in (f"--{name}", value)]
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @staticmethod
    def _ping(port: int) -> bool:
        with Redis(port=port, socket_timeout=2) as client:
            return bool(client.ping())

    @staticmethod
    def _cluster_ok(port: int) -> bool:
        with Redis(port=port, socket_timeout=2) as client:
            info = client.execute_command("CLUSTER INFO")  # redis-py parses it into a dict
        return isinstance(info, dict) and info.get("cluster_state") == "ok"

    def _wait(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            for process in self._processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a redis-server of the benchmark cluster exited with {process.returncode}")
            try:
                if check():
                    return
            except Exception as exc:  # redis ConnectionError/BusyLoading while the node starts
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out waiting for {what}: {exc}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every node and remove the temporary directory; safe to call twice."""
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes = []
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Self:
        # a plain `kill` of the benchmark must still stop the nodes: turn SIGTERM into SystemExit
        self._previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            self.start()
        except BaseException:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            signal.signal(signal.SIGTERM, self._previous_sigterm)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def bench_urls(start_cluster: bool, backends: list[str]) -> Iterator[dict[str, str]]:
    """The benchmark store URLs; with `start_cluster`, `redis_cluster` points at a private cluster."""
    urls = dict(DEFAULT_URLS)
    if not (start_cluster and "redis_cluster" in backends):
        yield urls
        return
    with RedisClusterServer() as cluster:
        urls["redis_cluster"] = cluster.url
        yield urls
