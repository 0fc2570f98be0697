"""Retrieval metrics with trec_eval's conventions, as pytrec_eval (ir-measures' provider for nDCG and R) computes them.

A run is {query-id: {doc-id: score}}; its order is recomputed as trec_eval does: score descending, ties by doc-id
descending (strcmp order). Gains are the relevance grades (not 2^grade - 1) with a log2(rank + 1) discount; a document
is relevant for Recall and MRR when its grade is at least 1. Every judged query counts in the mean, one without hits
scoring 0, as ir-measures averages (trec_eval -c). MRR@10 ranks the same way; ir-measures' RR@10 comes from its
msmarco provider, which breaks ties by doc id ascending.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from opensearch_kit.beir import Qrels

Run = dict[str, dict[str, float]]
NDCG_CUTOFFS = (1, 3, 5, 10)
METRICS = ("NDCG@1", "NDCG@3", "NDCG@5", "NDCG@10", "Avg. NDCG", "Recall@10", "Recall@100", "MRR@10")


def ranking(scores: Mapping[str, float]) -> list[str]:
    """Doc ids in trec_eval order: score descending, then doc id descending."""
    return sorted(scores, key=lambda doc: (scores[doc], doc), reverse=True)


def ndcg(ranked: list[str], grades: Mapping[str, int], k: int) -> float:
    """trec_eval ndcg_cut_k: sum of grade / log2(rank + 1) over the top k, over the same for the ideal order."""
    dcg = sum(max(grades.get(doc, 0), 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall(ranked: list[str], grades: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents (grade >= 1) found in the top k."""
    relevant = {doc for doc, g in grades.items() if g >= 1}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def reciprocal_rank(ranked: list[str], grades: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant document within the top k, else 0."""
    return next((1.0 / (rank + 1) for rank, doc in enumerate(ranked[:k]) if grades.get(doc, 0) >= 1), 0.0)


def query_metrics(scores: Mapping[str, float], grades: Mapping[str, int]) -> dict[str, float]:
    """Every metric of METRICS for one query."""
    ranked = ranking(scores)
    values = {f"NDCG@{k}": ndcg(ranked, grades, k) for k in NDCG_CUTOFFS}
    values["Avg. NDCG"] = sum(values[f"NDCG@{k}"] for k in NDCG_CUTOFFS) / len(NDCG_CUTOFFS)
    values["Recall@10"] = recall(ranked, grades, 10)
    values["Recall@100"] = recall(ranked, grades, 100)
    values["MRR@10"] = reciprocal_rank(ranked, grades, 10)
    return {name: values[name] for name in METRICS}


def per_query(qrels: Qrels, run: Run, query_ids: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
    """{query-id: metrics} for `query_ids` (default: every judged query); a query missing from the run scores 0."""
    ids = list(qrels) if query_ids is None else list(query_ids)
    return {qid: query_metrics(run.get(qid, {}), qrels.get(qid, {})) for qid in ids}


def mean_metrics(per_query_values: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The mean of each metric over the queries."""
    n = len(per_query_values)
    return {name: (sum(v[name] for v in per_query_values.values()) / n if n else 0.0) for name in METRICS}


def score_run(qrels: Qrels, run: Run, query_ids: Iterable[str] | None = None) -> dict[str, float]:
    """Mean metrics of a run over `query_ids` (default: every judged query)."""
    return mean_metrics(per_query(qrels, run, query_ids))
