"""`opensearch-kit serve start | status | stop`: run the Ray Serve application on a local Ray head (started on
loopback when no address is given) or an existing Ray cluster; a record per HTTP port says how to find and stop it."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from opensearch_kit.cluster.local import default_home
from opensearch_kit.errors import KitError
from opensearch_kit.serve.handlers import ServedModel
from opensearch_kit.serve.ray_head import RayHead, connect, disconnect, start_node

APP_NAME = "opensearch-kit"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def record_path(port: int) -> Path:
    """Where a server's record lives: serve/<port>.json under the kit's home (see `default_home`)."""
    return default_home() / "serve" / f"{port}.json"


@dataclass
class ServerRecord:
    """A running server: its URL, the models it serves, its Ray address and the Ray head it started (if any)."""

    url: str
    port: int
    ray_address: str
    models: list[dict]
    device: str = "cpu"
    replicas: int = 1
    head: dict | None = None
    health: dict | None = field(default=None)
    host: str = "127.0.0.1"

    def to_dict(self) -> dict:
        return asdict(self) | {"exposed": self.exposed, "warning": self.warning}

    @property
    def exposed(self) -> bool:
        """Whether the HTTP routes answer beyond this machine (`--host` not loopback)."""
        return self.host not in LOOPBACK

    @property
    def warning(self) -> str | None:
        """What a user must know when the routes are exposed (None on loopback)."""
        if not self.exposed:
            return None
        return (
            f"WARNING: the HTTP routes listen on {self.host}:{self.port}: anyone who reaches this address can call "
            "the models (no authentication); --host 127.0.0.1 keeps them on this machine"
        )

    def summary(self) -> str:
        served = ", ".join(f"{m['name']} ({m['kind']})" for m in self.models)
        state = "up" if self.health else "NOT ANSWERING"
        started = f"; Ray head pid {self.head['pid']} (loopback only, token authentication)" if self.head else ""
        lines = [f"serving at {self.url} ({state}): {served}", f"Ray {self.ray_address}{started}", self.warning]
        return "\n".join(line for line in lines if line)


def http_get(url: str, timeout: float = 5) -> dict | None:
    """The JSON at `url`, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _url_host(host: str) -> str:
    """Where this machine reaches a server bound to `host` (every interface: loopback)."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def start_server(
    exports: list[str | Path],
    *,
    port: int = 8000,
    host: str = "127.0.0.1",
    device: str = "cpu",
    replicas: int = 1,
    max_batch: int = 32,
    ray_address: str | None = None,
    cpus: int | None = None,
    timeout: float = 300,
) -> ServerRecord:
    """Serve the ONNX exports over HTTP on `host`:`port` until `stop_server` (`host` is the only thing exposed:
    127.0.0.1 keeps the routes on this machine). Without `ray_address`, a Ray head is started on loopback with
    token authentication (`cpus` logical CPUs, default all); with it, that cluster's RAY_AUTH_* settings of the
    environment apply. The application replaces one already there."""
    from ray import serve

    from opensearch_kit.serve.app import build_app

    models = [ServedModel.of(e) for e in exports]
    names = [m.name for m in models]
    if not models or len(set(names)) != len(names):
        raise KitError(f"serve needs exports with distinct names, got {names}", "re-export one with --name")
    if http_get(f"http://127.0.0.1:{port}/health") and not record_path(port).exists():
        raise KitError(f"port {port} is already in use", "pass another --port")
    head = None if ray_address else start_node(cpus=cpus, gpus=None)
    address = ray_address or head.address
    try:
        connect(address, head, namespace=APP_NAME)
        serve.start(http_options={"host": host, "port": port})
        threads = max(1, (cpus or os.cpu_count() or 1) // replicas)
        serve.run(build_app(models, device, replicas, max_batch, threads), name=APP_NAME, route_prefix="/")
        disconnect()
        record = ServerRecord(
            f"http://{_url_host(host)}:{port}", port, address, [asdict(m) for m in models], device, replicas,
            head.to_dict() if head else None, host=host,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not record.health:
            record.health = http_get(f"{record.url}/health")
            if record.health:
                break
            if time.monotonic() > deadline:
                raise KitError(f"the server at {record.url} did not answer in {timeout:.0f}s", "see the Ray logs")
            time.sleep(0.5)
    except BaseException:
        disconnect()
        if head:
            head.stop()
        raise
    path = record_path(port)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(record), indent=2))
    return record


def server_status(port: int = 8000) -> ServerRecord:
    """The record of the server on `port` and what its /health answers now (None: not answering)."""
    path = record_path(port)
    if not path.exists():
        raise KitError(f"no opensearch-kit server recorded on port {port}", "start one: opensearch-kit serve start")
    record = ServerRecord(**json.loads(path.read_text()))
    record.health = http_get(f"{record.url}/health")
    return record


@dataclass
class ServerStopped:
    port: int
    pids: list[int]

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return f"stopped the server on port {self.port}" + (f" and Ray head pids {self.pids}" if self.pids else "")


def stop_server(port: int = 8000) -> ServerStopped:
    """Delete the application, shut Serve down and stop the Ray head the start began (a joined cluster stays)."""
    record = server_status(port)
    pids: list[int] = []
    if record.head:
        pids = RayHead(**record.head).stop()
    else:
        from ray import serve

        connect(record.ray_address, namespace=APP_NAME)
        serve.shutdown()
        disconnect()
    record_path(port).unlink()
    return ServerStopped(port, pids)
