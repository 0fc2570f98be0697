"""Where each mode puts a filter (pure request building), the `--where` shorthand, and typed-field values."""

from __future__ import annotations

import pytest

from opensearch_kit.errors import KitError
from opensearch_kit.index.fields import convert, parse_fields
from opensearch_kit.search import IndexConfig, QueryOptions, build_search
from opensearch_kit.search.filters import parse_filter, where_clause
from opensearch_kit.search.query import SeismicQuery

F = {"term": {"lang": "ko"}}
HYBRID = {"phase_results_processors": [{"normalization-processor": {}}]}
CONFIG = IndexConfig(
    sparse_field="sparse", dense_field="dense", pipelines={"hybrid": "h"}, filter_fields=("lang", "year")
)
TOKENS, VECTOR = {"kimchi": 1.0}, [0.1, 0.2]


def body(options: QueryOptions, config: IndexConfig = CONFIG, **kw) -> dict:
    kw = {"sparse_tokens": TOKENS, "dense_vector": VECTOR, "pipelines": {"h": HYBRID}, **kw}
    return build_search("kimchi", options, config, **kw).body


def test_where_shorthand():
    assert where_clause("lang=ko", ("lang",)) == F
    assert where_clause("year >= 2020", ("year",)) == {"range": {"year": {"gte": "2020"}}}
    assert where_clause("year<2020", ("year",)) == {"range": {"year": {"lt": "2020"}}}
    assert where_clause("tag in a, b", ()) == {"terms": {"metadata.tag": ["a", "b"]}}
    assert where_clause("lang!=ko", ("lang",)) == {"bool": {"must_not": [F]}}
    assert where_clause("metadata.src=x", ()) == {"term": {"metadata.src": "x"}}
    for bad in ("lang", "lang=", "year~2", "tag in ,"):
        with pytest.raises(KitError):
            where_clause(bad)
    assert parse_filter('{"term": {"lang": "ko"}}') == F
    for bad in ("{", "[]", '{"a": 1, "b": 2}'):
        with pytest.raises(KitError):
            parse_filter(bad)


def test_each_mode_filters_in_the_engine():
    only = (F,)
    assert body(QueryOptions(mode="bm25", filter=only))["query"]["bool"]["filter"] == [F]
    sparse = body(QueryOptions(mode="sparse", filter=only))["query"]["bool"]
    assert sparse["filter"] == [F] and "neural_sparse" in sparse["must"][0]
    knn = body(QueryOptions(mode="dense", k=7, filter=only))["query"]["knn"]["dense"]
    assert knn["filter"] == F and knn["k"] == 7
    seismic = IndexConfig(sparse_field="sparse", sparse_type="sparse_vector")
    ids = {"sparse_tokens": {"2001": 1.0}}  # a sparse_vector field takes token ids
    query = body(QueryOptions(mode="sparse", k=5, filter=only), seismic, **ids)["query"]["neural_sparse"]["sparse"]
    assert query["method_parameters"] == {**SeismicQuery().method_parameters(5), "filter": F}
    page = body(QueryOptions(mode="sparse", k=5, offset=10), seismic, **ids)["query"]["neural_sparse"]["sparse"]
    assert page["method_parameters"] == SeismicQuery().method_parameters(15)
    two = ("lang=ko", "year>=2020")
    both = body(QueryOptions(mode="bm25", filter=two))["query"]["bool"]["filter"]
    assert both == [{"bool": {"filter": [F, {"range": {"year": {"gte": "2020"}}}]}}]


def test_hybrid_filters_once_or_per_sub_query():
    native = body(QueryOptions(mode="hybrid", filter=(F,)))["query"]["hybrid"]
    assert native["filter"] == F
    bm25, sparse, dense = native["queries"]
    assert "match" in bm25 and "neural_sparse" in sparse and dense["knn"]["dense"]["filter"] == F
    each = body(QueryOptions(mode="hybrid", filter=(F,)), hybrid_filter=False)["query"]["hybrid"]
    assert "filter" not in each
    assert [q["bool"]["filter"] for q in each["queries"][:2]] == [[F], [F]]
    assert each["queries"][2]["knn"]["dense"]["filter"] == F


def test_chunked_indexes_filter_the_parent_document():
    chunked = IndexConfig(
        sparse_field="s.sparse_encoding", dense_field="d.knn", sparse_nested="s", dense_nested="d", chunks_field="c"
    )
    sparse = body(QueryOptions(mode="sparse", filter=(F,)), chunked)["query"]["bool"]
    assert sparse["filter"] == [F] and sparse["must"][0]["nested"]["path"] == "s"
    dense = body(QueryOptions(mode="dense", filter=(F,)), chunked)["query"]["bool"]
    assert dense["filter"] == [F] and dense["must"][0]["nested"]["query"]["knn"]["d.knn"]["filter"] == F


def test_pages_and_highlights():
    page = body(QueryOptions(mode="hybrid", k=10, offset=20, highlight=True))
    assert page["from"] == 20 and page["size"] == 10 and page["query"]["hybrid"]["pagination_depth"] == 30
    assert page["highlight"]["highlight_query"] == {"match": {"text": "kimchi"}}
    assert body(QueryOptions(mode="dense", k=10, offset=20))["query"]["knn"]["dense"]["k"] == 30
    with pytest.raises(KitError, match="rerank each page"):
        body(QueryOptions(mode="bm25", offset=10, rerank=True))


def test_typed_values():
    assert parse_fields(["year:integer", "lang:KEYWORD"]) == {"year": "integer", "lang": "keyword"}
    assert convert("2020", "integer") == 2020 and convert(2020.0, "long") == 2020
    assert convert(["a", 1], "keyword") == ["a", "1"] and convert("true", "boolean") is True
    assert convert("2024-05-31T12:00:00Z", "date") == "2024-05-31T12:00:00Z" and convert("2024", "date") == "2024"
    for value, kind in (("x", "integer"), (2**31, "integer"), (True, "integer"), ("nan", "float"),
                        ("2024-02-30", "date"), ("yes", "boolean"), ({"a": 1}, "keyword")):  # fmt: skip
        with pytest.raises(ValueError):
            convert(value, kind)
    for bad in (["year"], ["year:int"], ["text:keyword"], ["a b:keyword"], ["y:long", "y:long"]):
        with pytest.raises(KitError):
            parse_fields(bad)
