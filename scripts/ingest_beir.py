"""Ingest a BEIR dataset (or any JSONL corpus) into a new hybrid index: a thin example over the Python API.

python scripts/ingest_beir.py $(opensearch-kit datasets get scifact) scifact --sparse-model MODEL_ID \
    [--mode client --sparse-encoder out/splade-onnx] [--dense-model ID --dense-encoder DIR] [--language ko] [--recreate]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from opensearch_kit.index import create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.opensearch import Connection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="BEIR directory (corpus.jsonl) or JSONL file")
    parser.add_argument("index")
    parser.add_argument("--url", default="http://localhost:9200")
    parser.add_argument("--sparse-model", required=True, help="deployed SPARSE_ENCODING model id")
    parser.add_argument("--dense-model", help="deployed TEXT_EMBEDDING model id")
    parser.add_argument("--language", default="en", choices=["en", "ko"])
    parser.add_argument("--mode", default="pipeline", choices=["pipeline", "client"])
    parser.add_argument("--sparse-encoder", type=Path, help="ONNX export dir of the sparse model (client mode)")
    parser.add_argument("--dense-encoder", type=Path, help="ONNX export dir of the dense model (client mode)")
    parser.add_argument("--recreate", action="store_true", help="delete the index first if it exists")
    args = parser.parse_args()

    cluster = Connection(args.url).transport(timeout=300)
    if args.recreate:
        delete_index(cluster, args.index, missing_ok=True)
    create_index(cluster, args.index, args.sparse_model, dense_model=args.dense_model, language=args.language)
    report = ingest(
        cluster,
        args.index,
        args.source,
        mode=args.mode,
        sparse_encoder=args.sparse_encoder,
        dense_encoder=args.dense_encoder,
    )
    print(report.summary())


if __name__ == "__main__":
    main()
