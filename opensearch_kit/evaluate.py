"""Evaluate retrieval modes on a BEIR data set: metrics, latency, a JSON report with the runs, and a chart."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from opensearchpy import OpenSearch
from tqdm import tqdm

from opensearch_kit.beir import read_qrels, read_queries
from opensearch_kit.errors import KitError
from opensearch_kit.metrics import METRICS, Run, score_run
from opensearch_kit.query import IndexConfig, QueryOptions, signals_of
from opensearch_kit.search import DenseQueryEncoder, Encoding, Searcher, SparseQueryEncoder

DEFAULT_MODES = ("bm25", "sparse", "dense", "hybrid", "hybrid+rerank")


def evaluate(
    client: OpenSearch,
    index: str,
    beir_dir: Path,
    modes: tuple[str, ...] | list[str] = DEFAULT_MODES,
    k: int = 100,
    *,
    split: str = "test",
    hybrid: tuple[str, ...] = (),
    weights: tuple[float, ...] | None = None,
    max_queries: int | None = None,
    config: IndexConfig | None = None,
    sparse_encoder: SparseQueryEncoder | None = None,
    dense_encoder: DenseQueryEncoder | None = None,
    encoding: Encoding = "auto",
    out: Path | None = None,
    chart: Path | None = None,
    progress: bool = True,
) -> dict:
    """Run every judged query of `beir_dir` (queries.jsonl restricted to qrels/<split>.tsv) in every mode; return
    (and write to `out`) a report with per-mode metrics, p50/p95 latency and the runs; draw `chart` if given.
    `hybrid` names the sub-queries of hybrid modes (default: every signal the index has), `weights` their weights
    (default: the index pipeline's)."""
    beir_dir = Path(beir_dir)
    qrels = read_qrels(beir_dir / "qrels" / f"{split}.tsv")
    queries = read_queries(beir_dir, set(qrels))
    if max_queries is not None:
        queries = dict(list(queries.items())[:max_queries])
    if not queries:
        raise KitError(f"no query of {beir_dir / 'queries.jsonl'} is judged in qrels/{split}.tsv", "check --split")
    searcher = Searcher(client, index, config, sparse_encoder, dense_encoder, encoding)
    plans = {}
    for mode in modes:
        options = QueryOptions.parse(mode, k=k, source=())
        plans[options.label] = replace(options, hybrid=hybrid, weights=weights) if options.mode == "hybrid" else options
    first = next(iter(queries.values()))
    for options in plans.values():  # refuse a misconfigured mode before spending time on the others
        searcher.build(first, options)
    signals = dict.fromkeys(s for options in plans.values() for s in signals_of(options, searcher.config))
    encoding = {s: "local" if searcher.uses_local(s) else "cluster" for s in signals if s != "bm25"}
    judged = {qid: qrels[qid] for qid in queries}
    results, runs = {}, {}
    with tqdm(total=len(plans) * len(queries), desc=f"eval {index}", unit="query", disable=not progress) as bar:
        for options in plans.values():
            run: Run = {}
            latencies = []
            bar.set_postfix_str(options.label)
            for qid, text in queries.items():
                result = searcher.search(text, options)
                run[qid] = {hit.id: hit.score for hit in result.hits}
                latencies.append(result.latency_ms)
                bar.update()
            runs[options.label] = run
            results[options.label] = {
                "metrics": score_run(judged, run),
                "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
            }
    report = {
        "index": index,
        "beir_dir": str(beir_dir),
        "split": split,
        "k": k,
        "queries": len(queries),
        "query_encoding": encoding,
        "metrics": list(METRICS),
        "modes": results,
        "runs": runs,
    }
    if out:
        Path(out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if chart:
        write_chart(report, Path(chart))
    return report


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile with linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * p / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def write_chart(report: dict, path: Path) -> None:
    """A PNG: grouped bars of every metric per mode, and p50/p95 latency per mode."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise KitError("the eval chart needs matplotlib", "pip install 'opensearch-kit[eval]'") from e
    modes = list(report["modes"])
    fig, (quality, latency) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / max(len(modes), 1)
    for i, mode in enumerate(modes):
        values = [report["modes"][mode]["metrics"][m] for m in METRICS]
        quality.bar([x + i * width for x in range(len(METRICS))], values, width, label=mode)
    quality.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(METRICS))], METRICS, rotation=30)
    quality.set_ylim(0, 1.02)
    quality.set_title(f"{report['index']}: {report['queries']} queries, top {report['k']}")
    quality.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(len(modes), 6))
    for j, name in enumerate(("p50", "p95")):
        values = [report["modes"][mode]["latency_ms"][name] for mode in modes]
        latency.bar([x + j * 0.4 for x in range(len(modes))], values, 0.4, label=name)
    latency.set_xticks([x + 0.2 for x in range(len(modes))], modes, rotation=30)
    latency.set_ylabel("ms")
    latency.set_title("latency")
    latency.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
