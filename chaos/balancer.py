"""HAProxy in front of the server hosts, as docs/deployment.md describes it."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import requests

from chaos.hosts import Host

PORT = 8800

#: A server is taken out after two failed checks half a second apart, and back in after two
#: good ones; a request whose connection is refused goes to another server (`redispatch`).
CONFIGURATION = """\
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
    option http-server-close

frontend taskfarm
    bind {listen}
    default_backend servers

backend servers
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
{servers}
"""


def configuration(listen: str, hosts: Sequence[Host], port: int) -> str:
    servers = "\n".join(f"    server {host.name} {host.address}:{port} check" for host in hosts)
    return CONFIGURATION.format(listen=listen, servers=servers)


def ensure_installed() -> None:
    if shutil.which("haproxy") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "haproxy"], check=True)


@contextlib.contextmanager
def balancer(address: str, hosts: Sequence[Host], port: int, work: Path) -> Iterator[str]:
    """HAProxy on `address`, until the block ends; yields the base URL of the API."""
    config = work / "haproxy.cfg"
    config.write_text(configuration(f"{address}:{PORT}", hosts, port))
    with open(work / "haproxy.log", "ab") as log:
        process = subprocess.Popen(
            ["haproxy", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://{address}:{PORT}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(url + "readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"HAProxy did not come up; see {work / 'haproxy.log'}")
            time.sleep(0.2)
        yield url + "api/"
    finally:
        process.kill()
        process.wait()
