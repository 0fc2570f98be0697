"""True errors from the live cluster: a missing index, a missing model and a missing pipeline are told apart by the
one transport, with the HTTP status and the server's reason, and the CLI says which one it is."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from tiny_models import tiny_sparse_zip

from opensearch_kit.cli import main
from opensearch_kit.errors import IndexNotFound, ModelNotFound, PipelineNotFound
from opensearch_kit.index import IndexMeta, create_index
from opensearch_kit.search import QueryOptions, Searcher


def test_missing_index_model_and_pipeline_are_different_errors(transport, ml):
    with pytest.raises(IndexNotFound, match="no index test-no-such-index") as index_error:
        transport.request("POST", "/test-no-such-index/_search", {"query": {"match_all": {}}})
    with pytest.raises(ModelNotFound, match="no model no-such-model-id") as model_error:
        ml.get("no-such-model-id")
    with pytest.raises(PipelineNotFound) as pipeline_error:
        transport.request("GET", "/_search/pipeline/test-no-such-pipeline")
    assert index_error.value.status == model_error.value.status == pipeline_error.value.status == 404
    assert index_error.value.error_type == "index_not_found_exception"
    assert "Failed to find model" in model_error.value.reason
    with pytest.raises(IndexNotFound, match="no index test-no-such-index") as meta_error:
        IndexMeta.read(transport, "test-no-such-index")
    assert "index create" in meta_error.value.fix


def test_search_on_an_index_whose_model_is_gone_says_the_model_is_missing(conn, transport, ml, fresh, tmp_path):
    path, _, _ = tiny_sparse_zip(tmp_path)
    meta = {"name": "test-errors-sparse", "model_format": "TORCH_SCRIPT", "function_name": "SPARSE_ENCODING"}
    model_id = ml.register_zip(path, meta, progress=False).model_id
    try:
        ml.deploy(model_id, timeout=300)
        index = fresh("model-gone")
        create_index(transport, index, model_id)
    finally:
        ml.delete(model_id)
    searcher = Searcher(transport, index)
    assert searcher.search("hello world", QueryOptions(mode="bm25")).hits == []  # the index itself is fine
    with pytest.raises(ModelNotFound) as err:
        searcher.search("hello world", QueryOptions(mode="sparse"))
    assert f"index {index} uses a model ML Commons no longer has (sparse {model_id})" in err.value.message
    assert err.value.status == 404 and "does not exist" not in err.value.message

    runner = CliRunner()
    out = runner.invoke(main, ["--url", conn.url, "search", index, "hello", "--mode", "sparse"])
    assert isinstance(out.exception, ModelNotFound) and model_id in str(out.exception)
    out = runner.invoke(main, ["--url", conn.url, "search", "test-no-such-index", "hello", "--mode", "bm25"])
    assert isinstance(out.exception, IndexNotFound) and "no index test-no-such-index" in str(out.exception)
    out = runner.invoke(main, ["--url", conn.url, "models", "delete", model_id])
    assert isinstance(out.exception, ModelNotFound) and f"no model {model_id}" in str(out.exception)


def test_an_undefined_search_pipeline_is_a_missing_pipeline(transport, fresh, deployed_splade):
    index = fresh("no-pipeline")
    create_index(transport, index, deployed_splade[0])
    with pytest.raises(PipelineNotFound, match="Pipeline test-undefined is not defined"):
        transport.request(
            "POST", f"/{index}/_search", {"query": {"match_all": {}}}, params={"search_pipeline": "test-undefined"}
        )
