"""Metrics equal ir-measures (pytrec_eval, i.e. trec_eval) on graded qrels and runs full of ties."""

from __future__ import annotations

import random

import ir_measures
import pytest
from ir_measures import RR, R, nDCG

from opensearch_kit.beir import read_qrels
from opensearch_kit.errors import KitError
from opensearch_kit.evaluate.metrics import METRICS, per_query, ranking, score_run

IR_MEASURES = {"NDCG@1": nDCG @ 1, "NDCG@3": nDCG @ 3, "NDCG@5": nDCG @ 5, "NDCG@10": nDCG @ 10}
IR_MEASURES |= {"Recall@10": R @ 10, "Recall@100": R @ 100, "MRR@10": RR @ 10}


def trec_ordered(run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The run with its ties broken the trec_eval way, as strictly decreasing scores."""
    return {q: {doc: -float(rank) for rank, doc in enumerate(ranking(scores))} for q, scores in run.items()}


def reference(qrels, run) -> dict[str, dict[str, float]]:
    """Per-query values from ir-measures. nDCG and R come from pytrec_eval; its RR@10 comes from the msmarco
    provider, which breaks ties by doc id ascending, so RR@10 is asked of the trec-ordered run."""
    values: dict[str, dict[str, float]] = {q: {} for q in qrels}
    for name, measure in IR_MEASURES.items():
        source = trec_ordered(run) if name == "MRR@10" else run
        for m in ir_measures.iter_calc([measure], qrels, source):
            values[m.query_id][name] = m.value
    for v in values.values():
        v["Avg. NDCG"] = sum(v[f"NDCG@{k}"] for k in (1, 3, 5, 10)) / 4
    return values


def assert_equal_to_ir_measures(qrels, run) -> None:
    ours, theirs = per_query(qrels, run), reference(qrels, run)
    assert ours.keys() == theirs.keys()
    for qid in qrels:
        for name in METRICS:
            assert ours[qid][name] == pytest.approx(theirs[qid][name], abs=1e-9), (qid, name)
    aggregate = ir_measures.calc_aggregate([m for n, m in IR_MEASURES.items() if n != "MRR@10"], qrels, run)
    mine = score_run(qrels, run)
    for name, measure in IR_MEASURES.items():
        if name != "MRR@10":
            assert mine[name] == pytest.approx(aggregate[measure], abs=1e-9)


def test_ties_break_by_doc_id_descending():
    qrels = {"q1": {"d1": 2, "d2": 1, "d3": 0, "d9": 1}, "q2": {"d5": 1}}
    run = {"q1": {"d1": 1.0, "d2": 1.0, "d3": 1.0, "d4": 0.5, "d9": 0.5}, "q2": {"d4": 2.0, "d5": 2.0, "d6": 1.0}}
    assert ranking(run["q1"]) == ["d3", "d2", "d1", "d9", "d4"]
    values = per_query(qrels, run)
    assert values["q1"]["NDCG@1"] == 0.0  # d3 (grade 0) ranks first among the three tied at 1.0
    assert values["q1"]["MRR@10"] == 0.5
    assert values["q2"]["NDCG@1"] == 1.0 and values["q2"]["MRR@10"] == 1.0  # d5 before d4
    assert_equal_to_ir_measures(qrels, run)
    msmarco = {m.query_id: m.value for m in ir_measures.iter_calc([RR @ 10], qrels, run)}
    assert msmarco == {"q1": 1.0, "q2": 0.5}  # ir-measures' own RR@10 breaks these ties by doc id ascending


def test_random_graded_runs_with_ties_equal_ir_measures():
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(30)] + [str(i) for i in range(5, 15)] + ["문서1", "문서2", "Doc", "doc"]
    qrels, run = {}, {}
    for q in range(40):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 12))
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        retrieved = rng.sample(docs, rng.randint(1, len(docs)))
        run[qid] = {d: round(rng.uniform(0, 2), 1) for d in retrieved}  # few distinct scores: many ties
    qrels["q-unjudged-relevant"] = {"d1": 0}
    run["q-unjudged-relevant"] = {"d1": 1.0, "d2": 0.5}
    assert_equal_to_ir_measures(qrels, run)


def test_judged_query_without_hits_counts_as_zero_unjudged_run_query_is_ignored():
    qrels = {"q1": {"a": 1}, "q2": {"b": 2}}
    run = {"q1": {"a": 3.0, "c": 1.0}, "q3": {"b": 1.0}}
    assert score_run(qrels, run)["NDCG@10"] == pytest.approx(0.5)
    assert_equal_to_ir_measures(qrels, run)


def test_read_graded_qrels_with_header(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n")
    assert read_qrels(path) == {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(KitError, match="bad relevance grade"):
        read_qrels(path)
