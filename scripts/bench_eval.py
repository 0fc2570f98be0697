"""NDCG@10 and p50 latency of every retrieval mode on BEIR sets with the demo models (tiny SPLADE + MiniLM, or
multilingual-e5-small as the dense model), and the hybrid tuned on a dev split.

python scripts/bench_eval.py [--url http://localhost:9200] [--datasets scifact:en,autorag_retrieval_ko:ko]
    [--dense-model multilingual-e5-small] [--weights 0.3,0.3,0.4] [--tune bm25,dense] [--tune-only]
    [--out-dir bench-eval]

Deploys the demo models (idempotently), ingests each set client-side with their ONNX exports (the fast path),
then evaluates bm25, sparse, dense, hybrid (min-max, equal weights unless --weights), hybrid+rrf and the
sparse+dense hybrid alone, with queries encoded in the cluster. With --tune SIGNALS, `tune` chooses the fusion
of those signals on half the queries (seed 0) and reports it on the other half next to the untuned hybrid and
each single mode: untuned, the cross-validated fixed setting, the per-query weights model and each single mode on
the held-out half with 95% bootstrap intervals, each tuned choice's gain over untuned with its interval and p-value
(5-fold cross-validation on the dev half and on the held-out half), and what the significance guard chose.
--tune-only skips evaluating the modes and reuses an index that already holds every document of the set.
Writes <out-dir>/<set>.json, .png and .tune.json; indexes are kept for inspection.

The Korean figures: --datasets autorag_retrieval_ko:ko --dense-model multilingual-e5-small --tune bm25,dense
(nori BM25, e5 dense; the tiny SPLADE is English-only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from opensearch_kit import datasets
from opensearch_kit.cli.common import quiet
from opensearch_kit.cluster import default_cache
from opensearch_kit.demo import DemoModels, deploy_models
from opensearch_kit.evaluate import evaluate
from opensearch_kit.export import export_model
from opensearch_kit.index import create_index, delete_index, parse_weights
from opensearch_kit.ingest import ingest
from opensearch_kit.opensearch import Connection
from opensearch_kit.tune import tune

MODES = ("bm25", "sparse", "dense", "hybrid", "hybrid+rrf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:9200")
    parser.add_argument("--datasets", default="scifact:en,autorag_retrieval_ko:ko")
    parser.add_argument("--dense-model", help="dense model: a path or multilingual-e5-small (default: MiniLM)")
    parser.add_argument("--weights", help="hybrid weights bm25,sparse,dense summing to 1 (default: equal)")
    parser.add_argument("--tune", help="comma-separated signals whose fusion to tune on a dev half, e.g. bm25,dense")
    parser.add_argument("--tune-only", action="store_true", help="only tune (reuses a complete index)")
    parser.add_argument("--out-dir", type=Path, default=Path("bench-eval"))
    args = parser.parse_args()
    quiet(verbose=False)  # third-party notices and loading bars, as the CLI keeps them away
    cluster = Connection(args.url).transport(timeout=300)
    work = default_cache() / "demo"
    models = DemoModels(dense=args.dense_model)
    deployed = deploy_models(cluster, models, work, progress=False)
    onnx = {
        kind: export_model(kind, model, work / f"{name}-onnx", format="onnx", name=f"{name}-onnx").dir
        for kind, (model, name) in models.resolve().items()
    }
    weights = parse_weights(args.weights)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in args.datasets.split(","):
        name, language = spec.split(":")
        index = f"bench-eval-{name.replace('_', '-')}"
        if args.tune_only and complete(cluster, index, datasets.get(name)):
            rows.append(tune_summary(cluster, index, name, args))
            continue
        delete_index(cluster, index, missing_ok=True)
        create_index(
            cluster,
            index,
            deployed["sparse"].model_id,
            dense_model=deployed["dense"].model_id,
            language=language,
            weights=weights,
        )
        report = ingest(
            cluster,
            index,
            datasets.get(name),
            mode="client",
            sparse_encoder=onnx["sparse"],
            dense_encoder=onnx["dense"],
            failure_file=args.out_dir / f"{name}.failures.jsonl",
        )
        print(report.summary())
        if args.tune_only:
            rows.append(tune_summary(cluster, index, name, args))
            continue
        out, chart = args.out_dir / f"{name}.json", args.out_dir / f"{name}.png"
        beir = datasets.get(name)
        result = evaluate(cluster, index, beir, modes=MODES, out=out, chart=chart)
        pair = evaluate(cluster, index, beir, modes=("hybrid",), hybrid=("sparse", "dense"), progress=False)
        result.modes["hybrid(sparse+dense)"] = pair.modes["hybrid"]
        for mode, r in result.modes.items():
            m = r["metrics"]
            rows.append(
                f"{name:<22} {mode:<21} NDCG@10 {m['NDCG@10']:.4f}  Avg.NDCG {m['Avg. NDCG']:.4f}  "
                f"R@100 {m['Recall@100']:.4f}  MRR@10 {m['MRR@10']:.4f}  p50 {r['latency_ms']['p50']:.1f} ms  "
                f"p95 {r['latency_ms']['p95']:.1f} ms  ({result.queries} queries)"
            )
        if args.tune:
            rows.append(tune_summary(cluster, index, name, args))
    print("\n".join(rows))


def complete(cluster, index: str, beir_dir: Path) -> bool:
    """Whether `index` exists and holds as many documents as the set's corpus."""
    if not cluster.client.indices.exists(index=index):
        return False
    lines = sum(1 for line in (beir_dir / "corpus.jsonl").open(encoding="utf-8") if line.strip())
    return cluster.request("GET", f"/{index}/_count")["count"] == lines


def tune_summary(cluster, index: str, name: str, args: argparse.Namespace) -> str:
    """`tune` of the --tune signals (default: all) on half the queries (seed 0), reported on the other half."""
    signals = tuple((args.tune or "bm25,sparse,dense").split(","))
    out = args.out_dir / f"{name}.tune.json"
    return tune(cluster, index, datasets.get(name), dev_fraction=0.5, seed=0, hybrid=signals, out=out).summary()


if __name__ == "__main__":
    main()
