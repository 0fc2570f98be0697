"""What the Ray heads the kit starts expose (real Ray on this machine): `serve start` and `ingest --engine ray`
with a local head listen on loopback only (read from the sockets of every process of the head and of the driver;
Serve replicas' gRPC port, bound by Ray to every interface, refuses calls without the token), the GCS refuses a
call without the head's token, the token never shows in output, logs, command lines or failure
files, Ray's usage reports are off in every process of the head, and no process of the head is left after
`serve stop` or after an ingest run, whether it succeeded or failed."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psutil
import pytest
from click.testing import CliRunner

from opensearch_kit.cli import main
from opensearch_kit.index import create_index
from opensearch_kit.serve.ray_head import free_port, session_pids
from opensearch_kit.serve.server import ServerRecord, http_get

ROOT = Path(__file__).resolve().parents[2]


def listeners(pids: list[int]) -> list[tuple[int, str, str, int]]:
    """(pid, process name, address, port) of every listening TCP socket of `pids`."""
    found = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            found += [
                (pid, process.name(), c.laddr.ip, c.laddr.port)
                for c in process.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN
            ]
        except psutil.NoSuchProcess:
            continue
    return found


def is_loopback(ip: str) -> bool:
    return ip.removeprefix("::ffff:").startswith("127.") or ip == "::1"


def host_address() -> str | None:
    """An IPv4 address of this machine other than loopback (None when it has none)."""
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family.name == "AF_INET" and not a.address.startswith("127."):
                return a.address
    return None


def assert_private(pids: list[int]) -> None:
    """Something listens, and only on loopback (none of 0.0.0.0, ::, or the host's address), except the one port
    Ray hard-codes to every interface: a Serve replica's gRPC server, which must refuse a call without the token
    (made from the host's address when there is one)."""
    found = listeners(pids)
    assert found, f"no listening socket found in {pids}"
    exposed = [x for x in found if not is_loopback(x[2])]
    for pid, name, ip, port in exposed:
        assert name.startswith("ray::ServeReplica"), f"{name} (pid {pid}) listens on {ip}:{port}"
        with grpc.insecure_channel(f"{host_address() or '127.0.0.1'}:{port}") as channel:
            handle = channel.unary_unary("/ray.serve.ASGIService/HandleRequest")
            with pytest.raises(grpc.RpcError) as refused:
                handle(b"", timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, f"{name} on {ip}:{port}: {refused.value}"


def assert_gcs_demands_token(address: str, token: str) -> None:
    """A GCS call without the token (or with a wrong one) is refused, with it answered; from the host's address
    nothing answers at all."""
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    def call(target: str, token_sent: str | None):
        metadata = [("authorization", f"Bearer {token_sent}")] if token_sent else None
        with grpc.insecure_channel(target) as channel:
            stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
            return stub.GetAllNodeInfo(gcs_service_pb2.GetAllNodeInfoRequest(), metadata=metadata, timeout=10)

    for wrong in (None, "0" * 64):
        with pytest.raises(grpc.RpcError) as refused:
            call(address, wrong)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert call(address, token).node_info_list
    if host := host_address():
        with pytest.raises(grpc.RpcError) as unreachable:
            call(f"{host}:{address.rsplit(':', 1)[1]}", token)
        assert unreachable.value.code() == grpc.StatusCode.UNAVAILABLE


def assert_token_hidden(token: str, texts: list[str], pids: list[int], paths: list[Path]) -> None:
    """The token is in none of `texts`, the command lines or environments of `pids`, nor the files under `paths`."""
    assert len(token) >= 32
    assert not [t for t in texts if token in t], "the token was printed"
    for pid in pids:
        try:
            process = psutil.Process(pid)
            seen = " ".join(process.cmdline()) + json.dumps(process.environ())
        except psutil.NoSuchProcess:
            continue
        assert token not in seen, f"the token is in the command line or environment of {process.name()}"
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    assert files or not paths
    leaked = [f for f in files if token.encode() in f.read_bytes()]
    assert not leaked, f"the token is written in {leaked}"


def assert_usage_stats_off(pids: list[int]) -> None:
    """Every process of `pids` runs with Ray's usage stats off, but the dashboard and runtime-env agents: Ray starts
    them with an environment of its own, and they send no usage reports (the dashboard head would; it is off)."""
    seen = {}
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            if process.name() not in ("ray::DashboardAgent", "ray::RuntimeEnvAgent"):
                seen[f"{process.name()} {pid}"] = process.environ().get("RAY_USAGE_STATS_ENABLED")
    assert seen and set(seen.values()) == {"0"}, [k for k, v in seen.items() if v != "0"]


def assert_gone(pids: list[int], timeout: float = 30) -> None:
    """Every process of `pids` ended (zombies waiting for their reaper count as ended)."""

    def alive() -> list[int]:
        left = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    left.append(pid)
            except psutil.NoSuchProcess:
                continue
        return left

    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive(), f"Ray processes left behind: {alive()}"


def test_serve_start_exposes_only_the_http_route_on_loopback_and_stop_ends_the_head(deployed_splade):
    _, export_dir = deployed_splade
    port, runner = free_port(), CliRunner()
    started = runner.invoke(main, ["serve", "start", str(export_dir), "--port", str(port), "--cpus", "1", "--json"])
    assert started.exit_code == 0, started.output
    record = json.loads(started.stdout)
    assert record["exposed"] is False and record["warning"] is None and record["url"].startswith("http://127.0.0.1:")
    head = record["head"]
    try:
        token = Path(head["token_file"]).read_text().strip()
        assert Path(head["token_file"]).stat().st_mode & 0o777 == 0o600
        pids = session_pids(head["pid"])
        assert_private(pids)
        assert any(p == port for *_, p in listeners(pids)), "the HTTP route is not among the head's sockets"
        assert http_get(f"http://127.0.0.1:{port}/health")["status"] == "ok"
        assert_gcs_demands_token(head["address"], token)
        assert_token_hidden(token, [], pids, [Path(head["temp_dir"])])
        assert_usage_stats_off(pids)
    finally:
        stopped = runner.invoke(main, ["serve", "stop", "--port", str(port), "--json"])
    assert stopped.exit_code == 0, stopped.output
    assert_gone(pids)
    assert not Path(head["token_file"]).exists()
    texts = [started.stdout, started.stderr, stopped.stdout, stopped.stderr]
    assert_token_hidden(token, texts, [], [Path(head["temp_dir"]), Path(f"{head['temp_dir']}.log")])
    assert str(port) in started.stdout  # the output was read


def test_exposing_the_http_routes_says_so():
    record = ServerRecord("http://127.0.0.1:8123", 8123, "127.0.0.1:1", [], host="0.0.0.0")
    assert record.exposed and "0.0.0.0:8123" in record.summary() and "no authentication" in record.to_dict()["warning"]
    assert not ServerRecord("http://127.0.0.1:8123", 8123, "127.0.0.1:1", []).exposed


class IngestRun:
    """`opensearch-kit ingest --engine ray --json` in a subprocess; it finds the local head the run starts."""

    def __init__(self, conn, index: str, source: Path, export_dir: Path, failures: Path):
        cmd = [
            sys.executable, "-c", "from opensearch_kit.cli import run; run()", "--url", conn.url, "ingest", index,
            str(source), "--mode", "client", "--sparse-encoder", str(export_dir), "--engine", "ray", "--workers", "1",
            "--batch-size", "4", "--failures", str(failures), "--json",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.head_pid: int | None = None
        self.token, self.temp_dir = "", ""

    def find_head(self, timeout: float = 240) -> None:
        """The `ray start` child, its token and temp dir (read while it runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            for child in psutil.Process(self.proc.pid).children():
                try:
                    cmdline, env = child.cmdline(), child.environ()
                    if "start" in cmdline and "--head" in cmdline and Path(env["RAY_AUTH_TOKEN_PATH"]).exists():
                        self.head_pid, self.token = child.pid, Path(env["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
                        self.temp_dir = cmdline[cmdline.index("--temp-dir") + 1]
                        return
                except (psutil.NoSuchProcess, KeyError, ValueError, FileNotFoundError):
                    continue
            time.sleep(0.2)
        raise AssertionError(f"no local Ray head seen; the run ended with {self.proc.poll()}")

    def wait_for_worker(self, timeout: float = 240) -> list[int]:
        """The head's pids once an encoding actor runs (plus the driver's)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            pids = session_pids(self.head_pid)
            for pid in pids:
                try:
                    if "EncodeAndIndex" in " ".join(psutil.Process(pid).cmdline()):
                        return [self.proc.pid, *pids]
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.3)
        raise AssertionError("no encoding actor seen while the ingest ran")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=600)
        return self.proc.returncode, out, err


def test_ingest_engine_ray_keeps_its_head_private_and_leaves_nothing(conn, deployed_splade, fresh, tmp_path):
    from helpers import SCIFACT

    model_id, export_dir = deployed_splade
    index = fresh("ray-exposure")
    create_index(conn.transport(), index, model_id)
    source = tmp_path / "corpus.jsonl"
    source.write_text("\n".join((SCIFACT / "corpus.jsonl").read_text().splitlines()[:120]) + "\n{bad\n")
    failures = tmp_path / "failures.jsonl"

    run = IngestRun(conn, index, source, export_dir, failures)
    try:
        run.find_head()
        pids = run.wait_for_worker()
        assert_private(pids)
        address = next(f"127.0.0.1:{p}" for _, name, _, p in listeners(pids) if name == "gcs_server")
        assert_gcs_demands_token(address, run.token)
        assert_token_hidden(run.token, [], pids, [])
    finally:
        code, out, err = run.finish()
    assert code == 0, err
    assert json.loads(out)["indexed"] == 120 and failures.exists()
    assert_gone(pids)
    assert_token_hidden(run.token, [out, err], [], [Path(run.temp_dir), Path(f"{run.temp_dir}.log"), failures])

    # a run that fails while its head is up (the failure file cannot be written) leaves nothing either
    failed = IngestRun(conn, index, source, export_dir, tmp_path / "missing-dir" / "f.jsonl")
    try:
        failed.find_head()
        pids = session_pids(failed.head_pid)
    finally:
        code, out, err = failed.finish()
    assert code != 0 and "missing-dir" in err and "Traceback" not in err
    assert_gone(pids)
    assert_token_hidden(failed.token, [out, err], [], [Path(failed.temp_dir), Path(f"{failed.temp_dir}.log")])
