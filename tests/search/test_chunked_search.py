"""Chunked indexes end to end: sparse, dense and hybrid queries target the nested chunk vectors (a document scores
as its best chunk) and each hit carries that chunk (text and score), in the typed hits, the table and --json;
hybrid+rerank too."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import write_jsonl

from opensearch_kit.cli import main
from opensearch_kit.index import Chunking, create_index
from opensearch_kit.ingest import ingest
from opensearch_kit.search import QueryOptions, Searcher

DOCS = [
    {"_id": "a", "title": "Sparse", "text": "weather report today. neural sparse search expands documents into terms"},
    {"_id": "b", "title": "Dense", "text": "cooking pasta tonight. dense vectors capture meaning with neighbours"},
    {"_id": "c", "title": "Lexical", "text": "the garden is green. BM25 ranks documents by inverse frequency"},
]


@pytest.fixture(scope="module")
def chunked(client, transport, deployed_splade, deployed_minilm, deployed_cross_encoder, tmp_path_factory):
    from opensearch_kit.index import delete_index

    index = "test-index-chunked-search"
    delete_index(transport, index, missing_ok=True)
    create_index(
        transport,
        index,
        deployed_splade[0],
        dense_model=deployed_minilm[0],
        reranker_model=deployed_cross_encoder[0],
        chunking=Chunking(6, 0.0),
    )
    source = write_jsonl(tmp_path_factory.mktemp("chunked") / "docs.jsonl", DOCS)
    assert ingest(transport, index, source, progress=False).indexed == 3
    yield index
    delete_index(transport, index, missing_ok=True)


@pytest.mark.parametrize("spec", ["sparse", "dense", "hybrid", "hybrid+rerank"])
def test_chunked_searches_return_hits_with_their_best_chunk(transport, chunked, spec):
    result = Searcher(transport, chunked).search("inverse frequency ranks documents", QueryOptions.parse(spec, k=3))
    assert result.hits, spec
    assert all(h.chunk is not None and h.chunk.text for h in result.hits), spec
    if spec != "hybrid+rerank":
        top = result.hits[0]
        assert top.id == "c" and "frequency" in top.chunk.text and "garden" not in top.chunk.text
    assert "text_chunks" not in result.hits[0].source
    assert "best " in result.summary() and "chunk #" in result.summary()


def test_cli_json_carries_the_best_chunk(conn, chunked):
    out = CliRunner().invoke(
        main, ["--url", conn.url, "search", chunked, "neural sparse terms", "--mode", "sparse", "--json"]
    )
    assert out.exit_code == 0, out.output
    top = json.loads(out.output)["hits"][0]
    assert top["id"] == "a" and top["chunk"]["signal"] == "sparse" and "sparse" in top["chunk"]["text"]
