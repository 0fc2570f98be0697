"""A local Ray head on loopback, started for the toolkit and stopped by the pids it started (never `ray stop`,
which would end every Ray process of the user on this machine).

Exposure: a head binds every port it opens (GCS, raylet, object manager, workers, the client server and the
dashboard/runtime-env agents) to 127.0.0.1 only, and runs with Ray's token authentication on; its token is
generated per head, kept in a 0600 file under the kit's state directory, read by Ray from that path (never put in
a command line, environment value, output or log) and deleted when the head stops. No dashboard, and no usage
reports: Ray's usage stats (sent to Ray's servers; Ray Data's also query a Prometheus on localhost:9090) are off
for the head and the drivers the kit joins to it, unless the user's RAY_USAGE_STATS_ENABLED says otherwise."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from opensearch_kit.cluster.local import default_home
from opensearch_kit.errors import KitError

OBJECT_STORE_BYTES = 300 * 1024**2  # modest: the machine is shared
AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")  # Ray reads the token in this order
USAGE_STATS = "RAY_USAGE_STATS_ENABLED"
_undo: list[Callable[[], None]] = []  # what `connect` changed in this process, put back by `disconnect`


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
    token_file: str | None = None
    loopback: bool = True

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
        if self.head and self.token_file:
            Path(self.token_file).unlink(missing_ok=True)
        return pids


def token_dir() -> Path:
    """Where the tokens of the heads this kit runs are kept: ray/ under the kit's home (`default_home`), 0700."""
    path = default_home() / "ray"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def new_token_file(name: str) -> str:
    """A fresh random token in a file only this user can read (created 0600, never rewritten)."""
    path = token_dir() / f"{name}.token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return str(path)


def auth_env(token_file: str) -> dict[str, str]:
    """The environment that makes a Ray process demand (and present) the token in `token_file`."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": token_file}


def start_node(
    *,
    head_address: str | None = None,
    token_file: str | None = None,
    cpus: int | None = None,
    gpus: int | None = None,
    loopback: bool = True,
    timeout: float = 90,
) -> RayHead:
    """`ray start --block` in its own session, the object store capped; returns once the node is up. A head: token
    authentication on with a new token, and on 127.0.0.1 only unless `loopback` is False (needed when other nodes
    join: Ray then binds GCS, raylet and workers to every interface, behind the token). A worker joining
    `head_address`: with the token in `token_file` (a head of ours), else with the environment's RAY_AUTH_*."""
    name = f"okit-ray-{os.getpid()}-{int(time.time() * 1000) % 10**8}"
    temp_dir = f"/tmp/{name}"
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
        token_file, port = new_token_file(name), free_port()
        # `ray start` always runs a client server (10001 by default, often taken): a free port, on loopback
        cmd += ["--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", temp_dir,
                "--ray-client-server-port", str(free_port())]  # fmt: skip
        address = f"127.0.0.1:{port}"
    log = Path(f"{temp_dir}.log")
    loopback = loopback and head_address is None
    env = node_env(token_file, loopback)
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    node = RayHead(address, proc.pid, temp_dir, head_address is None, token_file, loopback)
    deadline = time.monotonic() + timeout
    while "Ray runtime started" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            node.stop(5)
            raise KitError(f"ray start failed:\n{log.read_text()[-2000:]}", "see the log above; is the port free?")
        time.sleep(0.5)
    return node


def node_env(token_file: str | None, loopback: bool) -> dict[str, str]:
    """The node's environment. Ray's memory monitor off unless asked for: it kills workers (the Serve controller
    first) when the *machine* is above 95% memory, even when others use it: on a shared host that ends a server
    that itself uses little; the OS's OOM killer still guards the machine (RAY_memory_monitor_refresh_ms set in
    the environment wins). With `token_file`, token authentication with that token, whatever RAY_AUTH_* the
    environment has. `loopback`: the node address stays 127.0.0.1 (Ray otherwise swaps 127.0.0.1 for the host's
    address and binds GCS, raylet and workers to every interface); Ray names that switch after Windows/macOS."""
    env = {"RAY_memory_monitor_refresh_ms": "0", USAGE_STATS: "0", **os.environ}
    if token_file:
        env = {k: v for k, v in env.items() if k not in AUTH_VARIABLES} | auth_env(token_file)
    if loopback:
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    return env


def connect(address: str, head: RayHead | None = None, **init_options) -> None:
    """`ray.init(address)` from this process: with the token of `head` when this kit started it, else with the
    environment's RAY_AUTH_MODE / RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH (what a user joining a secured cluster
    sets). `disconnect` ends it and puts the environment back."""
    import ray
    from ray._private import ray_constants

    if head and head.token_file:
        for key, value in ({k: None for k in AUTH_VARIABLES} | auth_env(head.token_file)).items():
            _undo.append(functools.partial(_set_env, key, os.environ.get(key)))
            _set_env(key, value)
    if USAGE_STATS not in os.environ:
        _undo.append(functools.partial(_set_env, USAGE_STATS, None))
        _set_env(USAGE_STATS, "0")
    if head and head.loopback:  # else this process swaps 127.0.0.1 for the host's address, where the head is not
        _undo.append(functools.partial(setattr, ray_constants, "ENABLE_RAY_CLUSTER", ray_constants.ENABLE_RAY_CLUSTER))
        ray_constants.ENABLE_RAY_CLUSTER = False
    _reload_ray_auth()
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False, **init_options)
    except Exception as e:
        if not _refused_for_auth(e):
            raise
        raise KitError(
            f"the Ray cluster at {address} refused the connection: its authentication token is missing or wrong",
            "export RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH=FILE (a file holding the cluster's token; or "
            "RAY_AUTH_TOKEN, or ~/.ray/auth_token), then retry",
        ) from e


def disconnect() -> None:
    """`ray.shutdown()` (safe when not connected); what `connect` changed in this process is put back."""
    import ray

    ray.shutdown()
    while _undo:
        _undo.pop()()
    _reload_ray_auth()


def _refused_for_auth(error: BaseException | None) -> bool:
    """Whether `error`, or one it was raised from, is Ray's AuthenticationError (ray.init wraps it in errors that
    keep only its text)."""
    from ray.exceptions import AuthenticationError

    while error is not None:
        if isinstance(error, AuthenticationError) or "InvalidAuthToken" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _reload_ray_auth() -> None:
    """Ray caches the auth mode and token per process: read them again from the environment."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _set_env(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


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
    """Whether `pid` still runs: an exited process that is not yet reaped (a zombie) does not, and our own
    exited children are reaped here."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
