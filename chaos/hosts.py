"""Server hosts on one machine: network namespaces joined by a bridge."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence

import attrs

BRIDGE = "tfchaos0"
PREFIX = "10.77.0."
#: The machine's own address on the bridge: HAProxy listens there.
GATEWAY = PREFIX + "1"


def _ip(*arguments: str, check: bool = True) -> None:
    subprocess.run(["ip", *arguments], check=check, capture_output=True)


@attrs.define
class Host:
    """One namespace with one address, and the processes started in it."""

    name: str
    address: str
    processes: list[subprocess.Popen[bytes]] = attrs.Factory(list)

    def start(
        self, command: Sequence[str], env: Mapping[str, str], log: str
    ) -> subprocess.Popen[bytes]:
        with open(log, "ab") as output:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.name, *command],
                env=dict(env),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def crash(self) -> None:
        """`kill -9` of everything running on the host, as a power cut would."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            process.wait()
        self.processes.clear()

    def pids(self) -> list[int]:
        listed = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in listed.stdout.split()]

    def cut_off(self) -> None:
        """Its link to the bridge goes down: nothing reaches it, nothing leaves it."""
        _ip("link", "set", f"{self.name}-br", "down")

    def reconnect(self) -> None:
        _ip("link", "set", f"{self.name}-br", "up")


@contextlib.contextmanager
def network(names: Sequence[str]) -> Iterator[list[Host]]:
    """The bridge and one namespace per name, removed on the way out whatever happened."""
    hosts = [Host(f"tfchaos-{name}", PREFIX + str(11 + i)) for i, name in enumerate(names)]
    try:
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", GATEWAY + "/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        for host in hosts:
            _ip("netns", "add", host.name)
            _ip(
                "link",
                "add",
                f"{host.name}-br",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host.name,
            )
            _ip("link", "set", f"{host.name}-br", "master", BRIDGE, "up")
            _ip("-n", host.name, "addr", "add", host.address + "/24", "dev", "eth0")
            _ip("-n", host.name, "link", "set", "eth0", "up")
            _ip("-n", host.name, "link", "set", "lo", "up")
            _ip("-n", host.name, "route", "add", "default", "via", GATEWAY)
        yield hosts
    finally:
        for host in hosts:
            host.crash()
            _ip("netns", "delete", host.name, check=False)
            _ip("link", "delete", f"{host.name}-br", check=False)
        _ip("link", "delete", BRIDGE, check=False)
