"""Sending documents: bulk requests with retries, bisection of refused requests, and what `--resume` reads back."""

from __future__ import annotations

import random
import re
import time

from opensearch_kit.errors import ClusterError, KitError, Unreachable
from opensearch_kit.index.meta import IndexMeta
from opensearch_kit.ingest.corpus import Doc, Rejected
from opensearch_kit.ingest.report import IngestReport, Ledger
from opensearch_kit.opensearch.ml import MODEL_WARMING
from opensearch_kit.opensearch.transport import Transport

BACKOFF_CAP = 30.0
RESUME_FIX = (
    "when the cluster answers again, run the same `opensearch-kit ingest` command with --resume: "
    "documents already indexed are skipped, the rest sent once"
)
Action = tuple[Doc, str]  # a document and its bulk lines (action + source)


def finish(transport: Transport, meta: IndexMeta, report: IngestReport) -> None:
    """After the last bulk: refresh, warm a sparse_vector index's SEISMIC structures up (POST
    /_plugins/_neural/warmup: without it the first queries of each segment load them), count the documents.
    These calls are retried; a cluster still gone stops the run with `ClusterLost`: every document was
    acknowledged, and `--resume` sends none again and checks the count."""
    try:
        transport.request("POST", f"/{meta.index}/_refresh", retry=True)
        if meta.sparse.type == "sparse_vector":
            warm_up = transport.request("POST", f"/_plugins/_neural/warmup/{meta.index}", retry=True)
            report.warm_up = warm_up.get("_shards")
        report.index_count = transport.request("GET", f"/{meta.index}/_count", retry=True)["count"]
    except Unreachable as e:
        raise ClusterLost(
            f"lost the cluster after the last bulk, before the count check: {e.message}", RESUME_FIX
        ) from e


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.5, 1, 2, 4 ... seconds, at most 30 (10 retries ride out ~2 minutes,
    a node restart)."""
    return min(BACKOFF_CAP, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)


class BulkSender:
    """Bulk requests to one index with retries on 429, 5xx, lost connections and models still being redeployed
    (after a node restart); a whole-request refusal is bisected so only the documents the cluster refuses are
    rejected. A cluster still gone after the last retry stops the run with `ClusterLost` (its documents are not
    rejected: `--resume` sends them)."""

    def __init__(self, transport: Transport, pipeline: str, ledger: Ledger, max_retries: int = 10):
        self.transport, self.pipeline, self.ledger, self.max_retries = transport, pipeline, ledger, max_retries
        self.lost: ClusterLost | None = None  # once set, every later bulk fails at once

    def send(self, actions: list[Action]) -> None:
        if self.lost:
            raise self.lost
        pending = actions
        attempt = 0
        while pending:
            why, lost = None, False
            try:
                resp = self.transport.request(
                    "POST",
                    "/_bulk",
                    "".join(a for _, a in pending),
                    params={"pipeline": self.pipeline, "request_timeout": 600},
                )
            except Unreachable as e:
                why, lost = e.message, True
            except ClusterError as e:
                if e.transient:
                    why = f"HTTP {e.status}: {e.reason}"
                elif len(pending) > 1:
                    half = len(pending) // 2
                    self.send(pending[:half])
                    self.send(pending[half:])
                    return
                else:
                    doc = pending[0][0]
                    reason = f"{e.error_type}: {e.reason}" if e.error_type else e.reason
                    self.ledger.reject(Rejected(doc.line, doc.id, reason, doc.raw, "index"))
                    return
            if why is None:
                retry, ok = [], 0
                for (doc, lines), item in zip(pending, resp["items"], strict=True):
                    result = next(iter(item.values()))
                    status = result.get("status", 500)
                    if status < 300:
                        ok += 1
                    elif status == 429 or status >= 500 or MODEL_WARMING.search(item_reason(result)):
                        retry.append((doc, lines))
                        why = item_reason(result)
                    else:
                        self.ledger.reject(Rejected(doc.line, doc.id, item_reason(result), doc.raw, "index"))
                self.ledger.done(indexed=ok)
                pending = retry
            if pending:
                if attempt >= self.max_retries:
                    if lost:
                        self.lost = ClusterLost(f"lost the cluster after {attempt} retries: {why}", RESUME_FIX)
                        raise self.lost
                    for doc, _ in pending:
                        reason = f"gave up after {attempt} retries: {why}"
                        self.ledger.reject(Rejected(doc.line, doc.id, reason, doc.raw, "index"))
                    return
                time.sleep(backoff(attempt))
                attempt += 1
                self.ledger.retried()


class ClusterLost(Unreachable):
    """The cluster stayed unreachable through every retry of a bulk; the ingest stops and can be resumed."""


def item_reason(result: dict) -> str:
    """`type: reason` of a bulk item error, with its cause."""
    error = result.get("error", {})
    if not isinstance(error, dict):
        return str(error)
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        text += f" (caused by {cause.get('type')}: {cause['reason']})"
    return text


def indexed_lines(transport: Transport, index: str, line_field: str) -> dict[str, int]:
    """{id: source line} of every document in `index`, once the bulk writes still running on it have finished."""
    wait_for_bulks(transport, index)
    transport.request("POST", f"/{index}/_refresh")
    body = {"query": {"match_all": {}}, "_source": False, "docvalue_fields": [line_field], "sort": ["_doc"]}
    lines = {}
    for hit in transport.scroll(index, body):
        values = hit.get("fields", {}).get(line_field)
        lines[hit["_id"]] = int(values[0]) if values else 1 << 62  # not ours: never re-index it
    return lines


def wait_for_bulks(transport: Transport, index: str, timeout: float = 300) -> None:
    """Wait until no bulk request on `index` runs (a killed ingest's last requests may still be encoding)."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = transport.request("GET", "/_tasks", params={"actions": "indices:data/write/bulk*", "detailed": "true"})
        running = [
            t
            for node in tasks.get("nodes", {}).values()
            for t in node.get("tasks", {}).values()
            if index in bulk_indices(t.get("description", ""))
        ]
        if not running:
            return
        if time.monotonic() > deadline:
            raise KitError(f"bulk writes to {index} still running after {timeout:.0f}s", "wait, then resume again")
        time.sleep(1)


def bulk_indices(description: str) -> list[str]:
    """The indices a bulk task writes to, from its description "requests[N], indices[a, b]"."""
    found = re.search(r"indices\[([^\]]*)\]", description)
    return found[1].split(", ") if found else []
