"""`tune --grid seismic` on the real cluster: a small SciFact sparse_vector index merged into one segment above its
approximate_threshold (so SEISMIC, not the exact fallback, searches it) gets every setting's recall@10 against
exhaustive SEISMIC, the judged metric and p50; the fastest setting reaching the target is chosen, `--apply`
records it and later searches send it unless a knob is given; indexes SEISMIC does not search are refused."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import scifact_subset

from opensearch_kit.cli import main
from opensearch_kit.errors import KitError
from opensearch_kit.index import FIELDS, IndexMeta, Seismic, create_index
from opensearch_kit.ingest import ingest
from opensearch_kit.search import QueryOptions, Searcher, SeismicQuery

K = 10


def method_parameters(searcher: Searcher, options: QueryOptions) -> dict:
    """The SEISMIC knobs a search with `options` sends."""
    result = searcher.search("cholesterol and heart disease", options)
    return result.request.body["query"]["neural_sparse"][FIELDS.sparse]["method_parameters"]


def test_the_grid_chooses_the_fastest_setting_that_keeps_recall_and_apply_records_it(
    conn, transport, deployed_splade, fresh, tmp_path
):
    model_id, export_dir = deployed_splade
    beir = scifact_subset(tmp_path / "scifact", queries=12, distractors=150)
    index = fresh("seismic-tune")
    seismic = Seismic(approximate_threshold=100)
    create_index(transport, index, model_id, sparse_type="sparse_vector", seismic=seismic, sparse_encoder=export_dir)
    assert ingest(transport, index, beir, mode="client", sparse_encoder=export_dir, progress=False).count_ok
    transport.request("POST", f"/{index}/_forcemerge", params={"max_num_segments": 1})  # one segment >= 100 docs
    transport.request("POST", f"/{index}/_refresh")

    args = ["--url", conn.url, "tune", index, str(beir), "--grid", "seismic", "--k", str(K)]
    args += ["--top-ns", "1,5,20", "--heap-factors", "1,2", "--sparse-encoder", str(export_dir)]
    ran = CliRunner().invoke(main, [*args, "--apply", "--json"])
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.stdout)
    print(CliRunner().invoke(main, args).output)  # the table, for the log
    assert report["segments"] == {"seismic": 1, "total": 1, "approximate_threshold": 100}
    assert report["queries"] == 12 and report["query_encoding"] == "local, once per query"
    rows = report["rows"]
    assert [(r["top_n"], r["heap_factor"]) for r in rows[:-1]] == [(n, h) for n in (1, 5, 20) for h in (1.0, 2.0)]
    assert all(0 <= r["recall@10"] <= 1 and 0 <= r["NDCG@10"] <= 1 and r["p50_ms"] > 0 for r in rows)
    assert all(r["k"] == K for r in rows)
    reference = rows[-1]
    assert reference["setting"] == "exhaustive SEISMIC" and reference["recall@10"] == 1.0
    assert min(r["recall@10"] for r in rows) < 1  # one query token misses documents: SEISMIC did search
    chosen = report["chosen"]
    assert chosen in rows[:-1] and chosen["recall@10"] >= report["recall_target"] == 0.95
    assert chosen["p50_ms"] == min(r["p50_ms"] for r in rows[:-1] if r["recall@10"] >= 0.95)

    tuning = IndexMeta.read(transport, index).seismic_tuning
    assert tuning["setting"] == {"top_n": chosen["top_n"], "heap_factor": chosen["heap_factor"], "k": K}
    assert tuning["recall@10"] == chosen["recall@10"] and tuning["recall_target"] == 0.95
    assert report["applied"] == {"seismic_tuning": tuning}

    # later searches send the recorded knobs; a knob given wins over the recorded one, the others stay recorded
    searcher = Searcher(transport, index, sparse_encoder=export_dir)
    recorded = {"top_n": chosen["top_n"], "heap_factor": chosen["heap_factor"], "k": K}
    assert method_parameters(searcher, QueryOptions(mode="sparse", k=3)) == recorded
    assert method_parameters(searcher, QueryOptions(mode="sparse", k=30)) == {**recorded, "k": 30}
    given = QueryOptions(mode="sparse", k=3, seismic=SeismicQuery(heap_factor=3.0))
    assert method_parameters(searcher, given) == {**recorded, "heap_factor": 3.0}


def test_indexes_seismic_does_not_search_are_refused(conn, transport, deployed_splade, fresh, tmp_path):
    model_id, export_dir = deployed_splade
    beir = scifact_subset(tmp_path / "scifact", queries=2, distractors=0)
    args = [str(beir), "--grid", "seismic", "--sparse-encoder", str(export_dir)]

    exact = fresh("seismic-tune-rank-features")
    create_index(transport, exact, model_id)
    refused = CliRunner().invoke(main, ["--url", conn.url, "tune", exact, *args])
    assert isinstance(refused.exception, KitError), refused.output
    assert "rank_features" in refused.exception.message and "--sparse-type sparse_vector" in refused.exception.fix

    empty = fresh("seismic-tune-small")  # the kit's threshold of 5000 documents; no segment reaches it
    create_index(transport, empty, model_id, sparse_type="sparse_vector", sparse_encoder=export_dir)
    refused = CliRunner().invoke(main, ["--url", conn.url, "tune", empty, *args])
    assert isinstance(refused.exception, KitError) and "_forcemerge" in refused.exception.fix

    mixed = CliRunner().invoke(main, ["--url", conn.url, "tune", empty, *args, "--folds", "3"])
    assert isinstance(mixed.exception, KitError) and "--folds: only for --grid fusion" in str(mixed.exception)
    with pytest.raises(KitError, match="bad SEISMIC query parameters"):
        SeismicQuery(heap_factor=0)
