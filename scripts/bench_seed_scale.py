"""The seed models at their real size on this machine: the README's worked example end to end; prints the figures.

python scripts/bench_seed_scale.py [--url http://127.0.0.1:9200] [--shapes sparse,reranker,embedder]
                                   [--work DIR] [--docs 16] [--int8] [--no-deploy] [--no-serve]

Builds random-weight models with the seed models' exact configurations (tests/seed_models.py: the 150M Korean
sparse encoder with custom code and a padded vocabulary, the Qwen3 0.6B yes/no reranker, the Qwen3 1.7B
sentence-transformers embedder; bf16 safetensors, sharded), then for each:
- every export in its own process (`opensearch-kit export ... --json`): wall time and peak RSS (the process's
  VmHWM, from wait4's ru_maxrss); sparse: TorchScript and ONNX fp32; reranker: TorchScript fp32 and ONNX fp32;
  embedder: TorchScript fp16 and ONNX fp16 (and ONNX int8 with --int8);
- `deploy` of the TorchScript export (and the sparse ONNX one) on the cluster: upload MB/s, deploy seconds,
  in-cluster parity (or the check's own verdict when the model is too slow for ML Commons' CPU);
- docs/s (pairs/s for the reranker) on --docs passages: ML Commons _predict, client-side ONNX Runtime
  (opensearch_kit.runtime), and `serve` (Ray Serve on this CPU) with the ONNX export.
Heavy: the 1.7B needs ~10 GB free (check `free -g`); run shapes one at a time with --shapes. Models stay in
--work (default ~/.cache/opensearch-kit/bench-seed) and so do exports (a re-run reuses them: delete the
folder to time them again); deployed models are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from seed_models import seed_embedder, seed_reranker, seed_sparse  # noqa: E402

from opensearch_kit.artifact import Artifact  # noqa: E402
from opensearch_kit.deploy import checked, deploy_artifact  # noqa: E402
from opensearch_kit.errors import KitError  # noqa: E402
from opensearch_kit.opensearch import Connection  # noqa: E402
from opensearch_kit.opensearch.heap import breakers  # noqa: E402
from opensearch_kit.verify.samples import LONG_EN, RERANK_QUERIES  # noqa: E402

SHAPES = {
    # shape: (builder, kind, [(format, dtype, quantize) of each export])
    "sparse": (seed_sparse, "sparse", [("torchscript", "fp32", None), ("onnx", "fp32", None)]),
    "reranker": (seed_reranker, "reranker", [("torchscript", "fp32", None), ("onnx", "fp32", None)]),
    "embedder": (seed_embedder, "dense", [("torchscript", "fp16", None), ("onnx", "fp16", None)]),
}
CLI = "import sys; from opensearch_kit.cli import run; sys.argv[0] = 'opensearch-kit'; run()"


def timed_export(kind: str, model: Path, out: Path, fmt: str, dtype: str, quantize: str | None) -> dict:
    """One export in a child process: its wall seconds, peak RSS in GB (the child's VmHWM: wait4's ru_maxrss)
    and report, or the last line of its error."""
    args = [sys.executable, "-c", CLI, "export", kind, str(model), "--format", fmt, "--out", str(out), "--json"]
    args += ["--dtype", dtype] + (["--quantize", quantize] if quantize else [])
    args += ["--trust-remote-code"] if kind == "sparse" else []
    began = time.monotonic()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen(args, stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read(), stderr.read()
    row = {"seconds": time.monotonic() - began, "peak_gb": usage.ru_maxrss / 1e6}
    if child.returncode != 0:
        lines = [line.strip() for line in errors.splitlines() if line.strip() and "%" not in line]
        return {**row, "error": " ".join(lines[-2:]) or f"exit status {child.returncode}"}
    return {**row, "report": json.loads(output), "out": out}


def passages(n: int) -> list[str]:
    """n different ~60-word passages."""
    words = LONG_EN.split()
    return [" ".join(words[i % len(words) :] + words[: i % len(words)]) for i in range(n)]


def docs_per_s(fn, n: int) -> float:
    fn()  # warm
    began = time.monotonic()
    fn()
    return n / (time.monotonic() - began)


def throughput(kind: str, ml, model_id: str | None, onnx_dir: Path | None, texts: list[str], serve: bool) -> dict:
    """docs/s (pairs/s) in ML Commons, with client-side ONNX Runtime, and through `serve`."""
    from opensearch_kit.runtime import DenseEncoder, Reranker, SparseEncoder

    query = RERANK_QUERIES[0]
    rows: dict = {}
    if model_id:
        function = {"sparse": "sparse_encoding", "dense": "text_embedding", "reranker": "text_similarity"}[kind]
        body = {"query_text": query, "text_docs": texts} if kind == "reranker" else {"text_docs": texts}
        if kind == "dense":  # a prompted (asymmetric) embedder is told what the texts are
            body["parameters"] = {"content_type": "passage"}
        rows["ml_commons"] = docs_per_s(lambda: ml.predict(model_id, body, function, timeout=1800), len(texts))
    if onnx_dir:
        local = {"sparse": SparseEncoder, "dense": DenseEncoder, "reranker": Reranker}[kind].from_dir(onnx_dir)
        call = {
            "sparse": lambda: local.encode(texts),
            "dense": lambda: local.embed(texts),
            "reranker": lambda: local.score(query, texts),
        }[kind]
        rows["client_onnx"] = docs_per_s(call, len(texts))
        del local
        if serve:
            rows["serve"], rows["serve_rss_gb"] = served(kind, onnx_dir, texts, query)
    return rows


def served(kind: str, onnx_dir: Path, texts: list[str], query: str) -> tuple[float, float]:
    """docs/s through `opensearch-kit serve` (Ray Serve, every core) with the ONNX export, and the GB resident in
    the Ray head's processes (the replica with its model, raylet, GCS, proxy) after the timed pass."""
    import urllib.request

    from opensearch_kit.serve import start_server, stop_server
    from opensearch_kit.serve.ray_head import RayHead, free_port

    port = free_port()
    server = start_server([onnx_dir], port=port, max_batch=32)
    route, body = {
        "sparse": ("/v1/sparse", {"input": texts}),
        "dense": ("/v1/embeddings", {"input": texts}),
        "reranker": ("/v1/rerank", {"query": query, "documents": texts}),
    }[kind]

    def post() -> None:
        request = urllib.request.Request(
            server.url + route, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=1800).read()

    try:
        rate = docs_per_s(post, len(texts))
        return rate, sum(resident_bytes(pid) for pid in RayHead(**server.head).pids()) / 1e9
    finally:
        stop_server(port)


def resident_bytes(pid: int) -> int:
    """VmRSS of a live process, 0 for one gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:9200")
    parser.add_argument("--shapes", default="sparse,reranker,embedder")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "opensearch-kit" / "bench-seed")
    parser.add_argument("--docs", type=int, default=16)
    parser.add_argument("--int8", action="store_true", help="embedder: also the int8 ONNX export")
    parser.add_argument("--no-deploy", action="store_true")
    parser.add_argument("--no-serve", action="store_true")
    args = parser.parse_args()
    transport = None if args.no_deploy else Connection(args.url).transport(600)
    texts = passages(args.docs)
    for shape in args.shapes.split(","):
        build, kind, exports = SHAPES[shape]
        model = args.work / shape / "model"
        if not (model / "config.json").exists():
            began = time.monotonic()
            build(model)
            print(f"[{shape}] built {model} in {time.monotonic() - began:.0f}s", flush=True)
        done = {}
        for fmt, dtype, quantize in exports + ([("onnx", "fp32", "int8")] if args.int8 and shape == "embedder" else []):
            variant = quantize or dtype
            out = args.work / shape / f"{fmt}-{variant}"
            if list(out.glob("*.zip")):  # exported by an earlier run: reuse it
                done[(fmt, variant)] = Artifact.locate(out)
                print(f"[{shape}] export {fmt} {variant}: reusing {out}", flush=True)
                continue
            row = timed_export(kind, model, out, fmt, dtype, quantize)
            figure = f"{row['seconds']:.0f}s, peak RSS {row['peak_gb']:.1f} GB"
            if "error" in row:
                print(f"[{shape}] export {fmt} {variant}: FAILED after {figure}: {row['error']}", flush=True)
                continue
            report = row["report"]
            extra = f", {report['masked_missing_ids']} padded ids masked" if report.get("masked_missing_ids") else ""
            size = Path(report["zip"]).stat().st_size / 1e9
            print(f"[{shape}] export {fmt} {variant}: {figure}, zip {size:.2f} GB{extra}", flush=True)
            done[(fmt, variant)] = Artifact.locate(row["out"])
        model_id = None
        deploy_formats = ["torchscript", "onnx"] if shape == "sparse" else ["torchscript"]
        for (fmt, variant), artifact in done.items():
            if transport is None or fmt not in deploy_formats:
                continue
            try:
                result = deploy_artifact(transport, artifact, check=False, progress=False)
            except KitError as e:
                print(f"[{shape}] deploy {fmt} {variant}: {e}", flush=True)
                continue
            rate = result.uploaded_bytes / 1e6 / max(result.upload_seconds, 1e-9)
            # each trip is a request the node refused with 429; counted since the node started
            tripped = sum(p.get("tripped", 0) for p in breakers(transport))
            print(f"[{shape}] deploy {fmt} {variant}: upload {rate:.1f} MB/s ({result.upload_seconds:.0f}s), "
                  f"deploy {result.deploy_seconds:.0f}s, parent breaker trips since node start {tripped}",
                  flush=True)  # fmt: skip
            began = time.monotonic()
            try:
                parity = checked(transport.ml, result.model_id, artifact)
                print(f"[{shape}] in-cluster check {fmt} {variant}: parity ok max|diff| {parity['max_abs_diff']:.1e} "
                      f"({time.monotonic() - began:.0f}s)", flush=True)  # fmt: skip
                model_id = model_id or result.model_id
            except KitError as e:  # the check's verdict: a model too slow for ML Commons, or one that differs
                print(f"[{shape}] in-cluster check {fmt} {variant} ({time.monotonic() - began:.0f}s): {e}", flush=True)
                transport.ml.delete(result.model_id)
        onnx = next((a.dir for (fmt, _), a in done.items() if fmt == "onnx"), None)
        try:
            rows = throughput(kind, transport.ml if transport else None, model_id, onnx, texts, not args.no_serve)
            unit = "pairs/s" if kind == "reranker" else "docs/s"
            print(f"[{shape}] {unit} on {len(texts)} passages: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in rows.items()), flush=True)  # fmt: skip
        except KitError as e:
            print(f"[{shape}] throughput: {e}", flush=True)
        finally:
            if transport and model_id:
                transport.ml.delete(model_id)


if __name__ == "__main__":
    main()
