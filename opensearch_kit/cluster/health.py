"""Health checks of a local node over plain HTTP(S): JSON GETs, waiting until healthy, who serves a port."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request

from opensearch_kit.errors import KitError

Probe = tuple[ssl.SSLContext, dict[str, str]]  # how health checks reach a secured node


def http_json(url: str, timeout: float = 10, probe: Probe | None = None) -> dict | list:
    """GET a URL of a local node (a secured one with `probe`'s TLS context and headers) and decode its JSON."""
    context, headers = probe or (None, {})
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout, context=context) as resp:
        return json.loads(resp.read())


def check_serving_pids(url: str, pids: list[int], probe: Probe | None = None) -> None:
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
