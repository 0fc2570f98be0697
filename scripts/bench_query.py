"""Query latency by path, against BM25, on SciFact: sparse through the in-cluster model, through a local ONNX
encoder (query_tokens) and inference-free through a SPARSE_TOKENIZE model; dense in the cluster or local;
hybrid (BM25 + sparse + dense) with cluster-side or the fast local / inference-free query encoding.

    python scripts/bench_query.py [--url http://localhost:9200] [--docs 2000] [--queries 300]

Deploys the demo models (tiny SPLADE + all-MiniLM-L6-v2, idempotently) and an IDF tokenizer built from the
corpus, ingests the first --docs SciFact documents client-side, then runs every path on each query in turn (so
load drifts hit all paths alike). Latency is the wall time of `Searcher.search`: query encoding and the HTTP
round trip. Prints p50 / p95 per path and the p50 ratio to BM25.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

from opensearch_kit import datasets
from opensearch_kit.beir import iter_jsonl
from opensearch_kit.cli.common import quiet
from opensearch_kit.cluster import default_cache
from opensearch_kit.demo import DemoModels, deploy_models
from opensearch_kit.deploy import deploy_artifact
from opensearch_kit.export import export_model
from opensearch_kit.index import create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.opensearch import Connection
from opensearch_kit.search import QueryOptions, Searcher, local_dense_encoder, local_sparse_encoder

SCIFACT = datasets.get("scifact")
INDEX = "bench-query-scifact"
WARMUP = 20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:9200")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    quiet(verbose=False)  # third-party notices and loading bars, as the CLI keeps them away
    cluster = Connection(args.url).transport(timeout=300)
    work = default_cache() / "demo"
    models = DemoModels()
    deployed = deploy_models(cluster, models, work, progress=False)
    onnx = {
        kind: export_model(kind, model, work / f"{name}-onnx", format="onnx", name=f"{name}-onnx").dir
        for kind, (model, name) in models.resolve().items()
    }
    sparse_source = models.resolve()["sparse"][0]
    tokenizer = export_model(
        "sparse-tokenizer", sparse_source, work / "scifact-idf-tokenizer", idf=SCIFACT, name="scifact-idf-tokenizer"
    )
    tokenizer_id = deploy_artifact(cluster, tokenizer, progress=False).model_id

    delete_index(cluster, INDEX, missing_ok=True)
    create_index(cluster, INDEX, deployed["sparse"].model_id, dense_model=deployed["dense"].model_id)
    report = ingest(
        cluster, INDEX, SCIFACT, mode="client", sparse_encoder=onnx["sparse"], dense_encoder=onnx["dense"],
        limit=args.docs, progress=False,
    )  # fmt: skip
    print(report.summary().splitlines()[0])

    sparse_local, dense_local = local_sparse_encoder(onnx["sparse"]), local_dense_encoder(onnx["dense"])
    in_cluster = Searcher(cluster, INDEX, encoding="cluster")
    local = Searcher(cluster, INDEX, sparse_encoder=sparse_local, dense_encoder=dense_local, encoding="local")
    # Inference-free: sparse queries through the tokenizer model; dense (no model recorded) through the local encoder.
    free_config = dataclasses.replace(in_cluster.config, sparse_model_id=tokenizer_id, dense_model_id=None)
    free = Searcher(cluster, INDEX, config=free_config, dense_encoder=dense_local, encoding="auto")
    paths = {
        "bm25": (in_cluster, "bm25"),
        "sparse, in-cluster model": (in_cluster, "sparse"),
        "sparse, local ONNX": (local, "sparse"),
        "sparse, SPARSE_TOKENIZE": (free, "sparse"),
        "dense, in-cluster model": (in_cluster, "dense"),
        "dense, local ONNX": (local, "dense"),
        "hybrid, in-cluster models": (in_cluster, "hybrid"),
        "hybrid, local ONNX": (local, "hybrid"),
        "hybrid, SPARSE_TOKENIZE + local dense": (free, "hybrid"),
    }
    queries = [q["text"] for q in iter_jsonl(SCIFACT / "queries.jsonl")][: args.queries + WARMUP]
    latency: dict[str, list[float]] = {path: [] for path in paths}
    for n, text in enumerate(queries):
        for path, (searcher, mode) in paths.items():
            result = searcher.search(text, QueryOptions(mode=mode, k=10, source=()))
            if n >= WARMUP:
                latency[path].append(result.latency_ms)
    bm25 = statistics.median(latency["bm25"])
    print(f"{len(queries) - WARMUP} SciFact queries, {args.docs} documents, k=10")
    for path, values in latency.items():
        p50 = statistics.median(values)
        print(f"{path:40} p50 {p50:6.1f} ms  p95 {percentile(values, 0.95):6.1f} ms  x{p50 / bm25:4.2f} BM25")


if __name__ == "__main__":
    main()
