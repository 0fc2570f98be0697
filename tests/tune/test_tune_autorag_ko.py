"""`tune` on an AutoRAGRetrieval-ko split with nori BM25 and the English demo models (tiny SPLADE, MiniLM), where the
untuned hybrid is far below BM25: the cross-validated, guarded choice is never worse than the untuned hybrid on the
held-out queries, and `eval` searches with what `--apply` chose."""

from __future__ import annotations

import pytest
from helpers import AUTORAG_KO, scifact_subset

from opensearch_kit.evaluate import evaluate
from opensearch_kit.index import IndexMeta, create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.tune import tune

INDEX = "test-tune-autorag-ko"
K = 50
ROW = {"default": "untuned: ", "fixed": "fixed: ", "per_query": "per-query: "}  # the results row of each choice


@pytest.fixture(scope="module")
def autorag_index(transport, deployed_splade, deployed_minilm, tmp_path_factory):
    """60 AutoRAG-ko queries, their gold pages and 60 other pages, indexed with nori, tiny SPLADE and MiniLM."""
    beir = scifact_subset(tmp_path_factory.mktemp("tune-ko") / "autorag", 60, 60, source=AUTORAG_KO)
    delete_index(transport, INDEX, missing_ok=True)
    create_index(transport, INDEX, deployed_splade[0], dense_model=deployed_minilm[0], language="ko")
    try:
        report = ingest(transport, INDEX, beir, mode="pipeline", progress=False)
        assert report.count_ok and report.rejected == 0
        yield beir
    finally:
        delete_index(transport, INDEX, missing_ok=True)


def test_the_tuned_choice_holds_on_held_out_korean_queries_and_eval_uses_it(transport, autorag_index):
    report = tune(transport, INDEX, autorag_index, k=K, seed=0, apply=True, progress=False)
    print(report.summary())
    assert len(report.dev_queries) == 30 and len(report.test_queries) == 30
    selection = report.selection
    assert selection["folds"] == 5 and len(selection["per_fold"]) == 5 and selection["alpha"] == 0.05
    assert all("p_value" in e and len(e["ci95"]) == 2 for e in selection["held_out"].values())
    row = next(label for label in report.results if label.startswith(ROW[report.chosen]))
    untuned = next(iter(report.results.values()))
    tuned_held, untuned_held = report.results[row]["test"]["NDCG@10"], untuned["test"]["NDCG@10"]
    assert tuned_held >= untuned_held - 0.005, (report.reason, tuned_held, untuned_held)
    assert IndexMeta.read(transport, INDEX).tuning["chosen"] == report.chosen

    # eval on the held-out queries searches with the applied choice and scores what tune reported for it
    qrels = (autorag_index / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    held = set(report.test_queries)
    rows = [line for line in qrels[1:] if line.split("\t")[0] in held]
    (autorag_index / "qrels" / "heldout.tsv").write_text("\n".join([qrels[0], *rows]) + "\n", encoding="utf-8")
    result = evaluate(transport, INDEX, autorag_index, modes=("hybrid",), split="heldout", k=K, progress=False)
    assert result.queries == 30
    assert result.modes["hybrid"]["metrics"]["NDCG@10"] == pytest.approx(tuned_held, abs=0.01)
