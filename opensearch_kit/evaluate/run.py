"""Evaluate retrieval modes on a BEIR data set: metrics, latency, a JSON report with the runs, and a chart."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from opensearchpy import OpenSearch

from opensearch_kit.beir import read_qrels, read_queries
from opensearch_kit.errors import KitError
from opensearch_kit.evaluate.chart import write_chart
from opensearch_kit.evaluate.metrics import METRICS, Run, score_run
from opensearch_kit.opensearch.transport import Transport
from opensearch_kit.progress import progress_bar
from opensearch_kit.search.filters import Filter
from opensearch_kit.search.query import IndexConfig, QueryOptions, SeismicQuery, signals_of
from opensearch_kit.search.searcher import DenseQueryEncoder, Encoding, Searcher, SparseQueryEncoder

DEFAULT_MODES = ("bm25", "sparse", "dense", "hybrid", "hybrid+rerank")


@dataclass
class EvalReport:
    """Per-mode metrics and p50/p95 latency of every judged query, and the runs (for re-scoring)."""

    index: str
    beir_dir: str
    split: str
    k: int
    queries: int
    query_encoding: dict[str, str]
    modes: dict[str, dict]
    runs: dict[str, Run]
    metrics: tuple[str, ...] = METRICS
    filter: tuple[Filter, ...] = ()

    def to_dict(self, runs: bool = True) -> dict:
        record = {
            "index": self.index,
            "beir_dir": self.beir_dir,
            "split": self.split,
            "k": self.k,
            "queries": self.queries,
            "query_encoding": self.query_encoding,
            "filter": list(self.filter),
            "metrics": list(self.metrics),
            "modes": self.modes,
        }
        return {**record, "runs": self.runs} if runs else record

    def summary(self) -> str:
        """A table: one row per mode, one column per metric, then latency."""
        width = max(len(m) for m in self.modes)
        lines = [
            f"{self.index}: {self.queries} queries, top {self.k}",
            " ".join([f"{'mode':<{width}}", *self.metrics, "p50 ms  p95 ms"]),
        ]
        for mode, result in self.modes.items():
            cells = [f"{result['metrics'][m]:>{len(m)}.4f}" for m in self.metrics]
            latency = result["latency_ms"]
            lines.append(" ".join([f"{mode:<{width}}", *cells, f"{latency['p50']:6.1f}  {latency['p95']:6.1f}"]))
        return "\n".join(lines)


def evaluate(
    cluster: Transport | OpenSearch,
    index: str,
    beir_dir: Path,
    *,
    modes: tuple[str, ...] | list[str] = DEFAULT_MODES,
    k: int = 100,
    split: str = "test",
    hybrid: tuple[str, ...] = (),
    weights: tuple[float, ...] | None = None,
    max_queries: int | None = None,
    filter: tuple[Filter, ...] | list[Filter] = (),
    config: IndexConfig | None = None,
    sparse_encoder: SparseQueryEncoder | Path | None = None,
    dense_encoder: DenseQueryEncoder | Path | None = None,
    encoding: Encoding = "auto",
    seismic: SeismicQuery | None = None,
    out: Path | None = None,
    chart: Path | None = None,
    progress: bool = True,
) -> EvalReport:
    """Run every judged query of `beir_dir` (queries.jsonl restricted to qrels/<split>.tsv) in every mode; return
    (and write to `out`) a report with per-mode metrics, p50/p95 latency and the runs; draw `chart` if given.
    `hybrid` names the sub-queries of hybrid modes (default: every signal the index has), `weights` their weights
    (default: the index pipeline's), `filter` query clauses (or `--where` shorthands) every hit of every query must
    pass."""
    beir_dir = Path(beir_dir)
    qrels = read_qrels(beir_dir / "qrels" / f"{split}.tsv")
    queries = read_queries(beir_dir, set(qrels))
    if max_queries is not None:
        queries = dict(list(queries.items())[:max_queries])
    if not queries:
        raise KitError(f"no query of {beir_dir / 'queries.jsonl'} is judged in qrels/{split}.tsv", "check --split")
    searcher = Searcher(
        cluster, index, config=config, sparse_encoder=sparse_encoder, dense_encoder=dense_encoder, encoding=encoding
    )
    plans = {}
    for mode in modes:
        options = QueryOptions.parse(mode, k=k, source=(), filter=tuple(filter), seismic=seismic or SeismicQuery())
        plans[options.label] = replace(options, hybrid=hybrid, weights=weights) if options.mode == "hybrid" else options
    first = next(iter(queries.values()))
    for options in plans.values():  # refuse a misconfigured mode before spending time on the others
        searcher.build(first, options)
    signals = dict.fromkeys(s for options in plans.values() for s in signals_of(options, searcher.config))
    where = {s: "local" if searcher.uses_local(s) else "cluster" for s in signals if s != "bm25"}
    judged = {qid: qrels[qid] for qid in queries}
    results, runs = {}, {}
    with progress_bar(len(plans) * len(queries), desc=f"eval {index}", unit="query", enabled=progress) as bar:
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
    report = EvalReport(index, str(beir_dir), split, k, len(queries), where, results, runs, filter=tuple(filter))
    if out:
        Path(out).write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if chart:
        write_chart(report.to_dict(runs=False), Path(chart))
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
