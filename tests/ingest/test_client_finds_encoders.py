"""Client-mode ingest and local query encoding with no encoder flags find the index's models' ONNX exports by
fingerprint in the export cache: an ONNX deploy's own export, and for a TorchScript deploy the ONNX export of its
recorded source."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import write_jsonl

from opensearch_kit.deploy import deploy
from opensearch_kit.errors import KitError
from opensearch_kit.export.identity import cache_root
from opensearch_kit.export.locate import onnx_export_of
from opensearch_kit.index import create_index
from opensearch_kit.ingest import ingest
from opensearch_kit.search import QueryOptions, Searcher

pytestmark = pytest.mark.export

DOCS = [{"_id": f"d{i}", "text": f"neural sparse search document number {i} about retrieval"} for i in range(5)]


def test_client_ingest_without_encoder_flags_on_models_deployed_from_folders(
    transport, ml, client, tiny_splade, minilm, fresh, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENSEARCH_KIT_CACHE", str(tmp_path / "cache"))
    sparse_src = shutil.copytree(tiny_splade, tmp_path / "splade" / "model")
    sparse = deploy(transport, str(sparse_src), kind="sparse", format="torchscript", progress=False, check=False)
    # max_length: a fingerprint of its own, so no model registered by another test is reused (and not exported)
    dense = deploy(transport, minilm, kind="dense", format="onnx", max_length=128, progress=False, check=False)
    try:
        index = fresh("client-finds")
        create_index(transport, index, sparse.model_id, dense_model=dense.model_id)
        report = ingest(transport, index, write_jsonl(tmp_path / "docs.jsonl", DOCS), mode="client", progress=False)
        assert report.to_dict()["indexed"] == len(DOCS), report.to_dict()
        assert f"sparse matches {sparse.model_id}" in report.encoder_check
        assert f"dense matches {dense.model_id}" in report.encoder_check
        onnx_dir = onnx_export_of(ml, sparse.model_id, "sparse")
        assert onnx_dir.parent == cache_root() and "-sparse-onnx-" in onnx_dir.name
        assert onnx_export_of(ml, dense.model_id, "dense") == Path(dense.zip).parent
        got = client.get(index=index, id="d0")["_source"]
        assert got["sparse_embedding"] and len(got["dense_embedding"]) == 384
        local = Searcher(transport, index, encoding="local")
        for mode in ("sparse", "dense"):
            assert local.search("neural sparse search document", QueryOptions(mode=mode)).hits, mode
        shutil.rmtree(tmp_path / "cache")
        with pytest.raises(KitError, match="no local export of sparse model") as err:
            onnx_export_of(ml, sparse.model_id, "sparse")
        assert "--sparse-encoder DIR" in err.value.fix and "--format onnx" in err.value.fix
    finally:
        ml.delete(sparse.model_id)
        ml.delete(dense.model_id)
