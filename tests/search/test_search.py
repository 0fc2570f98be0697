"""Search and evaluation against the real cluster: a small BEIR-format set indexed with BM25 text, tiny-SPLADE
rank_features and a hashing-embedding knn_vector, with hybrid (min-max), RRF, rerank and two-phase pipelines."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import replace

import pytest
from click.testing import CliRunner
from ir_check import assert_report_matches_ir_measures
from matplotlib.image import imread

from opensearch_kit.cli import main
from opensearch_kit.errors import KitError
from opensearch_kit.evaluate import evaluate
from opensearch_kit.export import export_model
from opensearch_kit.index.meta import DenseField, Fields, IndexMeta, SparseField
from opensearch_kit.search import IndexConfig, QueryOptions, Searcher, local_sparse_encoder

INDEX = "test-search-docs"
DIM = 64
PIPELINES = {
    "hybrid": f"{INDEX}-hybrid-minmax",
    "rrf": f"{INDEX}-rrf",
    "rerank": f"{INDEX}-rerank",
    "two_phase": f"{INDEX}-two-phase",
}
PIPELINE_BODIES = {
    "hybrid": {
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.3, 0.3, 0.4]}},
                }
            }
        ]
    },
    "rrf": {"phase_results_processors": [{"score-ranker-processor": {"combination": {"technique": "rrf"}}}]},
    "rerank": {"response_processors": [{"rerank": {"by_field": {"target_field": "quality"}}}]},
    "two_phase": {
        "request_processors": [{"neural_sparse_two_phase_processor": {"two_phase_parameter": {"prune_ratio": 0.4}}}]
    },
}
# (id, title, text, quality): four topics of three documents.
DOCS = [
    (
        "kimchi",
        "Kimchi",
        "Kimchi is fermented napa cabbage with chili, garlic and salt, eaten with every Korean meal.",
        1,
    ),
    ("doenjang", "Doenjang", "Doenjang is a fermented soybean paste aged in clay jars, the base of Korean stews.", 3),
    ("makgeolli", "Makgeolli", "Makgeolli is a milky Korean rice wine fermented with nuruk starter.", 2),
    (
        "black-holes",
        "Black holes",
        "A black hole is a region where gravity is so strong that not even light escapes.",
        2,
    ),
    (
        "neutron-stars",
        "Neutron stars",
        "Neutron stars are the collapsed cores of massive stars, dense and spinning.",
        1,
    ),
    ("exoplanets", "Exoplanets", "Space telescopes find exoplanets by the dimming of their host star.", 3),
    ("splade", "Learned sparse retrieval", "SPLADE learns sparse term weights and expands queries for retrieval.", 1),
    (
        "bm25",
        "BM25",
        "BM25 ranks documents with term frequency and inverse document frequency on an inverted index.",
        2,
    ),
    (
        "dense",
        "Dense retrieval",
        "Dense retrieval embeds queries and documents as vectors for nearest neighbour search.",
        3,
    ),
    ("cats", "Cats", "Cats sleep twelve to sixteen hours a day to save energy for hunting.", 2),
    ("dogs", "Dogs", "Dogs learn commands through reward based training and repetition.", 1),
    ("parrots", "Parrots", "Parrots imitate human speech and live for decades.", 3),
]
BY_ID = {d: (title, text, quality) for d, title, text, quality in DOCS}
QUERIES = {
    "q1": "fermented cabbage kimchi",
    "q2": "black hole gravity light",
    "q3": "learned sparse term weights for retrieval",
    "q4": "why do cats sleep so much",
    "q-unjudged": "parrot speech",
}
QRELS = {
    "q1": {"kimchi": 2, "doenjang": 1, "makgeolli": 1},
    "q2": {"black-holes": 2, "neutron-stars": 1},
    "q3": {"splade": 2, "bm25": 1, "dense": 1},
    "q4": {"cats": 2, "dogs": 0},
}


def hash_embed(text: str) -> list[float]:
    """A deterministic bag-of-words embedding: each word adds +-1 at a hashed position; unit length."""
    vector = [0.0] * DIM
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha1(word.encode()).digest()
        vector[digest[0] % DIM] += 1.0 if digest[1] % 2 else -1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


@pytest.fixture(scope="module")
def sparse_dir(tiny_splade, tmp_path_factory):
    return export_model("sparse", tiny_splade, tmp_path_factory.mktemp("splade"), format="onnx").dir


@pytest.fixture(scope="module")
def beir_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("beir")
    corpus = [{"_id": d, "title": t, "text": x} for d, t, x, _ in DOCS]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n")
    (root / "queries.jsonl").write_text("\n".join(json.dumps({"_id": q, "text": t}) for q, t in QUERIES.items()))
    (root / "qrels").mkdir()
    rows = [f"{q}\t{d}\t{g}" for q, docs in QRELS.items() for d, g in docs.items()]
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def config() -> IndexConfig:
    return IndexConfig(
        text_field="text", title_field="title", sparse_field="sparse", dense_field="dense", pipelines=PIPELINES
    )


@pytest.fixture(scope="module")
def index(client, sparse_dir, config):
    """The index with its _meta, documents and search pipelines; deleted afterwards."""
    encode = local_sparse_encoder(sparse_dir)
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    record = IndexMeta(
        index=INDEX,
        language="en",
        analyzer="standard",
        sparse=SparseField(None, None, "sparse", "rank_features", "WORD", None, "sparse"),
        dense=DenseField(None, None, "dense", DIM, "cosinesimil", "lucene", None, "dense"),
        pipelines=PIPELINES,
        fields=Fields(chunks=None, sparse="sparse", dense="dense"),
    )
    meta = {"opensearch_kit": record.to_dict()}
    client.indices.create(
        index=INDEX,
        body={
            "settings": {"index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0}},
            "mappings": {
                "_meta": meta,
                "properties": {
                    "title": {"type": "text"},
                    "text": {"type": "text"},
                    "quality": {"type": "float"},
                    "sparse": {"type": "rank_features"},
                    "dense": {
                        "type": "knn_vector",
                        "dimension": DIM,
                        "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
                    },
                },
            },
        },
    )
    for role, name in PIPELINES.items():
        client.transport.perform_request("PUT", f"/_search/pipeline/{name}", body=PIPELINE_BODIES[role])
    lines = []
    for doc_id, title, text, quality in DOCS:
        source = {"title": title, "text": text, "quality": quality}
        source |= {"sparse": encode(f"{title} {text}"), "dense": hash_embed(f"{title} {text}")}
        lines += [json.dumps({"index": {"_index": INDEX, "_id": doc_id}}), json.dumps(source)]
    assert not client.bulk(body="\n".join(lines) + "\n", refresh=True)["errors"]
    yield INDEX
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    for name in PIPELINES.values():
        client.transport.perform_request("DELETE", f"/_search/pipeline/{name}")


@pytest.fixture(scope="module")
def searcher(client, index, sparse_dir):
    """Reads the config from the index _meta; encodes queries locally."""
    return Searcher(client, index, sparse_encoder=local_sparse_encoder(sparse_dir), dense_encoder=hash_embed)


@pytest.mark.parametrize("spec", ["bm25", "sparse", "dense", "hybrid", "hybrid+rrf"])
def test_every_mode_finds_the_topical_document(searcher, spec):
    for text, expected in [(QUERIES["q1"], "kimchi"), (QUERIES["q2"], "black-holes"), (QUERIES["q4"], "cats")]:
        result = searcher.search(text, QueryOptions.parse(spec, k=5))
        assert result.hits[0].id == expected, (spec, text, [h.id for h in result.hits])
        assert len(result.hits) <= 5 and result.latency_ms > 0
        title, body, _ = BY_ID[expected]
        assert result.hits[0].source == {"title": title, "text": body}


def test_hybrid_scores_are_min_max_combinations(searcher):
    hits = searcher.search(QUERIES["q1"], QueryOptions(mode="hybrid", k=12)).hits
    assert hits[0].score == pytest.approx(1.0)  # the top document is the best in every signal
    assert all(0 <= h.score <= 1 for h in hits) and len({h.id for h in hits}) == len(hits)
    rrf = searcher.search(QUERIES["q1"], QueryOptions(mode="hybrid", rrf=True, k=12)).hits
    assert rrf[0].score == pytest.approx(3 / 61)  # rank 1 in all three sub-queries, rank_constant 60


def test_hybrid_explain_gives_raw_per_signal_scores(searcher):
    text = QUERIES["q3"]
    single = {
        s: {h.id: h.score for h in searcher.search(text, QueryOptions(mode=s, k=12)).hits}
        for s in ("bm25", "sparse", "dense")
    }
    hits = searcher.search(text, QueryOptions(mode="hybrid", k=12, explain=True)).hits
    assert searcher.search(text, QueryOptions(mode="hybrid", k=3)).hits[0].signals is None
    for hit in hits:
        assert hit.signals.keys() == {"bm25", "sparse", "dense"}
        for signal, score in hit.signals.items():
            assert score == pytest.approx(single[signal].get(hit.id, 0.0), rel=1e-5), (hit.id, signal)
    assert any(hit.signals["bm25"] == 0.0 for hit in hits)  # a document only the neural signals found


def test_weights_are_applied_inline(searcher):
    bm25 = [h.id for h in searcher.search(QUERIES["q3"], QueryOptions(mode="bm25", k=12)).hits]
    for rrf in (False, True):
        only_bm25 = QueryOptions(mode="hybrid", k=12, rrf=rrf, weights=(1.0, 0.0, 0.0))
        hybrid = [h.id for h in searcher.search(QUERIES["q3"], only_bm25).hits]
        assert hybrid[: len(bm25)] == bm25 and len(hybrid) > len(bm25), rrf


def test_misconfigured_hybrid_is_refused_though_the_cluster_would_answer(client, index, searcher, config):
    clauses = searcher.build(QUERIES["q1"], QueryOptions(mode="hybrid")).body["query"]
    silent = client.search(index=index, body={"query": clauses}, params={"search_pipeline": "_none"})
    ids = [h["_id"] for h in silent["hits"]["hits"]]
    assert len(ids) != len(set(ids))  # without a normalization pipeline: uncombined sub-query hits, repeated
    no_pipeline = Searcher(
        client,
        index,
        config=IndexConfig(**{**vars(config), "pipelines": {}}),
        sparse_encoder=searcher.encoders["sparse"],
    )
    with pytest.raises(KitError, match="needs a 'hybrid' search pipeline"):
        no_pipeline.search(QUERIES["q1"], QueryOptions(mode="hybrid", hybrid=("bm25", "sparse")))

    nothing = {
        "hybrid": {"queries": [{"match": {"text": "zzz"}}, {"match": {"text": "yyy"}}, {"match": {"text": "x"}}]}
    }
    two_weights = {"phase_results_processors": [PIPELINE_BODIES["hybrid"]["phase_results_processors"][0]]}
    two_weights = json.loads(json.dumps(two_weights).replace("[0.3, 0.3, 0.4]", "[0.5, 0.5]"))
    answered = client.search(index=index, body={"query": nothing, "search_pipeline": two_weights})
    assert answered["hits"]["hits"] == []  # the server checks weights only once a document matches
    with pytest.raises(KitError, match="has 2 weight.* for 3 hybrid sub-queries"):
        searcher.search("zzz yyy", QueryOptions(mode="hybrid", weights=(0.5, 0.5)))
    with pytest.raises(KitError, match="search pipeline 'test-search-docs-hybrid-minmax' has 3 weight"):
        searcher.search("zzz", QueryOptions(mode="hybrid", hybrid=("bm25", "dense")))


def test_rerank_reorders_the_top_hits_by_the_pipeline(searcher):
    base = searcher.search(QUERIES["q1"], QueryOptions(mode="hybrid", k=3)).hits
    reranked = searcher.search(QUERIES["q1"], QueryOptions.parse("hybrid+rerank", k=3, source=())).hits
    quality = {d: q for d, (_, _, q) in BY_ID.items()}
    assert [h.id for h in reranked] == sorted((h.id for h in base), key=lambda d: -quality[d])
    assert [h.score for h in reranked] == sorted((float(quality[h.id]) for h in base), reverse=True)
    assert all(h.source == {"quality": quality[h.id]} for h in reranked)  # the reranker's field, fetched for it
    # BM25 matches the three fermented foods; all are reranked, the best two by quality are kept
    deeper = searcher.search(QUERIES["q1"], QueryOptions.parse("bm25+rerank", k=2, rerank_depth=12)).hits
    assert [h.id for h in deeper] == ["doenjang", "makgeolli"]


def test_two_phase_keeps_the_top_hits(searcher):
    one = searcher.search(QUERIES["q3"], QueryOptions(mode="sparse", k=3)).hits
    two = searcher.search(QUERIES["q3"], QueryOptions.parse("sparse+two-phase", k=3)).hits
    assert [h.id for h in two] == [h.id for h in one]
    assert [h.score for h in two] == pytest.approx([h.score for h in one], rel=1e-3)


def test_eval_metrics_equal_ir_measures_and_files_are_written(client, index, beir_dir, sparse_dir, tmp_path):
    out, chart = tmp_path / "report.json", tmp_path / "chart.png"
    modes = ["bm25", "sparse", "dense", "hybrid", "hybrid+rerank"]
    report = evaluate(
        client,
        index,
        beir_dir,
        modes=modes,
        k=10,
        sparse_encoder=local_sparse_encoder(sparse_dir),
        dense_encoder=hash_embed,
        out=out,
        chart=chart,
        progress=False,
    ).to_dict()
    assert report["queries"] == 4 and list(report["modes"]) == modes  # the unjudged query is left out
    assert report["query_encoding"] == {"sparse": "local", "dense": "local"}
    assert json.loads(out.read_text()) == report
    for run in report["runs"].values():
        assert run.keys() == QRELS.keys() and all(len(docs) <= 10 for docs in run.values())
    assert_report_matches_ir_measures(report, QRELS)
    assert report["modes"]["bm25"]["metrics"]["MRR@10"] == 1.0  # every query's best document ranks first
    image = imread(chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.shape[0] > 300 and image.shape[1] > 1000


def test_cli_search_and_eval(conn, index, beir_dir, sparse_dir, tmp_path):
    runner = CliRunner()
    encoder = ["--sparse-encoder", str(sparse_dir)]
    args = ["--url", conn.url, "search", index, QUERIES["q1"], "--mode", "hybrid", "--hybrid", "bm25,sparse"]
    result = runner.invoke(main, [*args, "--weights", "0.4,0.6", "--k", "3", "--explain", "--json", *encoder])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["hits"][0]["id"] == "kimchi" and len(record["hits"]) == 3
    assert record["hits"][0]["signals"].keys() == {"bm25", "sparse"}
    table = runner.invoke(main, [*args, "--weights", "0.5,0.5", "--k", "2", *encoder])
    assert table.exit_code == 0 and "kimchi" in table.output and "Kimchi" in table.output
    bad = runner.invoke(main, [*args, *encoder])  # the pipeline's three weights do not fit two sub-queries
    assert isinstance(bad.exception, KitError) and "has 3 weight(s) for 2 hybrid sub-queries" in str(bad.exception)

    out = tmp_path / "cli-report.json"
    ev = ["--url", conn.url, "eval", index, str(beir_dir), "--modes", "bm25,sparse", "--max-queries", "2"]
    result = runner.invoke(main, [*ev, "--out", str(out), "--json", *encoder])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["queries"] == 2 and set(record["modes"]) == {"bm25", "sparse"}
    assert json.loads(out.read_text())["runs"].keys() == {"bm25", "sparse"}


def test_in_cluster_query_model_equals_its_tokens_sent_from_the_client(
    client, ml, tiny_splade, index, beir_dir, config, tmp_path
):
    """neural_sparse with model_id, here an inference-free SPARSE_TOKENIZE model with IDF weights from the corpus,
    scores as the query_tokens that model returns for the query."""
    export = export_model("sparse-tokenizer", tiny_splade, tmp_path, idf=beir_dir, name="test-search-tokenizer")
    model_id = ml.register_zip(export.zip_path, export.register_body, progress=False).model_id
    try:
        ml.deploy(model_id, timeout=300)
        in_cluster = Searcher(client, index, config=replace(config, sparse_model_id=model_id))
        options = QueryOptions(mode="sparse", k=12)
        text = QUERIES["q3"]
        request = in_cluster.build(text, options)
        assert request.body["query"]["neural_sparse"]["sparse"] == {"query_text": text, "model_id": model_id}
        tokens = ml.predict(model_id, {"text_docs": [text]})["inference_results"][0]["output"][0]["dataAsMap"]
        client_side = Searcher(
            client, index, config=config, sparse_encoder=lambda _: tokens["response"][0], encoding="local"
        )
        got, want = in_cluster.search(text, options).hits, client_side.search(text, options).hits
        assert [h.id for h in got] == [h.id for h in want] and got[0].id == "splade"
        assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-6)
    finally:
        ml.delete(model_id)
