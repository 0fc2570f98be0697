"""Index creation against the real cluster: templates, model checks, every pipeline used in a real search."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import write_jsonl
from opensearchpy import NotFoundError
from opensearchpy.exceptions import TransportError

from opensearch_kit.artifact import Artifact
from opensearch_kit.cli import main
from opensearch_kit.errors import KitError, ModelNotFound
from opensearch_kit.index import FIELDS, Chunking, IndexMeta, Prune, create_index, delete_index, index_info
from opensearch_kit.index.bodies import pipeline_names
from opensearch_kit.index.templates import render
from opensearch_kit.ingest import ingest
from opensearch_kit.runtime import Reranker
from opensearch_kit.search import QueryOptions, Searcher

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    {"_id": "a", "title": "Sparse retrieval", "text": "neural sparse search expands documents into weighted terms"},
    {
        "_id": "b",
        "title": "Dense retrieval",
        "text": "dense vectors capture meaning with approximate nearest neighbours",
    },
    {
        "_id": "c",
        "title": "Lexical search",
        "text": "BM25 ranks documents by term frequency and inverse document frequency",
    },
]


def search(client, index: str, query: dict, pipeline: str | None = None) -> list[str]:
    params = {"search_pipeline": pipeline} if pipeline else {}
    hits = client.search(index=index, body={"query": query, "size": 10}, params=params)["hits"]["hits"]
    return [h["_id"] for h in hits]


def test_render_rules():
    body = render(
        "pipelines/ingest.json",
        index="x",
        text_field="text",
        chunk_field=None,
        embed_field="text",
        token_limit=None,
        overlap_rate=None,
        sparse_model_id="m1",
        sparse_field="sp",
        prune_type=None,
        prune_ratio=None,
        dense_model_id=None,
        dense_field=None,
        batch_size=8,
    )
    assert body == {
        "description": "opensearch-kit: encode documents of index x",
        "processors": [{"sparse_encoding": {"model_id": "m1", "batch_size": 8, "field_map": {"text": "sp"}}}],
    }
    with pytest.raises(KitError, match="needs a value for"):
        render("pipelines/search/rrf.json", index="x", rank_constant=60)


def test_wheel_ships_the_templates(tmp_path):
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file() and not (ROOT / name).is_symlink():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp_path),
        str(src),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    with zipfile.ZipFile(next(tmp_path.glob("opensearch_kit-*.whl"))) as zf:
        shipped = set(zf.namelist())
    templates = {f for f in files if f.startswith("opensearch_kit/data/")}
    assert templates and templates <= shipped
    assert {"opensearch_kit/data/mappings/index.json", "opensearch_kit/data/pipelines/ingest.json"} <= templates


def search_pipeline_names(client) -> set[str]:
    """The cluster's search pipelines (it answers 404 when there are none)."""
    try:
        return set(client.transport.perform_request("GET", "/_search/pipeline"))
    except NotFoundError:
        return set()


def test_refuses_unknown_undeployed_and_wrong_kind_models(client, ml, deployed_splade, fresh):
    model_id, export_dir = deployed_splade
    index = fresh("refused")
    with pytest.raises(ModelNotFound, match="no model with id 'no-such-model'"):
        create_index(client, index, "no-such-model")
    with pytest.raises(KitError, match="is a SPARSE_ENCODING model, not TEXT_EMBEDDING"):
        create_index(client, index, model_id, dense_model=model_id)
    with pytest.raises(KitError, match="not TEXT_SIMILARITY"):
        create_index(client, index, model_id, reranker_model=model_id)
    artifact = Artifact.locate(export_dir)
    meta = {**artifact.register_body, "name": "test-index-undeployed"}
    registered = ml.register_zip(artifact.zip_path, meta, progress=False).model_id
    try:
        with pytest.raises(KitError, match=r"is REGISTER(ED|ING), not deployed") as e:
            create_index(client, index, registered)
        assert "_deploy" in e.value.fix
    finally:
        ml.delete(registered)
    assert not client.indices.exists(index=index)
    assert not search_pipeline_names(client) & set(pipeline_names(index).values())


def test_every_search_pipeline_runs_a_real_query(client, transport, deployed_splade, fresh, tmp_path):
    model_id, _ = deployed_splade
    index = fresh("pipelines")
    created = create_index(client, index, model_id, weights=[0.4, 0.6], prune=Prune("max_ratio", 0.1))
    meta = IndexMeta.read(transport, index)
    assert meta == created.meta
    assert meta.to_dict()["sparse"] | {"model_name": None} == {
        "model_id": model_id,
        "model_name": None,
        "field": FIELDS.sparse,
        "nested_path": None,
        "query_field": FIELDS.sparse,
        "type": "rank_features",
        "format": "WORD",
        "prune": {"type": "max_ratio", "ratio": 0.1},
        "folds_ids": None,
        "id_limit": None,
        "seismic": None,
    }
    assert set(meta.pipelines) == {"ingest", "hybrid", "hybrid_l2", "hybrid_zscore", "rrf", "two_phase"}
    mapping = client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping[FIELDS.sparse] == {"type": "rank_features"} and mapping[FIELDS.text]["analyzer"] == "standard"
    report = ingest(client, index, write_jsonl(tmp_path / "docs.jsonl", DOCS), progress=False)
    assert report.indexed == 3 and report.count_ok

    sparse = {"neural_sparse": {FIELDS.sparse: {"query_text": "sparse term expansion", "model_id": model_id}}}
    hybrid = {"hybrid": {"queries": [{"match": {FIELDS.text: "sparse weighted terms"}}, sparse]}}
    for key in ("hybrid", "hybrid_l2", "hybrid_zscore", "rrf"):
        assert search(client, index, hybrid, meta.pipelines[key])[0] == "a", key
    assert search(client, index, sparse, meta.pipelines["two_phase"])[0] == "a"
    # A hybrid query with three sub-queries does not match the two weights: the processor really reads them.
    three = {"hybrid": {"queries": [*hybrid["hybrid"]["queries"], {"match": {FIELDS.title: "sparse"}}]}}
    with pytest.raises(TransportError) as e:
        search(client, index, three, meta.pipelines["hybrid"])
    assert "number of weights [2] must match number of sub-queries [3]" in json.dumps(e.value.info)

    searcher = Searcher(client, index)  # the query builder reads the fields, models and pipelines from _meta
    for spec in ("bm25", "sparse", "sparse+two-phase", "hybrid", "hybrid+rrf"):
        assert searcher.search("sparse weighted terms", QueryOptions.parse(spec)).hits[0].id == "a", spec

    rerank = render("pipelines/search/rerank.json", index=index, rerank_model_id=model_id, text_field=FIELDS.text)
    client.transport.perform_request("PUT", f"/_search/pipeline/{index}-rerank", body=rerank)

    info = index_info(client, index)
    assert info.documents == 3 and info.models == {model_id: "DEPLOYED"}
    assert all(info.pipelines.values()) and len(info.pipelines) == 6
    deleted = delete_index(client, index)
    assert deleted.deleted and set(deleted.pipelines) == {*meta.pipelines.values(), f"{index}-rerank"}


def test_chunked_index_both_modes_hold_the_same_chunks_and_vectors(
    client, deployed_splade, deployed_minilm, fresh, tmp_path
):
    model_id, export_dir = deployed_splade
    dense_id, dense_dir = deployed_minilm
    source = write_jsonl(tmp_path / "docs.jsonl", DOCS)
    got = {}
    for mode in ("pipeline", "client"):
        index = fresh(f"chunked-{mode}")
        create_index(client, index, model_id, dense_model=dense_id, chunking=Chunking(4, 0.25))
        report = ingest(
            client, index, source, mode=mode, sparse_encoder=export_dir, dense_encoder=dense_dir, progress=False
        )
        assert report.indexed == 3 and report.over_length_handling == "chunked"
        got[mode] = {d: client.get(index=index, id=d)["_source"] for d in ("a", "b", "c")}
        nested = {
            "nested": {
                "path": FIELDS.sparse,
                "score_mode": "max",
                "query": {
                    "neural_sparse": {
                        f"{FIELDS.sparse}.sparse_encoding": {"query_text": "inverse frequency", "model_id": model_id}
                    }
                },
            }
        }
        assert search(client, index, nested)[0] == "c"
    for doc_id, p in got["pipeline"].items():
        c = got["client"][doc_id]
        assert p[FIELDS.chunks] == c[FIELDS.chunks] and len(p[FIELDS.chunks]) >= 3
        for pv, cv in zip(p[FIELDS.sparse], c[FIELDS.sparse], strict=True):
            pv, cv = pv["sparse_encoding"], cv["sparse_encoding"]
            assert pv.keys() == cv.keys() and max(abs(pv[k] - cv[k]) for k in pv) <= 1e-3
        pd, cd = ([v["knn"] for v in d[FIELDS.dense]] for d in (p, c))
        assert len(pd) == len(p[FIELDS.chunks]) and np.abs(np.array(pd) - np.array(cd)).max() <= 1e-3


def test_sparse_vector_seismic_index(client, deployed_splade, fresh, tmp_path):
    model_id, export_dir = deployed_splade
    source = write_jsonl(tmp_path / "docs.jsonl", DOCS)
    vectors = {}
    for mode in ("pipeline", "client"):
        index = fresh(f"seismic-{mode}")
        meta = create_index(client, index, model_id, sparse_type="sparse_vector", sparse_encoder=export_dir).meta
        assert "two_phase" not in meta.pipelines and meta.sparse.format == "TOKEN_ID"
        assert client.indices.get_settings(index=index)[index]["settings"]["index"]["sparse"] == "true"
        assert ingest(client, index, source, mode=mode, sparse_encoder=export_dir, progress=False).indexed == 3
        vectors[mode] = client.get(index=index, id="a")["_source"][FIELDS.sparse]
        query = {"neural_sparse": {FIELDS.sparse: {"query_text": "sparse terms", "model_id": model_id}}}
        assert search(client, index, query)[0] == "a"
    p, c = vectors["pipeline"], vectors["client"]
    assert all(k.isdigit() for k in p) and p.keys() == c.keys() and max(abs(p[k] - c[k]) for k in p) <= 1e-3


def test_cli_create_info_delete(conn, deployed_splade, fresh):
    model_id, _ = deployed_splade
    index = fresh("cli")
    runner = CliRunner()
    base = ["--url", conn.url]
    out = runner.invoke(
        main, [*base, "index", "create", index, "--sparse-model", model_id, "--language", "ko", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["meta"]["analyzer"] == "nori"
    out = runner.invoke(main, [*base, "index", "info", index])
    assert out.exit_code == 0 and f"{index}: 0 documents, language ko (nori)" in out.output
    out = runner.invoke(main, [*base, "index", "create", index, "--sparse-model", model_id])
    assert isinstance(out.exception, KitError) and "already exists" in str(out.exception)
    out = runner.invoke(main, [*base, "index", "delete", index, "--yes", "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["deleted"] is True
    out = runner.invoke(main, [*base, "index", "info", index])
    assert isinstance(out.exception, KitError) and f"no index {index}" in str(out.exception)
    plain = "test-index-plain"  # an index opensearch-kit did not make is never deleted by it
    conn.client().indices.create(index=plain)
    try:
        out = runner.invoke(main, [*base, "index", "delete", plain, "--yes"])
        assert isinstance(out.exception, KitError) and "not made by opensearch-kit" in str(out.exception)
        assert conn.client().indices.exists(index=plain)
    finally:
        conn.client().indices.delete(index=plain)


def test_dense_and_rerank_index_in_both_modes(
    client, deployed_splade, deployed_minilm, deployed_cross_encoder, fresh, tmp_path
):
    sparse_id, sparse_dir = deployed_splade
    dense_id, dense_dir = deployed_minilm
    rerank_id, rerank_dir = deployed_cross_encoder
    source = write_jsonl(tmp_path / "docs.jsonl", DOCS)
    query = "approximate nearest neighbour vectors"
    stored = {}
    for mode in ("pipeline", "client"):
        index = fresh(f"dense-{mode}")
        meta = create_index(
            client, index, sparse_id, dense_model=dense_id, reranker_model=rerank_id, weights=[0.2, 0.3, 0.5]
        ).meta
        assert (meta.dense.model_id, meta.reranker.model_id) == (dense_id, rerank_id)
        mapping = client.indices.get_mapping(index=index)[index]["mappings"]["properties"][FIELDS.dense]
        assert (mapping["dimension"], mapping["method"]["engine"], mapping["method"]["space_type"]) == (
            384,
            "lucene",
            "cosinesimil",
        )
        report = ingest(
            client, index, source, mode=mode, sparse_encoder=sparse_dir, dense_encoder=dense_dir, progress=False
        )
        assert report.indexed == 3 and report.count_ok
        if mode == "client":
            assert f"dense matches {dense_id}" in report.encoder_check
        stored[mode] = sources(client, index, ["a", "b", "c"])

        searcher = Searcher(client, index)
        assert searcher.search(query, QueryOptions.parse("dense")).hits[0].id == "b"
        assert searcher.search(query, QueryOptions.parse("hybrid")).hits[0].id == "b"  # bm25 + sparse + dense
        reranked = [h.id for h in searcher.search(query, QueryOptions.parse("hybrid+rerank")).hits]
        texts = {d: s[FIELDS.text] for d, s in stored[mode].items()}
        scores = Reranker.from_dir(rerank_dir).score(query, [texts[d] for d in reranked])
        assert sorted(reranked) == ["a", "b", "c"] and scores == sorted(scores, reverse=True)
    for doc_id, p in stored["pipeline"].items():
        c = stored["client"][doc_id]
        assert np.abs(np.array(p[FIELDS.dense]) - np.array(c[FIELDS.dense])).max() <= 1e-3
        assert p[FIELDS.sparse].keys() == c[FIELDS.sparse].keys()


def sources(client, index: str, ids: list[str]) -> dict[str, dict]:
    return {d["_id"]: d["_source"] for d in client.mget(index=index, body={"ids": ids})["docs"]}
