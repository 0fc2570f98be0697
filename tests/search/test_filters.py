"""Filters on the live cluster: a SciFact subset with planted typed `lang` / `year` / `tag` / `published` fields.
Under a filter that at most 1 % of the documents pass, every mode returns only passing documents and as many as
pass (up to k) -- the engine filters, a post-filter of the top k would return almost nothing; bm25 and sparse equal
the exact filtered ranking, dense recalls the exact filtered kNN ranking; eval and tune filter every query."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import scifact_subset

from opensearch_kit.cli import main
from opensearch_kit.evaluate import evaluate
from opensearch_kit.index import Chunking, create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.search import QueryOptions, Searcher
from opensearch_kit.tune import tune
from opensearch_kit.verify.cluster import cluster_embeddings

FIELDS = {"lang": "keyword", "year": "integer", "tag": "keyword", "published": "date"}
RARE = {"term": {"lang": "ko"}}  # 1 document in 100
COMMON = "year>=2017"  # 8 documents in 25
MODES = ["bm25", "sparse", "sparse+two-phase", "dense", "hybrid", "hybrid+rrf", "hybrid+rerank"]


def planted(root, every: int = 100, chars: int = 600) -> list[dict]:
    """Give each document of the corpus its fields by position, its text cut to `chars` (cheaper to encode); the
    documents as written."""
    path = root / "corpus.jsonl"
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    for i, doc in enumerate(docs):
        doc["text"] = doc["text"][:chars]
        year = 2000 + i % 25
        doc |= {"lang": "ko" if i % every == 37 % every else "en", "year": year, "tag": "abc"[i % 3]}
        doc["published"] = f"{year}-0{1 + i % 9}-15"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return docs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = scifact_subset(tmp_path_factory.mktemp("scifact-filters"), queries=6, distractors=200)
    return root, planted(root)


def make_index(transport, name, models, source, **options) -> str:
    delete_index(transport, name, missing_ok=True)
    sparse, dense, reranker = models
    create_index(transport, name, sparse, dense_model=dense, reranker_model=reranker, fields=FIELDS, **options)
    report = ingest(transport, name, source, progress=False)
    assert report.rejected == 0
    return name


@pytest.fixture(scope="module")
def index(transport, corpus, deployed_splade, deployed_minilm, deployed_cross_encoder):
    models = (deployed_splade[0], deployed_minilm[0], deployed_cross_encoder[0])
    yield make_index(transport, "test-index-filters", models, corpus[0])
    delete_index(transport, "test-index-filters", missing_ok=True)


def passing(docs, clause) -> set[str]:
    field, value = next(iter(next(iter(clause.values())).items()))
    return {d["_id"] for d in docs if d[field] == value}


def exact(searcher, text, mode, allowed, k) -> list[str]:
    """The top k passing documents by the unfiltered query's own scores over the whole index."""
    every = searcher.search(text, QueryOptions(mode=mode, k=1000, source=())).hits
    return [h.id for h in every if h.id in allowed][:k]


def exact_dense(transport, index, model_id, text, clause, k) -> list[str]:
    """Exact cosine kNN over the passing documents (k-NN's exact scoring script)."""
    vector = cluster_embeddings(transport.ml, model_id, [text])[0]
    script = {
        "source": "knn_score",
        "lang": "knn",
        "params": {"field": "dense_embedding", "query_value": vector, "space_type": "cosinesimil"},
    }
    body = {"size": k, "_source": False, "query": {"script_score": {"query": clause, "script": script}}}
    return [h["_id"] for h in transport.request("POST", f"/{index}/_search", body)["hits"]["hits"]]


@pytest.mark.parametrize("spec", MODES)
def test_a_rare_filter_returns_every_passing_document_in_every_mode(transport, index, corpus, spec):
    root, docs = corpus
    allowed = passing(docs, RARE)
    assert 1 <= len(allowed) <= len(docs) // 100
    searcher = Searcher(transport, index)
    queries = [json.loads(x)["text"] for x in (root / "queries.jsonl").read_text().splitlines()][:3]
    for text in queries:
        hits = searcher.search(text, QueryOptions.parse(spec, k=10, filter=(RARE,))).hits
        assert {h.id for h in hits} <= allowed, spec
        if spec in ("bm25", "sparse", "sparse+two-phase"):
            assert [h.id for h in hits] == exact(searcher, text, spec.split("+")[0], allowed, 10)
        else:
            assert len(hits) == min(10, len(allowed)), (spec, text)


@pytest.mark.parametrize("mode", ["bm25", "sparse", "dense"])
def test_a_common_filter_equals_the_exact_filtered_ranking(transport, index, corpus, deployed_minilm, mode):
    root, docs = corpus
    allowed = {d["_id"] for d in docs if d["year"] >= 2017}
    searcher = Searcher(transport, index)
    recalls = []
    for line in (root / "queries.jsonl").read_text().splitlines():
        text = json.loads(line)["text"]
        got = [h.id for h in searcher.search(text, QueryOptions(mode=mode, k=10, filter=(COMMON,))).hits]
        assert set(got) <= allowed
        if mode == "dense":
            assert len(got) == 10
            clause = {"range": {"year": {"gte": 2017}}}
            want = exact_dense(transport, index, deployed_minilm[0], text, clause, 10)
            recalls.append(len(set(got) & set(want)) / 10)
        else:
            assert got == exact(searcher, text, mode, allowed, 10), text
    assert not recalls or sum(recalls) / len(recalls) >= 0.95, recalls


def test_hybrid_filters_each_sub_query_on_servers_without_a_hybrid_filter(transport, index, corpus):
    root, docs = corpus
    allowed = passing(docs, RARE)
    searcher = Searcher(transport, index, hybrid_filter=False)  # as on neural-search 2.x
    text = json.loads((root / "queries.jsonl").read_text().splitlines()[0])["text"]
    request = searcher.build(text, QueryOptions(mode="hybrid", filter=(RARE,)))
    assert "filter" not in request.body["query"]["hybrid"]
    old = searcher.search(text, QueryOptions(mode="hybrid", k=10, filter=(RARE,))).hits
    new = Searcher(transport, index).search(text, QueryOptions(mode="hybrid", k=10, filter=(RARE,))).hits
    assert {h.id for h in old} == {h.id for h in new} == allowed


def test_pages_highlights_source_fields_and_totals(transport, index, corpus):
    root, _ = corpus
    searcher = Searcher(transport, index)
    text = json.loads((root / "queries.jsonl").read_text().splitlines()[0])["text"]
    for spec in ("bm25", "dense", "hybrid"):
        first = searcher.search(text, QueryOptions.parse(spec, k=10, filter=(COMMON,)))
        page = searcher.search(text, QueryOptions.parse(spec, k=5, offset=5, filter=(COMMON,)))
        assert [h.id for h in page.hits] == [h.id for h in first.hits[5:]], spec
        assert first.total >= len(first.hits) > 5 and page.total == first.total, spec
    result = searcher.search(text, QueryOptions(mode="bm25", k=3, highlight=True, source=("year", "lang")))
    assert all(h.source.keys() == {"year", "lang"} for h in result.hits)
    assert all("<em>" in h.highlight for h in result.hits)
    assert result.to_dict()["total"] == result.total and "hit(s)" in result.summary()


def test_chunked_index_filters_the_parent_document(transport, tmp_path, corpus, deployed_splade, deployed_minilm):
    root, docs = corpus
    small = tmp_path / "small"
    small.mkdir()
    short = [{**d, "text": d["text"][:300]} for d in docs[:100]]
    (small / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in short))
    allowed = {d["_id"] for d in docs[:100] if d["lang"] == "ko"}
    models = (deployed_splade[0], deployed_minilm[0], None)
    name = make_index(transport, "test-index-filters-chunked", models, small, chunking=Chunking(32, 0.0))
    try:
        searcher = Searcher(transport, name)
        text = next(d["title"] or d["text"][:80] for d in docs[:100] if d["_id"] in allowed)
        for spec in ("bm25", "sparse", "dense", "hybrid"):
            hits = searcher.search(text, QueryOptions.parse(spec, k=10, filter=("lang=ko",))).hits
            assert {h.id for h in hits} == allowed, spec
    finally:
        delete_index(transport, name, missing_ok=True)


def test_eval_and_tune_filter_every_query(conn, transport, index, corpus, tmp_path):
    root, docs = corpus
    allowed = {d["_id"] for d in docs if d["tag"] == "a"}
    report = evaluate(transport, index, root, modes=["bm25", "dense"], k=10, filter=["tag=a"], progress=False)
    for mode, run in report.runs.items():
        assert all(set(hits) <= allowed for hits in run.values()) and run, mode
    assert all(len(hits) == 10 for hits in report.runs["dense"].values())
    tuned = tune(transport, index, root, k=10, filter=["tag=a"], folds=3, check_queries=1, progress=False)
    assert tuned.check.pairs and tuned.check.close and tuned.to_dict()["filter"] == ["tag=a"]
    out = tmp_path / "eval.json"
    args = ["--url", conn.url, "eval", index, str(root), "--modes", "bm25", "--k", "5", "--where", "tag=a"]
    result = CliRunner().invoke(main, [*args, "--filter", '{"range": {"year": {"lt": 2010}}}', "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["filter"] == ["tag=a", {"range": {"year": {"lt": 2010}}}]
    early = {d["_id"] for d in docs if d["tag"] == "a" and d["year"] < 2010}
    assert all(set(hits) <= early for hits in record["runs"]["bm25"].values())
