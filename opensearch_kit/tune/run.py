"""`tune`: choose an index's hybrid fusion on dev queries, report it on held-out queries, optionally apply it.

Each sub-query (bm25, sparse, dense) is searched once per query and shard; every grid point is then fused
client-side (`fusion`) instead of one hybrid search per point, and a sample of queries x points is checked against
the server's own hybrid search. The choice (`select`) is cross-validated over the dev queries and guarded by a
significance test against the untuned hybrid, all offline over the fetched hits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from opensearchpy import OpenSearch

from opensearch_kit.beir import read_qrels, read_queries
from opensearch_kit.errors import KitError
from opensearch_kit.evaluate.metrics import Run, score_run
from opensearch_kit.evaluate.metrics import per_query as per_query_metrics
from opensearch_kit.index.bodies import tuned_pipeline_name
from opensearch_kit.index.meta import IndexMeta
from opensearch_kit.opensearch.features import features as cluster_features
from opensearch_kit.opensearch.transport import Transport
from opensearch_kit.progress import progress_bar
from opensearch_kit.search.filters import Filter
from opensearch_kit.search.fusion import F32, FusionPoint, QueryHits, fused_run
from opensearch_kit.search.perquery import WeightModel, term_idfs
from opensearch_kit.search.query import QueryOptions, signals_of
from opensearch_kit.search.searcher import DenseQueryEncoder, Encoding, Searcher, SparseQueryEncoder
from opensearch_kit.tune.grid import RANK_CONSTANTS, fusion_grid, metric_name, score_matrix, split_queries
from opensearch_kit.tune.select import bootstrap_interval, hits_features, select

UNTUNED = FusionPoint("min_max", "arithmetic_mean")  # what `index create` makes without --weights
CLOSE = 1e-5


@dataclass
class ServerCheck:
    """Client-side fusion against the server's hybrid search for sampled (query, point) pairs: `mismatches` lists
    pairs whose documents or scores differ (tied documents may swap at the cut)."""

    pairs: int = 0
    exact_pairs: int = 0  # bit-identical documents and scores
    compared_hits: int = 0
    max_abs_diff: float = 0.0
    mismatches: list[dict] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        """Every pair bit-identical."""
        return self.pairs > 0 and not self.mismatches

    @property
    def close(self) -> bool:
        """Every compared score within CLOSE of the server's (a few float32 ulps: the server's kNN scores drift
        by an ulp on a freshly loaded index)."""
        return self.pairs > 0 and self.max_abs_diff <= CLOSE

    def to_dict(self) -> dict:
        return {
            "pairs": self.pairs,
            "compared_hits": self.compared_hits,
            "max_abs_diff": self.max_abs_diff,
            "exact_pairs": self.exact_pairs,
            "equal": self.equal,
            "close": self.close,
            "mismatches": self.mismatches,
        }


@dataclass
class TuneReport:
    """What was chosen (`chosen`: default, fixed or per_query, and why), the best fixed setting on the dev queries
    (`winner`), the cross-validation and held-out evidence (`selection`), and every compared setting on dev and
    held-out queries."""

    index: str
    beir_dir: str
    metric: str
    k: int
    signals: tuple[str, ...]
    dev_queries: list[str]
    test_queries: list[str]
    winner: FusionPoint
    grid_size: int
    top: list[dict]  # the best grid points on dev
    results: dict[str, dict]  # label -> {"dev": metrics, "test": metrics}
    check: ServerCheck
    chosen: str = "default"
    reason: str = ""
    selection: dict = field(default_factory=dict)  # folds, alpha, cv and held_out evidence of each way of choosing
    weight_model: WeightModel | None = None
    applied: dict | None = None
    filter: tuple = ()

    @property
    def chosen_point(self) -> FusionPoint:
        """The pipeline's fusion: the untuned one by default, else the winner (the per-query model replaces its
        weights per request)."""
        return UNTUNED if self.chosen == "default" else self.winner

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "beir_dir": self.beir_dir,
            "metric": self.metric,
            "k": self.k,
            "signals": list(self.signals),
            "filter": list(self.filter),
            "dev_queries": self.dev_queries,
            "test_queries": self.test_queries,
            "grid_size": self.grid_size,
            "chosen": self.chosen,
            "reason": self.reason,
            "winner": {**self.winner.to_dict(), "label": self.winner.label},
            "selection": self.selection,
            "weight_model": self.weight_model.to_dict() if self.weight_model else None,
            "top": self.top,
            "results": self.results,
            "server_check": self.check.to_dict(),
            "applied": self.applied,
        }

    def summary(self) -> str:
        """The winner, then one row per setting: the tuned metric on dev and held-out queries."""
        lines = [
            f"{self.index}: {self.grid_size} fusion settings over {', '.join(self.signals)}, chosen on "
            f"{len(self.dev_queries)} dev queries, reported on {len(self.test_queries)} held-out queries",
            f"chosen: {self.chosen} ({self.reason}); best fixed setting on dev: {self.winner.label}",
            f"{'setting':<46} {'dev ' + self.metric:>14} {'held-out ' + self.metric + ' [95% CI]':>34}",
        ]
        for label, r in self.results.items():
            low, high = r["test_ci95"]
            held = f"{r['test'][self.metric]:.4f} [{low:.4f}, {high:.4f}]"
            lines.append(f"{label:<46} {r['dev'][self.metric]:>14.4f} {held:>34}")
        cv = f"{self.selection.get('folds', 0)}-fold cv on dev"
        rows = [(f"{name} vs untuned, {cv}", self.selection["cv"][name]) for name in self.selection.get("cv", {})]
        rows += [(f"{name} vs untuned, held-out", e) for name, e in self.selection.get("held_out", {}).items()]
        if self.selection.get("cv_per_query_vs_fixed"):
            rows.append((f"per_query vs fixed, {cv}", self.selection["cv_per_query_vs_fixed"]))
        for what, e in rows:
            lines.append(
                f"{what} ({e['queries']} queries): {e['score']:.4f} vs {e['baseline']:.4f}, "
                f"gain {e['gain']:+.4f} [95% CI {e['ci95'][0]:+.4f}, {e['ci95'][1]:+.4f}], p = {e['p_value']:.4f}"
            )
        c = self.check
        verdict = "all bit-identical" if c.equal else f"{c.exact_pairs} bit-identical"
        lines.append(
            f"client fusion vs server: {c.pairs} (query, setting) pairs, {c.compared_hits} hits, {verdict} "
            f"(max |diff| {c.max_abs_diff:.3g})"
        )
        if self.applied:
            lines.append(f"applied: pipeline {self.applied['pipeline']} is now the index's hybrid pipeline")
        return "\n".join(lines)


def frozen_searcher(searcher: Searcher) -> Searcher:
    """The same searcher with each query encoded once by the index's in-cluster models (_predict, cached) and sent
    as a vector / tokens. The server's query encoding is not bit-stable from one search to the next (float32
    last-bit changes seen in the neural query's embedding), so the sub-query fetch and the server check must share
    one encoding to compare fusion exactly; it also encodes each query once instead of once per search."""
    from functools import cache

    from opensearch_kit.verify.cluster import cluster_embeddings, cluster_sparse_weights

    config, ml = searcher.config, searcher.transport.ml
    encoders = dict(searcher.encoders)
    if (
        config.sparse_field
        and not searcher.uses_local("sparse")
        and IndexMeta.read(searcher.transport, searcher.index).sparse.format == "WORD"
    ):
        encoders["sparse"] = cache(lambda text: cluster_sparse_weights(ml, config.sparse_model_id, [text])[0])
    if config.dense_field and not searcher.uses_local("dense"):
        model_config = ml.get(config.dense_model_id).get("model_config") or {}
        asymmetric = model_config.get("query_prefix") or model_config.get("passage_prefix")
        content_type = "query" if asymmetric else None  # ML Commons refuses content_type for a prefix-less model
        encoders["dense"] = cache(lambda text: cluster_embeddings(ml, config.dense_model_id, [text], content_type)[0])
    frozen = Searcher(
        searcher.transport,
        searcher.index,
        config=config,
        sparse_encoder=encoders["sparse"],
        dense_encoder=encoders["dense"],
        encoding="local" if all(encoders[s] for s in ("sparse", "dense") if getattr(config, f"{s}_field")) else "auto",
    )
    return frozen


def fetch_hits(
    searcher: Searcher,
    queries: dict[str, str],
    signals: tuple[str, ...],
    depth: int,
    *,
    progress: bool = True,
    filter: tuple[Filter, ...] = (),
) -> dict[str, QueryHits]:
    """Every query's top `depth` hits of each sub-query on each shard (one search per query, signal and shard),
    with the sub-queries the hybrid query would send, each filtered by `filter`."""
    shards = searcher.shards
    if shards is None:
        raise KitError(f"{searcher.index} names several indexes", "tune one index at a time, by its own name")
    out = {}
    with progress_bar(len(queries), desc=f"fetch {searcher.index}", unit="query", enabled=progress) as bar:
        for qid, text in queries.items():
            lists = [[] for _ in range(shards)]
            for signal in signals:
                request = searcher.build(text, QueryOptions(mode=signal, k=depth, source=(), filter=filter))
                for shard in range(shards):
                    params = {**request.params, "preference": f"_shards:{shard}"} if shards > 1 else request.params
                    raw = searcher.transport.request("POST", f"/{searcher.index}/_search", request.body, params=params)
                    hits = raw["hits"]["hits"][:depth]
                    lists[shard].append(([h["_id"] for h in hits], np.array([h["_score"] for h in hits], dtype=F32)))
            out[qid] = QueryHits(signals, lists)
            bar.update()
    return out


def server_run(
    searcher: Searcher, text: str, point: FusionPoint, signals: tuple[str, ...], k: int, filter: tuple = ()
) -> Run:
    """{doc id: score} of the server's hybrid search for `text` with `point`'s fusion as an inline pipeline."""
    even = (1 / len(signals),) * len(signals)  # placeholder weights: the index pipeline's may fit other signals
    options = QueryOptions(mode="hybrid", k=k, hybrid=signals, weights=even, source=(), filter=filter)
    request = searcher.build(text, options)
    body = {**request.body, "search_pipeline": point.pipeline()}
    raw = searcher.transport.request("POST", f"/{searcher.index}/_search", body)
    return {h["_id"]: float(h["_score"]) for h in raw["hits"]["hits"][:k]}


def check_against_server(
    searcher: Searcher,
    queries: dict[str, str],
    signals: tuple[str, ...],
    points: list[FusionPoint],
    k: int,
    filter: tuple[Filter, ...] = (),
) -> ServerCheck:
    """Fuse each (query, point) client-side and compare with the server: the same documents with bit-identical
    float32 scores, except that documents tied at the cut may differ. The sub-query hits are fetched again here,
    just before the server's searches: a node that has just started or just got an index scores some kNN hits a
    float32 ulp differently in its first searches (seen on 3.6; stable once warm), which is server drift, not
    fusion."""
    check = ServerCheck()
    for text in queries.values():  # warm the hybrid query's own code path up too
        server_run(searcher, text, UNTUNED, signals, k, filter)
    hits = fetch_hits(searcher, queries, signals, k, progress=False, filter=filter)
    for qid, text in queries.items():
        for point in points:
            client = fused_run(hits[qid], point, k)
            server = server_run(searcher, text, point, hits[qid].signals, k, filter)
            check.pairs += 1
            common = set(client) & set(server)
            check.compared_hits += len(common)
            diffs = [abs(F32(client[d]) - F32(server[d])) for d in common]
            check.max_abs_diff = max([check.max_abs_diff, *map(float, diffs)])
            unexplained = [d for d in set(client) - common if client[d] != min(client.values())]
            unexplained += [d for d in set(server) - common if server[d] != min(server.values())]
            if not (any(diffs) or unexplained or len(client) != len(server)):
                check.exact_pairs += 1
            else:
                check.mismatches.append(
                    {
                        "query": qid,
                        "setting": point.label,
                        "max_abs_diff": float(max(diffs, default=0)),
                        "only_client": sorted(set(client) - set(server)),
                        "only_server": sorted(set(server) - set(client)),
                    }
                )
    return check


def single_run(query: QueryHits, signal: int, k: int) -> Run:
    """{doc id: score} of one sub-query alone (its shards merged by score), as that single mode searches."""
    rows = [(i, float(query.raw[i, signal])) for i in range(len(query.rows)) if query.present[i, signal]]
    rows.sort(key=lambda r: (r[1], query.rows[r[0]][1]), reverse=True)
    return {query.rows[i][1]: score for i, score in rows[:k]}


def tune(
    cluster: Transport | OpenSearch,
    index: str,
    beir_dir: Path,
    *,
    split: str = "test",
    dev_split: str | None = None,
    dev_fraction: float = 0.5,
    seed: int = 0,
    metric: str = "ndcg@10",
    k: int = 100,
    rank_constants: tuple[int, ...] = RANK_CONSTANTS,
    hybrid: tuple[str, ...] = (),
    folds: int = 5,
    per_query: bool = True,
    filter: tuple[Filter, ...] | list[Filter] = (),
    check_queries: int = 3,
    apply: bool = False,
    sparse_encoder: SparseQueryEncoder | Path | None = None,
    dense_encoder: DenseQueryEncoder | Path | None = None,
    encoding: Encoding = "auto",
    out: Path | None = None,
    chart: Path | None = None,
    progress: bool = True,
) -> TuneReport:
    """Choose the hybrid fusion of `index` for `metric` on dev queries (qrels/<dev_split>.tsv, or a seeded
    `dev_fraction` of qrels/<split>.tsv): the best fixed grid point and (with `per_query`) a per-query weights
    model are each cross-validated over `folds` folds of the dev queries; the better one is chosen only when its
    cross-validated gain over the untuned hybrid (min_max, arithmetic mean, no weights) is significant (one-sided
    paired randomization test, p < ALPHA), else the untuned hybrid is kept. The report gives each on the held-out
    queries with 95% bootstrap intervals, next to each single mode. `check_queries` held-out queries are also
    searched by the server with the winner, the untuned fusion and a few others, to prove the client fusion equal.
    `apply` writes the chosen fusion as the index's hybrid pipeline and records it, the weights model and the
    evidence in the index's `_meta`. `filter`:
    query clauses (or `--where` shorthands) every hit of every query must pass."""
    filter = tuple(filter)
    beir_dir = Path(beir_dir)
    metric = metric_name(metric)
    qrels = read_qrels(beir_dir / "qrels" / f"{split}.tsv")
    if dev_split:
        dev_qrels = read_qrels(beir_dir / "qrels" / f"{dev_split}.tsv")
        texts = read_queries(beir_dir, set(qrels) | set(dev_qrels))
        dev = [q for q in dev_qrels if q in texts]
        held = [q for q in qrels if q in texts and q not in dev_qrels]
        qrels = {**qrels, **dev_qrels}
    else:
        texts = read_queries(beir_dir, set(qrels))
        dev, held = split_queries(list(texts), fraction=dev_fraction, seed=seed)
    if not dev or not held:
        raise KitError(f"tuning needs dev and held-out queries; got {len(dev)} and {len(held)}", "check the splits")
    searcher = frozen_searcher(
        Searcher(cluster, index, sparse_encoder=sparse_encoder, dense_encoder=dense_encoder, encoding=encoding)
    )
    signals = signals_of(QueryOptions(mode="hybrid", hybrid=hybrid), searcher.config)
    if len(signals) < 2:
        raise KitError(f"index {index} has one signal ({signals[0]}): nothing to fuse", "index a sparse or dense field")
    queries = dev + held
    hits = fetch_hits(searcher, {q: texts[q] for q in queries}, signals, k, progress=progress, filter=filter)
    text_field = searcher.config.text_field
    features = np.array(
        [hits_features(hits[q], term_idfs(searcher.transport, index, text_field, texts[q])) for q in queries]
    )
    grid = fusion_grid(len(signals), rank_constants, cluster_features(searcher.transport))
    ordered = {q: hits[q] for q in queries}
    matrix = score_matrix(grid, ordered, qrels, metric, k)  # [dev + held queries, points]
    untuned = score_matrix([UNTUNED], ordered, qrels, metric, k)[:, 0]
    chosen, reason, final, selection = select(
        matrix, untuned, features, grid, signals, len(dev), folds, seed, per_query
    )
    winner = grid[final.fixed]
    dev_means = matrix[: len(dev)].mean(axis=0)
    ranked = np.argsort(-dev_means, kind="stable")[:10]
    top = [{"setting": grid[i].label, metric: float(dev_means[i]), **grid[i].to_dict()} for i in ranked]

    def scored(runs: dict[str, Run]) -> dict:
        """Mean metrics on dev and held-out queries, and the 95% interval of the held-out `metric`."""
        values = np.array([v[metric] for v in per_query_metrics(qrels, runs, held).values()])
        interval = list(bootstrap_interval(values, seed))
        return {"dev": score_run(qrels, runs, dev), "test": score_run(qrels, runs, held), "test_ci95": interval}

    results = {
        f"untuned: {UNTUNED.label}": scored({q: fused_run(hits[q], UNTUNED, k) for q in queries}),
        f"fixed: {winner.label}": scored({q: fused_run(hits[q], winner, k) for q in queries}),
    }
    if per_query:
        per_point = {q: grid[final.columns[i]] for i, q in enumerate(queries)}
        label = f"per-query: {winner.label.split(' [')[0]} [model]"
        results[label] = scored({q: fused_run(hits[q], per_point[q], k) for q in queries})
    for j, signal in enumerate(signals):
        results[signal] = scored({q: single_run(hits[q], j, k) for q in hits})
    sample = {q: texts[q] for q in held[:check_queries]}
    others = [grid[len(grid) // 3], grid[len(grid) // 2], grid[-1]]  # other techniques and an RRF
    check = check_against_server(searcher, sample, signals, [winner, UNTUNED, *others], k, filter)
    report = TuneReport(
        index,
        str(beir_dir),
        metric,
        k,
        signals,
        dev,
        held,
        winner,
        len(grid),
        top,
        results,
        check,
        chosen=chosen,
        reason=reason,
        selection=selection,
        weight_model=final.model if per_query else None,
        filter=filter,
    )
    if apply:
        report.applied = apply_fusion(searcher.transport, index, report.chosen_point, record=tuning_record(report))
    if out:
        Path(out).write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if chart:
        from opensearch_kit.tune.chart import write_chart

        write_chart(report, Path(chart))
    return report


def tuning_record(report: TuneReport) -> dict:
    """What `_meta.opensearch_kit.tuning` keeps of a tuning: the pipeline's setting, how it was chosen (`chosen`,
    `reason`) and on what evidence (cross-validation and held-out gains, intervals, p-values), and the per-query
    weights model when that was chosen (`weight_model`: searches then weigh each hybrid query by it)."""
    return {
        **report.chosen_point.to_dict(),
        "chosen": report.chosen,
        "reason": report.reason,
        "signals": list(report.signals),
        "metric": report.metric,
        "best_fixed": report.winner.label,
        "selection": report.selection,
        "dev_queries": len(report.dev_queries),
        "held_out_queries": len(report.test_queries),
        "beir_dir": report.beir_dir,
        "weight_model": report.weight_model.to_dict() if report.chosen == "per_query" else None,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def apply_fusion(transport: Transport, index: str, point: FusionPoint, *, record: dict) -> dict:
    """Write `point` as the search pipeline `<index>-hybrid-tuned`, make it the index's hybrid pipeline and record
    the tuning (and the weights) in the index's `_meta` (re-running replaces both)."""
    name = tuned_pipeline_name(index)
    body = point.pipeline(f"opensearch-kit: hybrid fusion of index {index} chosen by tune")
    transport.request("PUT", f"/_search/pipeline/{name}", body)
    meta = IndexMeta.read(transport, index)
    tuned = replace(meta.with_pipelines({**meta.pipelines, "hybrid": name}), weights=point.weights, tuning=record)
    tuned.write(transport)
    return {"pipeline": name, "body": body, "meta": tuned.to_dict()}
