"""A throwaway three-master Redis Cluster on loopback ports, from the installed redis-server."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MASTERS = 3
#: A cluster node also listens on its port + 10000 (the cluster bus), so ports are taken
#: from a range where both fit below 65536 and stay clear of the ephemeral ports.
NODE_PORTS = range(20000, 30000)
STARTUP_SECONDS = 30


@contextmanager
def redis_cluster(folder: Path) -> Iterator[str]:
    """Starts the nodes, joins them into a cluster, yields a `redis+cluster://` URL, and stops
    and forgets them afterwards."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise RuntimeError("redis-server and redis-cli are needed to start a Redis Cluster")
    ports = _free_node_ports(MASTERS)
    nodes = []
    try:
        for port in ports:
            node_dir = folder / str(port)
            node_dir.mkdir()
            nodes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(node_dir),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            _wait(lambda port=port: _ping(cli, port))
        addresses = [f"127.0.0.1:{port}" for port in ports]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
        )
        _wait(lambda: all(_cluster_ok(cli, port) for port in ports))
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for node in nodes:
            node.terminate()
        for node in nodes:
            node.wait(timeout=10)


def _free_node_ports(count: int) -> list[int]:
    """Ports whose cluster bus port is free too; random, so parallel sessions rarely meet."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.choice(NODE_PORTS)
        if port not in ports and _bindable(port) and _bindable(port + 10000):
            ports.append(port)
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ping(cli: str, port: int) -> bool:
    result = subprocess.run([cli, "-p", str(port), "ping"], capture_output=True, text=True)
    return result.stdout.strip() == "PONG"


def _cluster_ok(cli: str, port: int) -> bool:
    result = subprocess.run(
        [cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True
    )
    return "cluster_state:ok" in result.stdout


def _wait(ready: object) -> None:
    assert callable(ready)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError("the Redis Cluster did not come up")
        time.sleep(0.1)
