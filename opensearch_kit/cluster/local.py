"""Start, stop and inspect a local OpenSearch cluster on loopback, assembled from Maven artifacts."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import platformdirs

from opensearch_kit.cluster.distribution import MIN_JAVA, assemble, stage_djl_natives
from opensearch_kit.cluster.jdk import Jdk, find_jdk
from opensearch_kit.cluster.maven import MavenCache
from opensearch_kit.errors import KitError
from opensearch_kit.files import kit_cache_dir

if TYPE_CHECKING:
    from opensearch_kit.cluster.security import Security

Probe = tuple[ssl.SSLContext, dict[str, str]]  # how health checks reach a secured node

HOME_ENV = "OPENSEARCH_KIT_HOME"
RUN_AS_USER = "opensearch-kit"
DEFAULT_HEAP = "2g"
TRANSPORT_OFFSET = 100  # node i listens on http port p+i and transport port p+100+i
VECTOR_MODULE = "jdk.incubator.vector"
ML_SETTINGS = {
    "plugins.ml_commons.only_run_on_ml_node": False,
    "plugins.ml_commons.allow_registering_model_via_local_file": True,
    "plugins.ml_commons.native_memory_threshold": 100,
    "plugins.ml_commons.jvm_heap_memory_threshold": 95,
    "plugins.ml_commons.disk_free_space_threshold": "1gb",
    # remote models served on this machine (opensearch-kit serve, vLLM, TEI): loopback connector endpoints
    "plugins.ml_commons.trusted_connector_endpoints_regex": [r"^https?://(127\.0\.0\.1|localhost)(:[0-9]+)?(/.*)?$"],
    "plugins.ml_commons.connector.private_ip_enabled": True,
    "cluster.routing.allocation.disk.watermark.low": "97%",
    "cluster.routing.allocation.disk.watermark.high": "98%",
    "cluster.routing.allocation.disk.watermark.flood_stage": "99%",
}


def default_home() -> Path:
    """Where installs and node data live: $OPENSEARCH_KIT_HOME, else a per-user data dir.

    As root the node runs as an unprivileged user, so the home is outside /root.
    """
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV])
    return Path("/var/lib/opensearch-kit") if os.geteuid() == 0 else Path(platformdirs.user_data_dir("opensearch-kit"))


def default_cache() -> Path:
    """Where downloaded Maven artifacts are cached."""
    return kit_cache_dir() / "maven"


@dataclass
class ClusterRecord:
    """What `start` wrote down about a running cluster, read back by `status` and `stop`."""

    http_port: int
    nodes: int
    java_home: str
    home: str
    pids: list[int] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)  # artifacts fetched by the start that wrote this record
    seconds: float = 0.0  # how long that start took
    ca_certs: str = ""  # a secured cluster's CA file (its URL is https)

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_certs else 'http'}://127.0.0.1:{self.http_port}"

    def to_dict(self) -> dict:
        return {**asdict(self), "url": self.url}

    def summary(self) -> str:
        fetched = f"downloaded {len(self.downloaded)} artifact(s)" if self.downloaded else "cache only"
        lines = [
            f"cluster up at {self.url}: {self.nodes} node(s), pids {self.pids} ({self.seconds}s, {fetched})",
            f"logs: {', '.join(self.logs)}",
        ]
        if self.ca_certs:
            lines.append(f"secured: user admin (password from the environment), --ca-certs {self.ca_certs}")
        return "\n".join(lines)


@dataclass
class Stopped:
    """The node pids a stop ended."""

    pids: list[int]

    def to_dict(self) -> dict:
        return {"stopped": self.pids}

    def summary(self) -> str:
        return f"stopped pids {self.pids}" if self.pids else "no local cluster was running"


class LocalCluster:
    """A loopback-only OpenSearch cluster of one or more nodes, identified by its first HTTP port."""

    def __init__(self, http_port: int = 9200, home: Path | None = None, cache: MavenCache | None = None):
        self.http_port = http_port
        self.home = Path(home or default_home())
        self.maven = cache or MavenCache(default_cache())
        self.dir = self.home / "clusters" / str(http_port)
        self.record_path = self.dir / "cluster.json"

    @classmethod
    def for_url(cls, url: str, **kwargs) -> LocalCluster:
        parsed = urlparse(url)
        if parsed.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise KitError(f"{url} is not a loopback address", "the local cluster runs on localhost only")
        return cls(parsed.port or 9200, **kwargs)

    @property
    def cluster_name(self) -> str:
        return f"opensearch-kit-{self.http_port}"

    def log_file(self, i: int) -> Path:
        return self.node_dir(i) / "logs" / f"{self.cluster_name}.log"

    def node_dir(self, i: int) -> Path:
        return self.dir / f"node-{i}"

    def record(self) -> ClusterRecord | None:
        if not self.record_path.exists():
            return None
        return ClusterRecord(**json.loads(self.record_path.read_text()))

    def running_pids(self) -> list[int]:
        """This cluster's live node pids: from its record, else every node whose config lives in its directory
        (a record lost to a crash or a racing start must not leave nodes that `stop` cannot find)."""
        rec = self.record()
        if rec:
            return [pid for pid in rec.pids if _is_opensearch(pid)]
        return _nodes_configured_under(self.dir)

    @property
    def certs_dir(self) -> Path:
        """Where a secured cluster keeps its CA (made once, so clients keep trusting it)."""
        return self.dir / "certs"

    def start(
        self, nodes: int = 1, heap: str = DEFAULT_HEAP, timeout: float = 300, security: Security | None = None
    ) -> ClusterRecord:
        """Assemble (or reuse) the install, write node configs, start the nodes and wait until healthy; an
        already running cluster is waited for and its record returned. With `security`, the nodes run the
        security plugin with TLS (see `opensearch_kit.cluster.security`)."""
        began = time.monotonic()
        probe = security.probe(self.certs_dir) if security else None
        if pids := self.running_pids():
            rec = self.record()
            if rec is None:
                raise KitError(
                    f"nodes {pids} of the cluster on port {self.http_port} run without their record",
                    "stop them with `opensearch-kit cluster stop`, then start again",
                )
            wait_healthy(rec.url, rec.nodes, timeout, probe=probe)
            return rec
        ports = [self.http_port + i for i in range(nodes)]
        ports += [p + TRANSPORT_OFFSET for p in ports]
        for port in ports:
            _check_port_free(port)
        jdk = find_jdk(MIN_JAVA)
        install = assemble(self.home / "install", self.maven, jdk)
        if security:
            from opensearch_kit.cluster.security import secured_install

            install = secured_install(install, self.maven, jdk)
        user = _run_as_user()
        rec = ClusterRecord(self.http_port, nodes, str(jdk.home), str(install))
        for i in range(nodes):
            self._prepare_node(i, nodes, install, jdk, heap, user, security)
        if security:
            from opensearch_kit.cluster.certs import CA_FILE

            rec.ca_certs = str(self.certs_dir / CA_FILE)
        procs = [self._launch(i, install, jdk, user) for i in range(nodes)]
        rec.pids = [p.pid for p in procs]
        rec.logs = [str(self.log_file(i)) for i in range(nodes)]
        rec.downloaded = list(self.maven.downloaded)
        self._write_record(rec)
        try:
            wait_healthy(rec.url, nodes, timeout, procs, probe)
            _check_serving_pids(rec.url, rec.pids, probe)
        except KitError as e:
            logs = "\n".join(_tail(self.node_dir(i) / "logs" / "startup.out") for i in range(nodes))
            self.stop()
            raise KitError(f"{e.message}\nlast node log lines:\n{logs}", e.fix) from e
        rec.seconds = round(time.monotonic() - began, 1)
        return rec

    def _prepare_node(
        self,
        i: int,
        nodes: int,
        install: Path,
        jdk: Jdk,
        heap: str,
        user: pwd.struct_passwd | None,
        security: Security | None,
    ):
        node = self.node_dir(i)
        config = node / "config"
        for sub in ("data", "logs", "tmp"):
            (node / sub).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(config, ignore_errors=True)
        shutil.copytree(install / "config", config)
        secured = security.write(config, self.certs_dir) if security else {}
        (config / "opensearch.yml").write_text(self._node_yaml(i, nodes, node, secured))
        (config / "jvm.options").write_text(
            jvm_options((install / "config" / "jvm.options").read_text(), heap, jdk, node)
        )
        natives = stage_djl_natives(install, node / "data")
        if user is not None:
            _chown_tree(node, user, keep_files_under=natives)

    def _node_yaml(self, i: int, nodes: int, node: Path, extra: dict[str, object]) -> str:
        settings: dict[str, object] = {
            "cluster.name": self.cluster_name,
            "node.name": f"node-{i}",
            "network.host": "127.0.0.1",
            "http.port": self.http_port + i,
            "transport.port": self.http_port + TRANSPORT_OFFSET + i,
            "path.data": str(node / "data"),
            "path.logs": str(node / "logs"),
        }
        if nodes == 1:
            settings["discovery.type"] = "single-node"
        else:
            seeds = [f"127.0.0.1:{self.http_port + TRANSPORT_OFFSET + j}" for j in range(nodes)]
            settings["discovery.seed_hosts"] = seeds
            settings["cluster.initial_cluster_manager_nodes"] = [f"node-{j}" for j in range(nodes)]
        settings.update(ML_SETTINGS)
        settings.update(extra)
        return "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())

    def _launch(self, i: int, install: Path, jdk: Jdk, user: pwd.struct_passwd | None) -> subprocess.Popen:
        """Start node i in its own session (it outlives this process); its output goes to logs/startup.out."""
        node = self.node_dir(i)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "JAVA_HOME": str(jdk.home),
            "OPENSEARCH_JAVA_HOME": str(jdk.home),
            "OPENSEARCH_PATH_CONF": str(node / "config"),
            "OPENSEARCH_TMPDIR": str(node / "tmp"),
            "DJL_OFFLINE": "true",
            "HOME": str(node),
        }
        with (node / "logs" / "startup.out").open("w") as out:
            return subprocess.Popen(
                [str(install / "bin" / "opensearch")],
                cwd=node,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                extra_groups=[] if user else None,
            )

    def _write_record(self, rec: ClusterRecord) -> None:
        self.record_path.write_text(json.dumps(asdict(rec), indent=2))

    def stop(self, timeout: float = 60) -> Stopped:
        """Stop every node of this cluster (SIGTERM, then SIGKILL after `timeout`); the pids stopped."""
        pids = self.running_pids()
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_is_opensearch(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in pids:
            if _is_opensearch(pid):
                os.kill(pid, signal.SIGKILL)
        self.record_path.unlink(missing_ok=True)
        return Stopped(pids)


def jvm_options(template: str, heap: str, jdk: Jdk, node: Path) -> str:
    """The distribution's jvm.options with our heap and the node's own log/dump paths (the launcher runs in
    the read-only install dir), minus options the chosen runtime cannot honour."""
    lines = []
    for line in template.splitlines():
        if line.startswith(("-Xms", "-Xmx")):
            continue
        if VECTOR_MODULE in line and jdk.modules and VECTOR_MODULE not in jdk.modules:
            continue
        line = line.replace("file=logs/", f"file={node}/logs/").replace("ErrorFile=logs/", f"ErrorFile={node}/logs/")
        lines.append(line.replace("HeapDumpPath=data", f"HeapDumpPath={node}/data"))
    return "\n".join([f"-Xms{heap}", f"-Xmx{heap}", *lines]) + "\n"


def _run_as_user() -> pwd.struct_passwd | None:
    """OpenSearch refuses to run as root: as root, run it as a dedicated system user (created once)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(RUN_AS_USER)
    except KeyError:
        pass
    proc = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RUN_AS_USER],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise KitError(
            f"OpenSearch cannot run as root and creating user {RUN_AS_USER!r} failed: {proc.stderr.strip()}",
            f"create it (`useradd --system {RUN_AS_USER}`) or run opensearch-kit as a normal user",
        )
    return pwd.getpwnam(RUN_AS_USER)


def _chown_tree(root: Path, user: pwd.struct_passwd, keep_files_under: Path) -> None:
    """Give the node user its directory; the hard-linked shared libtorch files stay root-owned (read-only)."""
    for path in [root, *root.rglob("*")]:
        if path.is_dir() or keep_files_under not in path.parents:
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise KitError(
                f"port {port} on 127.0.0.1 is in use ({e.strerror})",
                "stop what listens there, or start on other ports with --url http://localhost:<free port>",
            ) from e


def _is_opensearch(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"org.opensearch.bootstrap.OpenSearch" in cmdline


def _nodes_configured_under(root: Path) -> list[int]:
    """Pids of OpenSearch processes whose OPENSEARCH_PATH_CONF lies under `root`."""
    marker = f"OPENSEARCH_PATH_CONF={root}/".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not _is_opensearch(int(proc.name)):
            continue
        try:
            if marker in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return sorted(found)


def _tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def http_json(url: str, timeout: float = 10, probe: Probe | None = None) -> dict | list:
    """GET a URL of a local node (a secured one with `probe`'s TLS context and headers) and decode its JSON."""
    context, headers = probe or (None, {})
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout, context=context) as resp:
        return json.loads(resp.read())


def _check_serving_pids(url: str, pids: list[int], probe: Probe | None = None) -> None:
    """The nodes answering at `url` must be the ones just started, not a stray process on the same port."""
    serving = {n["process"]["id"] for n in http_json(f"{url}/_nodes/process", probe=probe)["nodes"].values()}
    if serving != set(pids):
        raise KitError(
            f"{url} is served by process(es) {sorted(serving)}, not the nodes started ({pids})",
            "stop the other OpenSearch on these ports, or use another --url port",
        )


def wait_healthy(
    url: str, nodes: int, timeout: float, procs: list[subprocess.Popen] = (), probe: Probe | None = None
) -> dict:
    """Wait until the cluster at `url` has `nodes` nodes and is at least yellow; fail early if a node exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        exited = [p for p in procs if p.poll() is not None]
        if exited:
            raise KitError(f"a node exited during start-up (exit {exited[0].returncode})", "see the log lines below")
        try:
            health = http_json(f"{url}/_cluster/health?wait_for_status=yellow&timeout=5s", probe=probe)
            if health["number_of_nodes"] >= nodes and health["status"] in ("green", "yellow"):
                return health
            last = f"{health['number_of_nodes']} node(s), status {health['status']}"
        except urllib.error.HTTPError as e:
            if e.code == 401:
                raise KitError(
                    f"{url} refused the admin password: a secured cluster keeps the users of its first start",
                    "use that password, or stop the cluster and delete its directory to start afresh",
                ) from None
            last = str(e)
        except (OSError, urllib.error.URLError, ValueError) as e:
            last = str(e)
        time.sleep(1)
    raise KitError(f"cluster at {url} not healthy after {timeout:.0f}s ({last})", "see the node logs")
