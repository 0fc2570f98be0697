"""The query builder: request bodies per mode, pipeline choice, and the misconfigurations caught before sending."""

from __future__ import annotations

import pytest

from opensearch_kit.errors import KitError
from opensearch_kit.index import IndexMeta
from opensearch_kit.search.query import IndexConfig, QueryOptions, build_search, required_pipelines

PIPELINES = {"hybrid": "ix-hybrid", "rrf": "ix-rrf", "rerank": "ix-rerank", "two_phase": "ix-two-phase"}
CONFIG = IndexConfig(
    text_field="text",
    title_field="title",
    sparse_field="sparse",
    dense_field="dense",
    sparse_model_id="sparse-model",
    dense_model_id="dense-model",
    pipelines=PIPELINES,
)
MINMAX = {
    "phase_results_processors": [
        {
            "normalization-processor": {
                "normalization": {"technique": "min_max"},
                "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.2, 0.3, 0.5]}},
            }
        }
    ],
    "response_processors": [{"hybrid_score_explanation": {}}],
}
RRF = {
    "phase_results_processors": [{"score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": 60}}}]
}
RERANK = {
    "response_processors": [{"rerank": {"ml_opensearch": {"model_id": "ce"}, "context": {"document_fields": ["text"]}}}]
}
TWO_PHASE = {
    "request_processors": [{"neural_sparse_two_phase_processor": {"two_phase_parameter": {"prune_ratio": 0.4}}}]
}
DEFINITIONS = {"ix-hybrid": MINMAX, "ix-rrf": RRF, "ix-rerank": RERANK, "ix-two-phase": TWO_PHASE}


def build(text="what is sparse retrieval", config=CONFIG, definitions=DEFINITIONS, **kwargs):
    spec = kwargs.pop("spec", None)
    options = QueryOptions.parse(spec, **kwargs) if spec else QueryOptions(**kwargs)
    return build_search(text, options, config, pipelines=definitions)


def test_bm25_match_or_multi_match_with_title_boost():
    request = build(mode="bm25", k=7)
    assert request.body["query"] == {
        "multi_match": {
            "query": "what is sparse retrieval",
            "fields": ["title^2", "text"],
            "type": "best_fields",
            "tie_breaker": 0.5,
        }
    }
    assert request.body["size"] == 7 and request.body["_source"] == {"includes": ["title", "text"]}
    assert request.pipeline == "_none"  # an index default pipeline must not rewrite a plain query
    plain = build(config=IndexConfig(text_field="body"), mode="bm25", source=())
    assert plain.body["query"] == {"match": {"body": {"query": "what is sparse retrieval"}}}
    assert plain.body["_source"] is False


def test_sparse_with_client_tokens_or_in_cluster_model():
    options = QueryOptions(mode="sparse")
    local = build_search("q", options, CONFIG, sparse_tokens={"sparse": 1.5, "search": 0.25})
    assert local.body["query"] == {"neural_sparse": {"sparse": {"query_tokens": {"sparse": 1.5, "search": 0.25}}}}
    remote = build_search("q", options, CONFIG)
    assert remote.body["query"] == {"neural_sparse": {"sparse": {"query_text": "q", "model_id": "sparse-model"}}}
    # neural_sparse refuses weight 0 (an IDF of 0): such tokens are left out, and nothing left is an error
    zero = build_search("q", options, CONFIG, sparse_tokens={"sparse": 1.5, "the": 0.0})
    assert zero.body["query"] == {"neural_sparse": {"sparse": {"query_tokens": {"sparse": 1.5}}}}
    with pytest.raises(KitError, match="no tokens"):
        build_search("q", options, CONFIG, sparse_tokens={"the": 0.0})


def test_dense_with_client_vector_or_in_cluster_model():
    options = QueryOptions(mode="dense", k=5)
    assert build_search("q", options, CONFIG, dense_vector=[0.5, -1]).body["query"] == {
        "knn": {"dense": {"vector": [0.5, -1.0], "k": 5}}
    }
    assert build_search("q", options, CONFIG).body["query"] == {
        "neural": {"dense": {"query_text": "q", "model_id": "dense-model", "k": 5}}
    }


@pytest.mark.parametrize(
    ("config", "options", "message"),
    [
        (IndexConfig(), QueryOptions(mode="sparse"), "no sparse field"),
        (IndexConfig(sparse_field="sp"), QueryOptions(mode="sparse"), "no sparse_model_id"),
        (IndexConfig(), QueryOptions(mode="dense"), "no dense vector field"),
        (IndexConfig(dense_field="v"), QueryOptions(mode="dense"), "no dense_model_id"),
        (IndexConfig(pipelines=PIPELINES), QueryOptions(mode="hybrid"), "needs 2 to 5 sub-queries"),
        (CONFIG, QueryOptions(mode="bm25", weights=(0.5, 0.5)), "hybrid mode only"),
        (CONFIG, QueryOptions(mode="hybrid", hybrid=("bm25", "bm25")), "bad hybrid sub-queries"),
        (CONFIG, QueryOptions(mode="bm25", k=0), "k must be at least 1"),
    ],
)
def test_mode_without_field_or_model_is_refused(config, options, message):
    with pytest.raises(KitError, match=message):
        build_search("q", options, config, pipelines=DEFINITIONS)


def test_hybrid_uses_every_signal_and_the_named_pipeline():
    request = build(mode="hybrid", k=10)
    queries = request.body["query"]["hybrid"]["queries"]
    assert [next(iter(q)) for q in queries] == ["multi_match", "neural_sparse", "neural"]
    assert request.signals == ("bm25", "sparse", "dense")
    assert request.pipeline == "ix-hybrid" and "search_pipeline" not in request.body
    assert request.params == {"search_pipeline": "ix-hybrid"}
    assert build(spec="hybrid+rrf", hybrid=("bm25", "dense")).pipeline == "ix-rrf"


def test_hybrid_without_pipeline_is_refused_before_sending():
    no_pipelines = IndexConfig(text_field="text", sparse_field="sp", sparse_model_id="m")
    with pytest.raises(KitError, match="needs a 'hybrid' search pipeline") as err:
        build(config=no_pipelines, mode="hybrid")
    assert "normalization-processor" in err.value.fix
    with pytest.raises(KitError, match="'ix-hybrid' .* does not exist on the cluster"):
        build(definitions={}, mode="hybrid")
    with pytest.raises(KitError, match="has no normalization-processor or score-ranker-processor"):
        build(definitions={"ix-hybrid": RERANK}, mode="hybrid")


def test_weights_must_match_sub_queries_and_sum_to_one():
    with pytest.raises(KitError, match="--weights has 2 weight.* for 3 hybrid sub-queries") as err:
        build(mode="hybrid", weights=(0.3, 0.7))
    assert "--weights 0.333,0.333,0.333" in err.value.fix
    with pytest.raises(KitError, match=r"search pipeline 'ix-hybrid' has 3 weight\(s\) for 2 hybrid sub-queries"):
        build(mode="hybrid", hybrid=("bm25", "sparse"))
    with pytest.raises(KitError, match="sum of 1.0"):
        build(mode="hybrid", hybrid=("bm25", "sparse"), weights=(0.3, 0.3))
    with pytest.raises(KitError, match=r"in \[0, 1\]"):
        build(mode="hybrid", hybrid=("bm25", "sparse"), weights=(1.5, -0.5))


def test_weights_override_goes_inline_with_the_pipeline_technique():
    request = build(mode="hybrid", hybrid=("bm25", "dense"), weights=(0.3, 0.7))
    assert request.pipeline is None and request.params == {}
    processor = request.body["search_pipeline"]["phase_results_processors"][0]["normalization-processor"]
    assert processor["normalization"] == {"technique": "min_max"}
    assert processor["combination"]["parameters"]["weights"] == [0.3, 0.7]
    assert MINMAX["phase_results_processors"][0]["normalization-processor"]["combination"]["parameters"]["weights"] == [
        0.2,
        0.3,
        0.5,
    ]  # the fetched definition is left as it was
    rrf = build(spec="hybrid+rrf", weights=(0.2, 0.3, 0.5)).body["search_pipeline"]["phase_results_processors"][0]
    assert rrf["score-ranker-processor"]["combination"] == {
        "technique": "rrf",
        "rank_constant": 60,
        "parameters": {"weights": [0.2, 0.3, 0.5]},
    }


def test_rerank_needs_its_pipeline_and_sends_the_query_context():
    with pytest.raises(KitError, match="needs a 'rerank' search pipeline") as err:
        build(config=IndexConfig(reranker_model_id="ce-1", pipelines={"hybrid": "ix-hybrid"}), spec="bm25+rerank")
    assert "silently ignored" in err.value.fix and "rerank model ce-1" in err.value.fix
    request = build(spec="bm25+rerank", k=10, rerank_depth=50)
    assert request.pipeline == "ix-rerank" and request.k == 10 and request.body["size"] == 50
    assert request.body["ext"] == {"rerank": {"query_context": {"query_text": "what is sparse retrieval"}}}
    assert request.body["_source"] == {"includes": ["title", "text"]}
    by_field = {"response_processors": [{"rerank": {"by_field": {"target_field": "quality"}}}]}
    request = build(definitions={"ix-rerank": by_field}, spec="bm25+rerank", source=())
    assert request.body["_source"] == {"includes": ["quality"]}  # the reranker reads it from _source


def test_hybrid_with_rerank_composes_one_inline_pipeline():
    request = build(spec="hybrid+rerank", k=5, rerank_depth=20)
    pipeline = request.body["search_pipeline"]
    assert request.pipeline is None
    assert [next(iter(p)) for p in pipeline["phase_results_processors"]] == ["normalization-processor"]
    assert [next(iter(p)) for p in pipeline["response_processors"]] == ["hybrid_score_explanation", "rerank"]
    assert request.body["query"]["hybrid"]["queries"][2]["neural"]["dense"]["k"] == 20


def test_explain_drops_the_explanation_processor_to_keep_raw_sub_query_scores():
    request = build(mode="hybrid", explain=True)
    assert request.body["explain"] is True
    assert "response_processors" not in request.body["search_pipeline"]


def test_two_phase_only_for_sparse():
    assert build(spec="sparse+two-phase").pipeline == "ix-two-phase"
    with pytest.raises(KitError, match="two-phase applies to sparse mode only"):
        build(spec="hybrid+two-phase")


def test_pagination_depth_sets_sub_query_depth():
    request = build(mode="hybrid", k=10, pagination_depth=40)
    assert request.body["query"]["hybrid"]["pagination_depth"] == 40
    assert request.body["query"]["hybrid"]["queries"][2]["neural"]["dense"]["k"] == 40


def test_mode_specs_parse_and_label():
    options = QueryOptions.parse("Hybrid+RRF+rerank", k=3)
    assert (options.mode, options.rrf, options.rerank, options.k) == ("hybrid", True, True, 3)
    assert options.label == "hybrid+rrf+rerank"
    for bad in ("colbert", "hybrid+fast"):
        with pytest.raises(KitError, match="unknown mode"):
            QueryOptions.parse(bad)


def test_index_config_from_meta():
    """A round-1 record (schema 1: "rerank", flat query keys) is read by the typed IndexMeta."""
    record = {
        "schema": 1,
        "created_by": "opensearch-kit 0.1.0",
        "index": "docs",
        "language": "en",
        "analyzer": "standard",
        "text_field": "text",
        "sparse_field": "sparse_embedding",
        "sparse_model_id": "abc",
        "pipelines": {"hybrid": "docs-hybrid-minmax", "rrf": "docs-rrf", "rerank": None},
        "fields": {
            "id": "doc_id", "title": "title", "text": "text", "chunks": None, "metadata": "metadata",
            "line": "source_line", "sparse": "sparse_embedding", "dense": None,
        },
        "sparse": {
            "model_id": "abc", "model_name": "splade", "field": "sparse_embedding", "nested_path": None,
            "query_field": "sparse_embedding", "type": "rank_features", "format": "WORD", "prune": None,
        },
        "dense": None,
        "rerank": None,
        "chunking": None,
        "weights": None,
    }  # fmt: skip
    config = IndexConfig.from_meta(IndexMeta.from_dict(record))
    assert config == IndexConfig(
        text_field="text",
        title_field="title",
        sparse_field="sparse_embedding",
        sparse_model_id="abc",
        pipelines={"hybrid": "docs-hybrid-minmax", "rrf": "docs-rrf"},
        filter_fields=("doc_id", "title", "text"),
    )
    assert required_pipelines(QueryOptions(mode="hybrid", rrf=True), config) == ["docs-rrf"]
    assert IndexMeta.from_dict(IndexMeta.from_dict(record).to_dict()) == IndexMeta.from_dict(record)
    with pytest.raises(KitError, match="incomplete or of an unknown schema"):
        IndexMeta.from_dict({"other": {}})
