"""A node's heap as an upload sees it: its parent circuit breaker, the pacing and the chunks in flight it allows,
and the error for a breaker that keeps refusing chunks."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from opensearch_kit.errors import ClusterError, KitError

if TYPE_CHECKING:
    from opensearch_kit.opensearch.transport import Transport

# Upload pacing: before each chunk, wait (up to HEAP_WAIT_S) while a node's parent circuit breaker is above this
# share of its limit (it trips at 95 %). Each 10 MB chunk leaves the node tens of MB of short-lived heap (the
# body, its base64 copy, the indexed document); back to back they can outrun the garbage collector of a small
# heap (2 GiB: HTTP 429 at chunk 173 of a 3.4 GB zip). An idle node does not collect, so waiting long is useless
# (pausing at 75 % of a 2 GiB heap cut the upload to 0.6 MB/s): a 429 past the pause is retried with backoff.
HEAP_PAUSE_RATIO = 0.9
HEAP_WAIT_S = 5.0
# Chunks in flight: a second one overlaps a chunk's HTTP read, model GET and base64 copy with the other's indexing
# (loopback, 2 cores, 2 GiB heap: 24.8 -> 39.8 MB/s; 3 or 4 add nothing). ML Commons indexes each chunk with an
# IMMEDIATE refresh; where OpenSearch's merge-on-refresh is on (index.merge_on_flush.enabled, the default) every
# tenth refresh waits up to 10 s for a merge of the ten chunk segments, and that wait, not the client, holds the
# upload near 8 MB/s whatever the number in flight. One chunk in flight per HEAP_PER_CHUNK of parent-breaker limit.
UPLOAD_IN_FLIGHT = 2
HEAP_PER_CHUNK = 768 * 1024**2


def in_flight(transport: Transport) -> int:
    """Chunks to send at once: one per `HEAP_PER_CHUNK` of the smallest parent-breaker limit of the nodes, at
    most `UPLOAD_IN_FLIGHT` (1 when no limit is readable)."""
    return max(1, min(UPLOAD_IN_FLIGHT, (heap_limit(transport) or 0) // HEAP_PER_CHUNK))


def breakers(transport: Transport) -> list[dict]:
    """Each node's parent circuit breaker (estimated_size_in_bytes, limit_size_in_bytes); [] when not
    readable."""
    try:
        nodes = transport.request(
            "GET", "/_nodes/stats/breaker", params={"filter_path": "nodes.*.breakers.parent"}
        ).get("nodes", {})
    except KitError:
        return []
    parents = (node.get("breakers", {}).get("parent") for node in nodes.values())
    return [p for p in parents if p and p.get("limit_size_in_bytes")]


def heap_use(transport: Transport) -> float | None:
    """The highest share of its parent circuit breaker's limit any node uses now (None: not readable)."""
    return max((p["estimated_size_in_bytes"] / p["limit_size_in_bytes"] for p in breakers(transport)), default=None)


def heap_limit(transport: Transport) -> int | None:
    """The smallest parent-breaker limit of the nodes in bytes (95 % of the heap by default; None: not
    readable)."""
    return min((p["limit_size_in_bytes"] for p in breakers(transport)), default=None)


def wait_for_heap(transport: Transport, ratio: float = HEAP_PAUSE_RATIO, wait_s: float = HEAP_WAIT_S) -> float:
    """Pace an upload: wait (at most `wait_s`) while a node's heap is above `ratio` of its parent breaker's
    limit, so the chunks never trip it (HTTP 429); the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < wait_s:
        share = heap_use(transport)
        if share is None or share < ratio:
            break
        time.sleep(0.25)
    return time.monotonic() - began


def breaker_refusal(e: ClusterError, heap_limit: int | None, zip_size: int) -> KitError:
    """The error for an upload chunk a node's circuit breaker still refused after the retries (HTTP 429), naming
    the heap to give the node (`heap_limit`: its parent breaker's limit, if known)."""
    heap_gib = heap_limit / 0.95 / 1024**3 if heap_limit else None  # the parent breaker trips at 95 % of the heap
    bigger = f"--heap {max(4, 2 * math.ceil(heap_gib))}g" if heap_gib else "a larger --heap"
    heap = f"{heap_gib:.1f} GiB heap" if heap_gib else "heap"
    return KitError(
        f"a node's circuit breaker kept refusing the chunks of a {zip_size / 1e9:.2f} GB zip: its {heap} is too "
        f"small for them ({e.reason[:300]})",
        f"give the node more heap: opensearch-kit cluster start {bigger} (a local cluster: stop it first), else "
        "-Xms/-Xmx in the node's config/jvm.options; then run the same command again",
    )
