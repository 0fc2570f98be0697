"""A local Ray head on loopback, started for the toolkit and stopped by the pids it started (never `ray stop`,
which would end every Ray process of the user on this machine)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from opensearch_kit.errors import KitError

OBJECT_STORE_BYTES = 300 * 1024**2  # modest: the machine is shared


def ray_binary() -> str:
    """The `ray` command of this interpreter's environment (so workers run the same Python and packages)."""
    candidate = Path(sys.executable).parent / "ray"
    if not candidate.exists():
        raise KitError("Ray is not installed", "pip install 'opensearch-kit[ray]'")
    return str(candidate)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayHead:
    """A Ray node this toolkit started: its GCS address, the `ray start --block` pid and its session id."""

    address: str
    pid: int
    temp_dir: str
    head: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def pids(self) -> list[int]:
        """Every live process of the node's session (raylet, GCS, workers)."""
        return session_pids(self.pid)

    def stop(self, timeout: float = 30) -> list[int]:
        """Terminate the node's processes (SIGTERM, SIGKILL after `timeout`); the pids ended."""
        pids = self.pids()
        _signal(pids, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.3)
        _signal([p for p in pids if _alive(p)], signal.SIGKILL)
        return pids


def start_node(
    *, head_address: str | None = None, cpus: int | None = None, gpus: int | None = None, timeout: float = 90
) -> RayHead:
    """`ray start --block` in its own session: a head on 127.0.0.1 (or a worker joining `head_address`), the
    object store capped; returns once the node is up."""
    temp_dir = f"/tmp/okit-ray-{os.getpid()}-{int(time.time() * 1000) % 10**8}"
    port = free_port()
    cmd = [
        ray_binary(), "start", "--block", "--node-ip-address", "127.0.0.1", "--disable-usage-stats",
        "--object-store-memory", str(OBJECT_STORE_BYTES), "--num-cpus", str(cpus or os.cpu_count() or 1),
    ]  # fmt: skip
    if gpus is not None:
        cmd += ["--num-gpus", str(gpus)]
    if head_address:
        cmd += ["--address", head_address]
        address = head_address
    else:
        cmd += ["--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", temp_dir]
        address = f"127.0.0.1:{port}"
    log = Path(f"{temp_dir}.log")
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=node_env())
    node = RayHead(address, proc.pid, temp_dir, head=head_address is None)
    deadline = time.monotonic() + timeout
    while "Ray runtime started" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            node.stop(5)
            raise KitError(f"ray start failed:\n{log.read_text()[-2000:]}", "see the log above; is the port free?")
        time.sleep(0.5)
    return node


def node_env() -> dict[str, str]:
    """The node's environment: Ray's memory monitor off unless asked for. It kills workers (the Serve controller
    first) when the *machine* is above 95% memory, even when others use it: on a shared host that ends a server
    that itself uses little; the OS's OOM killer still guards the machine. RAY_memory_monitor_refresh_ms set in the
    environment wins."""
    return {"RAY_memory_monitor_refresh_ms": "0", **os.environ}


def session_pids(leader: int) -> list[int]:
    """Pids whose session id is `leader` (the processes `ray start` spawned keep its session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == leader:
                found.append(int(entry.name))
        except (ProcessLookupError, PermissionError):
            continue
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
