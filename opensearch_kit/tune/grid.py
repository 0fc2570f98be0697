"""The fusion grid (normalization x combination x weights, RRF x rank constants x weights), the dev / held-out
split of the judged queries, and scoring every grid point on many queries at once."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Mapping

import numpy as np

from opensearch_kit.errors import KitError
from opensearch_kit.evaluate.metrics import METRICS
from opensearch_kit.opensearch.features import Features
from opensearch_kit.search.fusion import COMBINATIONS_FOR, F32, RRF, FusionPoint, QueryHits, combine

RANK_CONSTANTS = (1, 5, 10, 20, 60)
WEIGHT_STEP = 0.1
TUNABLE = {"ndcg": "NDCG", "recall": "Recall", "mrr": "MRR"}


def weight_grid(signals: int, step: float = WEIGHT_STEP) -> list[tuple[float, ...]]:
    """Every weight vector on a `step` lattice that sums to 1 (zeros included: a signal may be switched off)."""
    units = round(1 / step)
    return [
        tuple(round(c * step, 10) for c in combo)
        for combo in itertools.product(range(units + 1), repeat=signals)
        if sum(combo) == units
    ]


def fusion_grid(
    signals: int, rank_constants: tuple[int, ...] = RANK_CONSTANTS, feats: Features | None = None
) -> list[FusionPoint]:
    """Every normalization x combination (the pairs neural-search accepts) x weight vector, then RRF x rank
    constant x weight vector; with `feats`, only what that cluster runs (z_score and weighted RRF from 3.0, RRF
    from 2.19)."""

    def has(feature: str) -> bool:
        return feats is None or feats.has(feature)

    weights = weight_grid(signals)
    techniques = {n: c for n, c in COMBINATIONS_FOR.items() if n != "z_score" or has("z_score")}
    grid = [FusionPoint(n, c, w) for n, combinations in techniques.items() for c in combinations for w in weights]
    if not has("rrf"):
        return grid
    rrf_weights = weights if has("rrf_weights") else [None]
    return grid + [FusionPoint(RRF, RRF, w, rank_constant=k) for k in rank_constants for w in rrf_weights]


def metric_name(spec: str) -> str:
    """`ndcg@10` -> `NDCG@10` (one of METRICS that has a cutoff)."""
    match = re.fullmatch(r"(ndcg|recall|mrr)@(\d+)", spec.strip().lower())
    name = match and f"{TUNABLE[match[1]]}@{match[2]}"
    if name not in METRICS:
        choices = ", ".join(m.lower() for m in METRICS if "@" in m and not m.startswith("Avg"))
        raise KitError(f"cannot tune for {spec!r}", f"use one of {choices}")
    return name


def split_queries(query_ids: list[str], *, fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(dev, held-out): a seeded random `fraction` of the queries for dev, the rest held out, both in input order."""
    if not 0 < fraction < 1:
        raise KitError(f"dev fraction {fraction} is not in (0, 1)", "pass e.g. --dev-fraction 0.5")
    chosen = set(random.Random(seed).sample(query_ids, max(1, round(len(query_ids) * fraction))))
    dev = [q for q in query_ids if q in chosen]
    held = [q for q in query_ids if q not in chosen]
    if not held:
        raise KitError("no query is left for the held-out part", "use a smaller --dev-fraction or more queries")
    return dev, held


def score_matrix(
    grid: list[FusionPoint],
    hits: Mapping[str, QueryHits],
    qrels: Mapping[str, Mapping[str, int]],
    metric: str,
    k: int,
) -> np.ndarray:
    """float64 [queries, points]: `metric` of each query of `hits` (in order) under each grid point (a query's run
    is its top k fused documents, ranked as trec_eval does; the same numbers as `evaluate.score_run`)."""
    families: dict[tuple, list[int]] = {}
    for i, point in enumerate(grid):
        families.setdefault(point.family, []).append(i)
    totals = np.zeros((len(hits), len(grid)))
    for q, (qid, query) in enumerate(hits.items()):
        if not query.rows:
            continue
        grades = qrels.get(qid, {})
        gains = np.array([max(grades.get(doc, 0), 0) for doc in query.doc_ids], dtype=np.float64)
        tie_key = _descending_rank(query.doc_ids)
        for (normalization, combination, rank_constant), members in families.items():
            normalized = query.normalized(normalization, rank_constant)
            weights = np.array([grid[i].weights or (1.0,) * len(query.signals) for i in members], dtype=F32)
            scores = combine(normalized, combination, weights)  # [rows, members]
            order = np.lexsort((np.broadcast_to(tie_key, scores.T.shape), -scores.T), axis=-1)[:, :k]
            totals[q, members] = _metric(order, gains, grades, metric)
    return totals


def _descending_rank(doc_ids: list[str]) -> np.ndarray:
    """A sort key that orders equal scores by doc id descending (position 0 = the largest id)."""
    ranked = sorted(range(len(doc_ids)), key=lambda i: doc_ids[i], reverse=True)
    key = np.empty(len(doc_ids), dtype=np.int64)
    key[ranked] = np.arange(len(doc_ids))
    return key


def _metric(order: np.ndarray, gains: np.ndarray, grades: Mapping[str, int], metric: str) -> np.ndarray:
    """The metric of each ranking (rows of `order`: row indices, best first, at most k)."""
    name, cutoff = metric.split("@")
    cutoff = int(cutoff)
    top = gains[order[:, :cutoff]]  # [points, <= cutoff]
    if name == "NDCG":
        discount = 1 / np.log2(np.arange(2, top.shape[1] + 2))
        ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:cutoff]
        idcg = sum(g / np.log2(r + 2) for r, g in enumerate(ideal))
        return (top * discount).sum(axis=1) / idcg if idcg > 0 else np.zeros(len(order))
    relevant = top >= 1
    if name == "Recall":
        count = sum(1 for g in grades.values() if g >= 1)
        return relevant.sum(axis=1) / count if count else np.zeros(len(order))
    first = np.where(relevant.any(axis=1), relevant.argmax(axis=1), -1)
    return np.where(first >= 0, 1.0 / (first + 1), 0.0)
