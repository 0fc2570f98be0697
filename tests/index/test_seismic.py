"""SEISMIC (sparse_vector) on the real cluster: index parameters reach the mapping, query method_parameters reach
the query, ingest warms the index up, and the kit's defaults are the ones the README states."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_jsonl

from opensearch_kit.cli import main
from opensearch_kit.errors import KitError
from opensearch_kit.index import FIELDS, Seismic, create_index
from opensearch_kit.index.options import HEAP_FACTOR, TOP_N
from opensearch_kit.ingest import ingest
from opensearch_kit.search import QueryOptions, Searcher, SeismicQuery, local_sparse_encoder

README = Path(__file__).resolve().parents[2] / "README.md"
DOCS = [
    {"_id": "a", "title": "Sparse retrieval", "text": "neural sparse search expands documents into weighted terms"},
    {"_id": "b", "title": "Dense retrieval", "text": "dense vectors capture meaning with nearest neighbours"},
    {"_id": "c", "title": "Lexical search", "text": "BM25 ranks documents by term frequency"},
]


def sparse_mapping(client, index: str) -> dict:
    return client.indices.get_mapping(index=index)[index]["mappings"]["properties"][FIELDS.sparse]


def test_index_parameters_reach_the_mapping_and_ingest_warms_up(conn, client, deployed_splade, fresh, tmp_path):
    model_id, export_dir = deployed_splade
    index = fresh("seismic-params")
    seismic = Seismic(n_postings=50, cluster_ratio=0.2, summary_prune_ratio=0.5, approximate_threshold=0)
    meta = create_index(
        client, index, model_id, sparse_type="sparse_vector", seismic=seismic, sparse_encoder=export_dir
    ).meta
    method = sparse_mapping(client, index)["method"]
    assert method["name"] == "seismic"
    assert {k: float(v) for k, v in method["parameters"].items()} == {
        "n_postings": 50.0,
        "cluster_ratio": 0.2,
        "summary_prune_ratio": 0.5,
        "approximate_threshold": 0.0,
    }
    assert meta.sparse.seismic == seismic
    source = write_jsonl(tmp_path / "docs.jsonl", DOCS)
    report = ingest(client, index, source, mode="client", sparse_encoder=export_dir, progress=False)
    assert report.warm_up == {"total": 1, "successful": 1, "failed": 0}
    assert "SEISMIC warm-up: 1/1 shards loaded" in report.summary()

    # method_parameters go out with the query; the cluster runs SEISMIC (approximate_threshold 0) and finds "a"
    tokens = local_sparse_encoder(export_dir, token_ids=True)
    searcher = Searcher(client, index, sparse_encoder=tokens, encoding="local")
    options = QueryOptions(mode="sparse", k=3, seismic=SeismicQuery(top_n=5, heap_factor=1.5))
    result = searcher.search("sparse weighted terms", options)
    clause = result.request.body["query"]["neural_sparse"][FIELDS.sparse]
    assert clause["method_parameters"] == {"top_n": 5, "heap_factor": 1.5, "k": 3}
    assert all(t.isdigit() for t in clause["query_tokens"])
    assert result.hits[0].id == "a"
    # a depth beyond k: SEISMIC's k follows it, so an evaluation at k=100 is not cut at 10 candidates
    deep = searcher.build("x", QueryOptions(mode="sparse", k=100)).body["query"]["neural_sparse"][FIELDS.sparse]
    assert deep["method_parameters"]["k"] == 100
    with pytest.raises(KitError, match="bad SEISMIC query parameters"):
        SeismicQuery(top_n=0)
    # the export directory named on the command line is bound to token ids for this index; a word encoder is refused
    args = ["--url", conn.url, "search", index, "sparse weighted terms", "--mode", "sparse", "--encoding", "local"]
    searched = CliRunner().invoke(main, [*args, "--sparse-encoder", str(export_dir), "--json"])
    assert searched.exit_code == 0, searched.output
    assert json.loads(searched.stdout)["hits"][0]["id"] == "a"
    words = Searcher(client, index, sparse_encoder=local_sparse_encoder(export_dir), encoding="local")
    with pytest.raises(KitError, match="takes token ids"):
        words.search("sparse weighted terms", options)


def test_defaults_are_the_readme_ones_and_the_cli_sets_parameters(conn, client, deployed_splade, fresh):
    model_id, export_dir = deployed_splade
    default = Seismic()
    text = README.read_text(encoding="utf-8")
    stated = dict(re.findall(r"^\| `(\w+)` \| kit default (\S+) ", text, re.M))
    assert stated == {
        "n_postings": "neural-search's",
        "cluster_ratio": "neural-search's",
        "summary_prune_ratio": "neural-search's",
        "approximate_threshold": str(default.approximate_threshold),
        "top_n": str(TOP_N),
        "heap_factor": f"{HEAP_FACTOR:g}",
        "k": "depth",
    }
    index = fresh("seismic-cli")
    args = ["--url", conn.url, "index", "create", index, "--sparse-model", model_id, "--sparse-type", "sparse_vector"]
    created = CliRunner().invoke(main, [*args, "--sparse-encoder", str(export_dir), "--n-postings", "20"])
    assert created.exit_code == 0, created.output
    assert sparse_mapping(client, index)["method"]["parameters"] == {
        "n_postings": 20,
        "approximate_threshold": default.approximate_threshold,
    }
    refused = CliRunner().invoke(main, ["--url", conn.url, "index", "create", "x", "--sparse-model", model_id,
                                        "--n-postings", "20"])  # fmt: skip
    assert isinstance(refused.exception, KitError) and "sparse_vector fields only" in str(refused.exception)
