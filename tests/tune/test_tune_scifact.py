"""`tune` on a SciFact subset with the demo models (BM25 + tiny SPLADE + MiniLM): the client-side fusion equals the
server's hybrid search on sampled queries x settings of every family, the grid's fast scores equal `score_run`, the
choice is cross-validated and guarded (never worse than untuned on held-out queries), `--apply` makes the server
rank with it, and a per-query weights model weighs each hybrid request."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import scifact_subset
from matplotlib.image import imread

from opensearch_kit.beir import read_qrels, read_queries
from opensearch_kit.cli import main
from opensearch_kit.demo import DemoModels, deploy_models
from opensearch_kit.evaluate.metrics import score_run
from opensearch_kit.index import IndexMeta, create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.search import QueryOptions, Searcher
from opensearch_kit.search.perquery import term_idfs
from opensearch_kit.tune import FusionPoint, fetch_hits, frozen_searcher, fused_run, fusion_grid, split_queries, tune
from opensearch_kit.tune.grid import score_matrix
from opensearch_kit.tune.run import apply_fusion, check_against_server, tuning_record
from opensearch_kit.tune.select import hits_features

INDEX = "test-tune-scifact"
K = 50


@pytest.fixture(scope="module")
def scifact_index(transport, tmp_path_factory):
    """A SciFact subset (40 queries, their gold documents and 200 others) indexed with the demo models."""
    root = tmp_path_factory.mktemp("tune")
    beir = scifact_subset(root / "scifact", queries=40, distractors=200)
    deployed = deploy_models(transport, DemoModels(), root / "work", progress=False)
    delete_index(transport, INDEX, missing_ok=True)
    create_index(transport, INDEX, deployed["sparse"].model_id, dense_model=deployed["dense"].model_id)
    try:
        report = ingest(transport, INDEX, beir, mode="pipeline", progress=False)
        assert report.count_ok and report.rejected == 0
        # approximate kNN hits change while segments merge: compare client and server on settled segments
        transport.request("POST", f"/{INDEX}/_forcemerge", params={"max_num_segments": 1})
        transport.request("POST", f"/{INDEX}/_refresh")
        yield beir
    finally:
        delete_index(transport, INDEX, missing_ok=True)
        for record in deployed.values():
            transport.ml.delete(record.model_id)


def test_client_fusion_equals_the_server_for_every_technique(transport, scifact_index):
    texts = read_queries(scifact_index)
    sample = dict(list(texts.items())[:4])
    searcher = frozen_searcher(Searcher(transport, INDEX))
    fetch_hits(searcher, sample, ("bm25", "sparse", "dense"), K, progress=False)  # warms the node up
    grid = fusion_grid(3)
    rng = np.random.default_rng(0)
    by_family: dict[tuple, list[FusionPoint]] = {}
    for point in grid:
        by_family.setdefault(point.family, []).append(point)
    points = [family[int(rng.integers(len(family)))] for family in by_family.values()]  # one of each of 12
    points += [FusionPoint("min_max", "arithmetic_mean"), FusionPoint("z_score", "arithmetic_mean")]  # unweighted
    points += [FusionPoint("rrf", "rrf", rank_constant=60), FusionPoint("l2", "harmonic_mean", (0.0, 0.3, 0.7))]
    check = check_against_server(searcher, sample, ("bm25", "sparse", "dense"), points, K)
    assert check.pairs == len(sample) * len(points) and check.compared_hits > check.pairs * 10
    print("server check:", check.pairs, "pairs,", check.exact_pairs, "bit-identical, max |diff|", check.max_abs_diff)
    assert check.close, check.mismatches[:3]
    assert check.exact_pairs > 0


def test_tune_cross_validates_guards_and_applies_its_choice(transport, scifact_index, tmp_path):
    report = tune(transport, INDEX, scifact_index, k=K, dev_fraction=0.5, seed=1, apply=True, progress=False)
    assert report.signals == ("bm25", "sparse", "dense") and report.grid_size == 7 * 66 + 5 * 66
    assert len(report.dev_queries) == 20 and len(report.test_queries) == 20
    assert not set(report.dev_queries) & set(report.test_queries)
    assert report.check.close and report.check.pairs == 3 * 5
    labels = list(report.results)
    assert labels[0].startswith("untuned: ") and labels[1] == f"fixed: {report.winner.label}"
    assert labels[2].startswith("per-query: ") and labels[3:] == ["bm25", "sparse", "dense"]
    fixed_dev = report.results[labels[1]]["dev"]["NDCG@10"]
    assert fixed_dev == pytest.approx(report.top[0]["NDCG@10"], abs=1e-12)  # fast grid score == score_run
    assert all(fixed_dev >= report.results[label]["dev"]["NDCG@10"] - 1e-12 for label in (labels[0], *labels[3:]))
    print({label: round(r["test"]["NDCG@10"], 4) for label, r in report.results.items()})

    # the evidence: 5 folds, out-of-fold and held-out gains with intervals and p-values, and the guard's verdict
    selection = report.selection
    assert selection["folds"] == 5 and sum(f["queries"] for f in selection["per_fold"]) == 20
    for part in ("cv", "held_out"):
        for e in selection[part].values():
            assert e["ci95"][0] <= e["gain"] <= e["ci95"][1] and 0 < e["p_value"] <= 1
    assert selection["cv"]["fixed"]["baseline"] == pytest.approx(report.results[labels[0]]["dev"]["NDCG@10"])
    cv, significant = selection["cv"], lambda e: e["gain"] > 0 and e["p_value"] < 0.05
    per_query_wins = significant(cv["per_query"]) and significant(selection["cv_per_query_vs_fixed"])
    assert report.chosen == ("per_query" if per_query_wins else "fixed" if significant(cv["fixed"]) else "default")
    chosen = selection["held_out"].get(report.chosen, {"gain": 0.0})
    assert chosen["gain"] >= -0.005, (report.reason, chosen)  # never worse than untuned on unseen queries
    print(report.summary())

    # applied: the chosen fusion is the index's hybrid pipeline, recorded with its evidence, and the server ranks
    meta = IndexMeta.read(transport, INDEX)
    assert meta.pipelines["hybrid"] == f"{INDEX}-hybrid-tuned" and meta.tuning["metric"] == "NDCG@10"
    assert meta.tuning["chosen"] == report.chosen and meta.tuning["selection"]["cv"] == selection["cv"]
    assert FusionPoint.from_pipeline(report.applied["body"]) == report.chosen_point
    qrels = read_qrels(scifact_index / "qrels" / "test.tsv")
    texts = read_queries(scifact_index)
    held = {q: texts[q] for q in report.test_queries}
    searcher = frozen_searcher(Searcher(transport, INDEX))
    hits = fetch_hits(searcher, held, report.signals, K, progress=False)
    if report.chosen != "per_query":
        server = {
            q: {h.id: h.score for h in searcher.search(t, QueryOptions(mode="hybrid", k=K)).hits}
            for q, t in held.items()
        }
        client = {q: fused_run(hits[q], report.chosen_point, K) for q in held}
        served, fused = score_run(qrels, server, held), score_run(qrels, client, held)
        assert served["NDCG@10"] == pytest.approx(fused["NDCG@10"], abs=0.01), (served, fused)
    client = {q: fused_run(hits[q], report.winner, K) for q in held}
    assert score_run(qrels, client, held) == report.results[labels[1]]["test"]
    grid_score = score_matrix([report.winner], hits, qrels, "NDCG@10", K).mean()
    assert grid_score == pytest.approx(report.results[labels[1]]["test"]["NDCG@10"], abs=1e-12)

    # the per-query model, once chosen, weighs each hybrid request: the inline pipeline carries its weights
    record = {**tuning_record(report), "chosen": "per_query", "weight_model": report.weight_model.to_dict()}
    apply_fusion(transport, INDEX, report.winner, record=record)
    plain = Searcher(transport, INDEX)
    server, client = {}, {}
    for q, text in list(held.items())[:6]:
        features = hits_features(hits[q], term_idfs(transport, INDEX, "text", text))
        point = replace(report.winner, weights=report.weight_model.predict(features))
        result = plain.search(text, QueryOptions(mode="hybrid", k=K))
        assert (
            result.request.pipeline is None
            and FusionPoint.from_pipeline(result.request.body["search_pipeline"]) == point
        )
        server[q], client[q] = {h.id: h.score for h in result.hits}, fused_run(hits[q], point, K)
    served, fused = score_run(qrels, server, server), score_run(qrels, client, client)
    assert served["NDCG@10"] == pytest.approx(fused["NDCG@10"], abs=0.02), (served, fused)
    given = plain.search(text, QueryOptions(mode="hybrid", k=5, weights=(0.2, 0.3, 0.5)))  # --weights win
    assert FusionPoint.from_pipeline(given.request.body["search_pipeline"]).weights == (0.2, 0.3, 0.5)


def test_tune_cli_with_a_dev_split_writes_report_and_chart(transport, scifact_index, tmp_path):
    qrels = read_qrels(scifact_index / "qrels" / "test.tsv")
    dev, _ = split_queries(list(qrels), fraction=0.25, seed=3)
    rows = [f"{q}\t{d}\t{g}" for q in dev for d, g in qrels[q].items()]
    (scifact_index / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    out, chart = tmp_path / "tune.json", tmp_path / "tune.png"
    args = ["tune", INDEX, str(scifact_index), "--dev-split", "dev", "--k", "20", "--rank-constants", "5,60"]
    args += ["--hybrid", "bm25,dense", "--metric", "recall@10", "--check-queries", "1"]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--chart", str(chart), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record == json.loads(result.output)
    assert record["metric"] == "Recall@10" and record["signals"] == ["bm25", "dense"]
    assert record["grid_size"] == 7 * 11 + 2 * 11 and sorted(record["dev_queries"]) == sorted(dev)
    assert len(record["test_queries"]) == 40 - len(dev) and record["server_check"]["close"]
    assert imread(chart).shape[0] > 100
    bad = CliRunner().invoke(main, ["tune", INDEX, str(scifact_index), "--metric", "map"])
    assert bad.exit_code != 0 and "cannot tune for 'map'" in str(bad.exception)
