"""Cross-check an eval report against ir-measures on the report's own runs."""

from __future__ import annotations

import ir_measures
import pytest
from ir_measures import RR, R, nDCG

from opensearch_kit.evaluate.metrics import ranking

MEASURES = {"NDCG@1": nDCG @ 1, "NDCG@3": nDCG @ 3, "NDCG@5": nDCG @ 5, "NDCG@10": nDCG @ 10}
MEASURES |= {"Recall@10": R @ 10, "Recall@100": R @ 100}


def assert_report_matches_ir_measures(report: dict, qrels: dict[str, dict[str, int]]) -> None:
    """Every mode's NDCG / Recall equal ir-measures'; MRR@10 equals RR@10 on the same tie-broken ranking."""
    for mode, result in report["modes"].items():
        run = report["runs"][mode]
        expected = ir_measures.calc_aggregate(MEASURES.values(), qrels, run)
        for name, measure in MEASURES.items():
            assert result["metrics"][name] == pytest.approx(expected[measure], abs=1e-9), (mode, name)
        trec_ordered = {q: {d: -float(i) for i, d in enumerate(ranking(s))} for q, s in run.items()}
        mrr = ir_measures.calc_aggregate([RR @ 10], qrels, trec_ordered)[RR @ 10]
        assert result["metrics"]["MRR@10"] == pytest.approx(mrr, abs=1e-9)
        assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p95"]
