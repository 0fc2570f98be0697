"""`tune --grid seismic`: SEISMIC's query knobs on a sparse_vector index. Each top_n x heap_factor setting is scored
by its recall@10 against an exhaustive SEISMIC ranking, its judged metric and its p50 latency; the fastest setting
whose recall@10 reaches a target is chosen, and `apply` records it in the index's `_meta`, where later searches
take each knob they are not given.

neural-search has no exact mode on a sparse_vector field (a segment below approximate_threshold is searched
exactly, every other one by SEISMIC), so the reference is SEISMIC at its most thorough: every query token (top_n
ID_LIMIT, more than any query holds) and heap_factor EXHAUSTIVE_HEAP, which visits every cluster whose summary
shares a token with the query. What the index itself dropped (posting lists cut to n_postings, summaries pruned)
stays dropped: the reference is exhaustive over the index's SEISMIC structures, not over the documents.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from opensearchpy import OpenSearch

from opensearch_kit.beir import read_qrels, read_queries
from opensearch_kit.errors import KitError
from opensearch_kit.evaluate.metrics import Run, score_run
from opensearch_kit.evaluate.run import percentile
from opensearch_kit.index.meta import IndexMeta
from opensearch_kit.index.options import SeismicQuery
from opensearch_kit.index.token_ids import ID_LIMIT
from opensearch_kit.opensearch.transport import Transport
from opensearch_kit.progress import progress_bar
from opensearch_kit.search.filters import Filter
from opensearch_kit.search.query import IndexConfig, QueryOptions
from opensearch_kit.search.searcher import Encoding, Searcher, SparseQueryEncoder
from opensearch_kit.tune.grid import metric_name

TOP_NS = (5, 10, 20, 40)
HEAP_FACTORS = (1.0, 1.5, 2.0)
RECALL_TARGET = 0.95
RECALL_AT = 10
RECALL = f"recall@{RECALL_AT}"  # of each setting's top 10 against the reference's
EXHAUSTIVE_HEAP = 1e6
EXHAUSTIVE = "exhaustive SEISMIC"
SERVER_THRESHOLD = 1_000_000  # neural-search's approximate_threshold when the mapping sets none


@dataclass
class SeismicTuneReport:
    """Every setting's recall@10 against the exhaustive SEISMIC ranking, judged metric and p50 latency (`rows`, the
    exhaustive reference last), and the chosen setting (None when no setting reaches the target)."""

    index: str
    beir_dir: str
    split: str
    metric: str
    k: int
    queries: int
    recall_target: float
    rows: list[dict]
    chosen: dict | None
    segments: dict  # primary segments searched by SEISMIC, of all, and the threshold that decides it
    query_encoding: str
    filter: tuple = ()
    applied: dict | None = None

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "beir_dir": self.beir_dir,
            "split": self.split,
            "metric": self.metric,
            "k": self.k,
            "queries": self.queries,
            "filter": list(self.filter),
            "query_encoding": self.query_encoding,
            "segments": self.segments,
            "recall_target": self.recall_target,
            "rows": self.rows,
            "chosen": self.chosen,
            "applied": self.applied,
        }

    def summary(self) -> str:
        """One row per setting (recall, metric, p50), then the choice."""
        s = self.segments
        lines = [
            f"{self.index}: SEISMIC query knobs on {self.queries} queries of qrels/{self.split}.tsv, top {self.k} "
            f"(SEISMIC k {self.k}); {s['seismic']} of {s['total']} segments searched by SEISMIC (approximate_threshold "
            f"{s['approximate_threshold']}); query encoding {self.query_encoding}",
            f"{'setting':<32} {RECALL + ' vs exhaustive':>22} {self.metric:>10} {'p50 ms':>8}",
        ]
        for row in self.rows:
            lines.append(f"{row['setting']:<32} {row[RECALL]:>22.4f} {row[self.metric]:>10.4f} {row['p50_ms']:>8.1f}")
        if self.chosen:
            reference = self.rows[-1]["p50_ms"]
            lines.append(
                f"chosen: {self.chosen['setting']}, the fastest with {RECALL} >= {self.recall_target:g} "
                f"({self.chosen[RECALL]:.4f} at {self.chosen['p50_ms']:.1f} ms; exhaustive {reference:.1f} ms)"
            )
        else:
            lines.append(
                f"chosen: none, no setting reaches {RECALL} >= {self.recall_target:g}: try larger --top-ns / "
                "--heap-factors or a lower --recall-target"
            )
        if self.applied:
            lines.append(
                "applied: recorded in _meta.opensearch_kit.seismic_tuning; search and eval use it for every knob "
                "not given (--top-n, --heap-factor, --seismic-k)"
            )
        return "\n".join(lines)


def seismic_segments(transport: Transport, index: str, threshold: int) -> dict:
    """How many of the index's primary segments hold at least `threshold` documents (deleted ones count, as
    neural-search counts maxDoc), so that SEISMIC, not the exact fallback, searches them."""
    shards = transport.request("GET", f"/{index}/_segments")["indices"][index]["shards"]
    sizes = [
        segment["num_docs"] + segment["deleted_docs"]
        for copies in shards.values()
        for copy in copies
        if copy["routing"]["primary"]
        for segment in copy["segments"].values()
        if segment.get("search", True)
    ]
    seismic = sum(size >= threshold for size in sizes)
    return {"seismic": seismic, "total": len(sizes), "approximate_threshold": threshold}


def tune_seismic(
    cluster: Transport | OpenSearch,
    index: str,
    beir_dir: Path,
    *,
    split: str = "test",
    metric: str = "ndcg@10",
    k: int = 100,
    top_ns: tuple[int, ...] = TOP_NS,
    heap_factors: tuple[float, ...] = HEAP_FACTORS,
    recall_target: float = RECALL_TARGET,
    filter: tuple[Filter, ...] | list[Filter] = (),
    apply: bool = False,
    sparse_encoder: SparseQueryEncoder | Path | None = None,
    encoding: Encoding = "auto",
    out: Path | None = None,
    progress: bool = True,
) -> SeismicTuneReport:
    """Grid `top_ns` x `heap_factors` on the sparse_vector field of `index` over the judged queries of
    qrels/<split>.tsv, each searched to depth `k` (SEISMIC's k too): recall@10 against the exhaustive SEISMIC
    ranking, `metric` from the qrels and the p50 wall latency (queries encoded once beforehand when encoded
    locally; every setting of a query in turn, after one untimed round). The fastest setting with recall@10 >=
    `recall_target` is chosen; `apply` records it (with k = `k`, so shallower searches keep its recall) in the
    index's `_meta`. A KitError for a rank_features index or one whose segments are all below
    approximate_threshold (searched exactly: the knobs change nothing)."""
    transport = Transport.of(cluster)
    filter = tuple(filter)
    beir_dir = Path(beir_dir)
    metric = metric_name(metric)
    meta = IndexMeta.read(transport, index)
    if meta.sparse.type != "sparse_vector":
        raise KitError(
            f"index {index}'s sparse field is {meta.sparse.type}, searched exactly: it has no SEISMIC query knobs",
            f"tune its hybrid fusion (drop --grid seismic), or make a sparse_vector index for SEISMIC: "
            f"opensearch-kit index create NAME --sparse-model {meta.sparse.model_id or 'ID'} "
            "--sparse-type sparse_vector, then ingest it",
        )
    threshold = (meta.sparse.seismic and meta.sparse.seismic.approximate_threshold) or SERVER_THRESHOLD
    segments = seismic_segments(transport, index, threshold)
    if not segments["seismic"]:
        raise KitError(
            f"no segment of index {index} holds approximate_threshold ({threshold}) documents: every segment is "
            "searched exactly and the SEISMIC knobs change nothing",
            f"merge its segments (POST /{index}/_forcemerge?max_num_segments=1) or create the index with a lower "
            "--approximate-threshold",
        )
    qrels = read_qrels(beir_dir / "qrels" / f"{split}.tsv")
    texts = read_queries(beir_dir, set(qrels))
    if not texts:
        raise KitError(f"no query of {beir_dir / 'queries.jsonl'} is judged in qrels/{split}.tsv", "check --split")
    config = IndexConfig.from_meta(meta)
    searcher = Searcher(transport, index, config=config, sparse_encoder=sparse_encoder, encoding=encoding)
    local = searcher.uses_local("sparse")
    if local:  # encode once, outside the timed searches
        tokens = {text: searcher.encoders["sparse"](text) for text in texts.values()}
        searcher = Searcher(transport, index, config=config, sparse_encoder=tokens.__getitem__, encoding="local")
    grid = [SeismicQuery(n, h, k) for n in top_ns for h in heap_factors] + [SeismicQuery(ID_LIMIT, EXHAUSTIVE_HEAP, k)]
    labels = [f"top_n {knobs.top_n}, heap_factor {knobs.heap_factor:g}" for knobs in grid[:-1]] + [EXHAUSTIVE]
    options = [QueryOptions(mode="sparse", k=k, source=(), filter=filter, seismic=knobs) for knobs in grid]
    for point in options:  # untimed: the first searches load caches and compile code paths
        searcher.search(next(iter(texts.values())), point)
    runs: list[Run] = [{} for _ in grid]
    tops: list[dict[str, list[str]]] = [{} for _ in grid]
    latencies: list[list[float]] = [[] for _ in grid]
    with progress_bar(len(texts) * len(grid), desc=f"seismic {index}", unit="search", enabled=progress) as bar:
        for qid, text in texts.items():
            for i, point in enumerate(options):
                result = searcher.search(text, point)
                runs[i][qid] = {hit.id: hit.score for hit in result.hits}
                tops[i][qid] = [hit.id for hit in result.hits[:RECALL_AT]]
                latencies[i].append(result.latency_ms)
                bar.update()
    reference = tops[-1]
    scored = [q for q in texts if reference[q]]  # a query the reference finds nothing for has no recall
    rows = []
    for name, knobs, run, top, ms in zip(labels, grid, runs, tops, latencies, strict=True):
        found = [len(set(top[q]) & set(reference[q])) / len(reference[q]) for q in scored]
        rows.append(
            {
                "setting": name,
                **asdict(knobs),
                RECALL: sum(found) / len(found) if found else 1.0,
                metric: score_run(qrels, run, list(texts))[metric],
                "p50_ms": percentile(ms, 50),
            }
        )
    reaching = [row for row in rows[:-1] if row[RECALL] >= recall_target]
    chosen = min(reaching, key=lambda row: (row["p50_ms"], -row[RECALL]), default=None)
    report = SeismicTuneReport(
        index,
        str(beir_dir),
        split,
        metric,
        k,
        len(texts),
        recall_target,
        rows,
        chosen,
        segments,
        "local, once per query" if local else "in-cluster, in every search",
        filter,
    )
    if apply and chosen:
        report.applied = apply_seismic(transport, index, seismic_record(report))
    if out:
        Path(out).write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def seismic_record(report: SeismicTuneReport) -> dict:
    """What `_meta.opensearch_kit.seismic_tuning` keeps: the chosen knobs (`setting`) and the evidence."""
    chosen = report.chosen
    return {
        "setting": {knob: chosen[knob] for knob in ("top_n", "heap_factor", "k")},
        RECALL: chosen[RECALL],
        "recall_target": report.recall_target,
        "metric": report.metric,
        report.metric: chosen[report.metric],
        "p50_ms": chosen["p50_ms"],
        "exhaustive_p50_ms": report.rows[-1]["p50_ms"],
        "queries": report.queries,
        "beir_dir": report.beir_dir,
        "split": report.split,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def apply_seismic(transport: Transport, index: str, record: dict) -> dict:
    """Record the chosen SEISMIC query knobs and their evidence in the index's `_meta` (re-running replaces them)."""
    replace(IndexMeta.read(transport, index), seismic_tuning=record).write(transport)
    return {"seismic_tuning": record}
