"""`opensearch-kit deploy` and `models`: idempotent registration, in-cluster parity, cut connections, clear errors."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner
from flaky_proxy import FlakyProxy
from helpers import deployed

from opensearch_kit.artifact import Artifact
from opensearch_kit.cli import main
from opensearch_kit.errors import KitError
from opensearch_kit.export import export_model
from opensearch_kit.files import read_json, write_json
from opensearch_kit.opensearch import Connection, Transport
from opensearch_kit.opensearch.heap import in_flight
from opensearch_kit.verify.cluster import check_in_cluster


@pytest.fixture(scope="module")
def splade_export(tiny_splade, tmp_path_factory):
    """The real tiny SPLADE exported to TorchScript once for this module."""
    out = tmp_path_factory.mktemp("splade")
    return export_model("sparse", tiny_splade, out, format="torchscript", name="test-deploy-splade")


def cli(conn: Connection, *args: str) -> dict | list:
    result = CliRunner().invoke(main, ["--url", conn.url, *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_deploy_is_idempotent_and_models_commands_manage_it(conn, ml, splade_export):
    first = cli(conn, "deploy", str(splade_export.zip_path), "--kind", "sparse")
    model_id = first["model_id"]
    try:
        assert not first["reused"] and first["uploaded_bytes"] == splade_export.zip_path.stat().st_size
        parity = first["cluster_parity"]
        assert parity["ok"] and parity["max_abs_diff"] <= 1e-3 and parity["texts"] == 6
        again = cli(conn, "deploy", str(splade_export.zip_path.parent), "--kind", "sparse")
        assert again["model_id"] == model_id and again["reused"] and again["uploaded_bytes"] == 0
        assert not again["deployed_now"] and again["cluster_parity"]["ok"]
        listed = {m["model_id"]: m for m in cli(conn, "models", "list")}
        assert listed[model_id]["model_state"] == "DEPLOYED"
        register = json.loads(splade_export.register_path.read_text())
        assert listed[model_id]["model_content_hash_value"] == register["model_content_hash_value"]
        cli(conn, "models", "undeploy", model_id)
        assert ml.get(model_id)["model_state"] == "UNDEPLOYED"
        cli(conn, "models", "delete", model_id)
        assert model_id not in {m["model_id"] for m in cli(conn, "models", "list")}
    finally:
        ml.delete(model_id)


def test_deploy_exports_a_sparse_tokenizer_and_checks_idf_weights(conn, ml, tiny_splade, tmp_path):
    idf = tmp_path / "idf.json"
    idf.write_text(json.dumps({"neural": 2.5, "sparse": 3.0, "search": 1.5}))
    out = tmp_path / "tok"
    record = cli(conn, "deploy", tiny_splade, "--kind", "sparse-tokenizer", "--idf", str(idf), "--out", str(out))
    try:
        assert record["exported"] and record["kind"] == "sparse-tokenizer"
        assert record["cluster_parity"]["ok"] and record["cluster_parity"]["max_abs_diff"] == 0
        got = ml.predict(record["model_id"], {"text_docs": ["neural sparse search"]})
        assert got["inference_results"][0]["output"][0]["dataAsMap"]["response"][0] == {
            "neural": 2.5,
            "sparse": 3.0,
            "search": 1.5,
        }
    finally:
        ml.delete(record["model_id"])


def test_parity_check_catches_a_wrong_model(ml, tmp_path, splade_export):
    """The in-cluster check fails when the cluster's weights are not the recorded ones."""
    tampered = tmp_path / "tampered"
    shutil.copytree(splade_export.dir, tampered)
    tampered_export = Artifact(tampered, splade_export.name)
    report = read_json(tampered_export.report_path)
    report["expected"]["weights"][0] = {k: v * 1.01 for k, v in report["expected"]["weights"][0].items()}
    write_json(tampered_export.report_path, report)
    with deployed(ml, splade_export) as model_id:
        result = check_in_cluster(ml, model_id, tampered_export)
        assert not result["ok"] and result["max_abs_diff"] > 1e-3
        assert check_in_cluster(ml, model_id, splade_export)["ok"]


def _proxied(conn: Connection, cut_after: int, cuts: int | None):
    target = urlparse(conn.url)
    proxy = FlakyProxy((target.hostname, target.port), cut_after, cuts)
    return proxy, Transport(Connection(proxy.url).client(), proxy.url, retries=3, backoff=0.2).ml


def _models_named(ml, name: str) -> list[dict]:
    return [m for m in ml.list_models() if m["name"] == name]


def test_a_cut_connection_mid_upload_is_retried(conn, ml, splade_export):
    size = splade_export.zip_path.stat().st_size
    proxy, flaky = _proxied(conn, cut_after=size // 2, cuts=1)
    meta = {**splade_export.register_body, "name": "test-deploy-cut-once"}
    try:
        reg = flaky.register_zip(splade_export.zip_path, meta, chunk_size=1_000_000, progress=False)
        assert proxy.cut_count == 1 and not reg.reused
        assert ml.get(reg.model_id)["model_state"] == "REGISTERED"
        ml.deploy(reg.model_id, timeout=300)
        assert check_in_cluster(ml, reg.model_id, splade_export)["ok"]
    finally:
        proxy.close()
        for m in _models_named(ml, "test-deploy-cut-once"):
            ml.delete(m["model_id"])


def test_a_lost_link_fails_cleanly_and_the_next_run_resumes(conn, ml, splade_export):
    size = splade_export.zip_path.stat().st_size
    proxy, flaky = _proxied(conn, cut_after=size // 2, cuts=None)
    artifact = splade_export
    meta = {**artifact.register_body, "name": "test-deploy-link-lost"}
    direct = ml
    try:
        with pytest.raises(KitError, match="failed at chunk .* resumes its upload"):
            flaky.register_zip(artifact.zip_path, meta, chunk_size=1_000_000, progress=False)
        (left,) = _models_named(direct, "test-deploy-link-lost")
        assert left["model_state"] == "REGISTERING"
        stored = direct.uploaded_chunks(left["model_id"])
        assert 0 < len(stored) < left["total_chunks"]
        reg = direct.register_zip(artifact.zip_path, meta, chunk_size=1_000_000, progress=False)
        assert reg.model_id == left["model_id"] and reg.resumed and 0 < reg.uploaded_bytes < size
        direct.deploy(reg.model_id, timeout=300)  # the server checks the reassembled zip's sha256
        assert check_in_cluster(direct, reg.model_id, splade_export)["ok"]
        assert len(_models_named(direct, "test-deploy-link-lost")) == 1
    finally:
        proxy.close()
        for m in _models_named(direct, "test-deploy-link-lost"):
            direct.delete(m["model_id"])


def _with_setting(client, key: str, value, action):
    client.cluster.put_settings(body={"transient": {key: value}})
    try:
        return action()
    finally:
        client.cluster.put_settings(body={"transient": {key: None}})


def test_registration_disabled_names_the_setting(client, ml, splade_export):
    artifact = Artifact.locate(splade_export.zip_path)
    meta = {**artifact.register_body, "name": "test-deploy-disabled"}
    with pytest.raises(KitError) as err:
        _with_setting(
            client,
            "plugins.ml_commons.allow_registering_model_via_local_file",
            False,
            lambda: ml.register_zip(artifact.zip_path, meta, progress=False),
        )
    assert "allow_registering_model_via_local_file: true" in err.value.fix
    assert not _models_named(ml, "test-deploy-disabled")


def test_no_ml_node_names_the_setting(client, ml, splade_export):
    artifact = Artifact.locate(splade_export.dir)
    model_id = ml.register_zip(artifact.zip_path, {**artifact.register_body, "name": "test-deploy-no-ml-node"}).model_id
    try:
        with pytest.raises(KitError) as err:
            _with_setting(
                client, "plugins.ml_commons.only_run_on_ml_node", True, lambda: ml.deploy(model_id, timeout=120)
            )
        assert "only_run_on_ml_node: false" in err.value.fix
    finally:
        ml.delete(model_id)


def test_oversized_zip_and_unreachable_cluster_are_clear_errors(tmp_path):
    huge = tmp_path / "huge.zip"
    with huge.open("wb") as f:
        f.truncate(4 * 1024**3 + 1)  # sparse file: no disk used
    with pytest.raises(KitError, match="at most 4 GiB") as err:
        Connection("http://127.0.0.1:1").transport().ml.register_zip(huge, {"name": "x"}, progress=False)
    assert "int8" in err.value.fix
    result = CliRunner().invoke(main, ["--url", "http://127.0.0.1:1", "models", "list"])
    assert result.exit_code != 0 and "cannot reach OpenSearch at http://127.0.0.1:1" in str(result.exception)


def test_a_model_deleted_while_uploading_stops_the_upload_at_once(ml, tmp_path, caplog):
    blob = tmp_path / "large.zip"
    blob.write_bytes(os.urandom(8_000_000))  # 160 chunks of 50 kB: never deployed, only uploaded
    meta = {"name": "test-deploy-deleted-meanwhile", "model_format": "TORCH_SCRIPT", "function_name": "SPARSE_ENCODING"}
    deleted: list[str] = []

    def delete_after_the_first_chunk() -> None:
        deadline = time.monotonic() + 120
        while not deleted and time.monotonic() < deadline:
            for m in _models_named(ml, meta["name"]):
                if ml.uploaded_chunks(m["model_id"]):
                    ml.delete(m["model_id"])  # another connection, as a second user would
                    deleted.append(m["model_id"])
            time.sleep(0.05)

    deleter = threading.Thread(target=delete_after_the_first_chunk)
    deleter.start()
    try:
        with pytest.raises(KitError, match="was deleted while uploading large.zip") as err:
            ml.register_zip(blob, meta, chunk_size=50_000, progress=False)
    finally:
        deleter.join()
        for m in _models_named(ml, meta["name"]):
            ml.delete(m["model_id"])
    assert deleted and deleted[0] in err.value.message and "again" in err.value.fix
    assert "retry" not in caplog.text  # final: not retried as if transient


def test_a_deploy_asked_while_another_deploy_of_the_model_runs_waits_for_that_one(ml, splade_export, caplog):
    """ML Commons redeploys a model itself after a node restart and leaves its record as it was; a deploy asked
    meanwhile fails on the node ("Duplicate deploy model task"). The kit waits for the running one instead."""
    model_id = ml.register_zip(splade_export.zip_path, splade_export.register_body, progress=False).model_id
    try:
        ml.api.deploy_model(model_id=model_id)  # the deploy beside ours, as ML Commons' own would be
        with caplog.at_level(logging.INFO, logger="opensearch_kit"):
            ml.deploy_task(model_id, time.monotonic() + 120, lambda seconds: None)
        assert "a deploy of it is running on a node already" in caplog.text
        assert ml.loaded(model_id)
    finally:
        ml.delete(model_id)


def test_a_breaker_that_keeps_refusing_chunks_names_the_heap(conn, client, tmp_path):
    blob = tmp_path / "breaker.zip"
    blob.write_bytes(os.urandom(6_000_000))  # 3 chunks of 2 MB: each over the in-flight requests limit below
    meta = {"name": "test-deploy-breaker", "model_format": "TORCH_SCRIPT", "function_name": "SPARSE_ENCODING"}
    ml = Transport(conn.client(), conn.url, retries=1, backoff=0.1).ml
    with pytest.raises(KitError) as err:
        _with_setting(
            client,
            "network.breaker.inflight_requests.limit",
            "1mb",  # the small calls pass, every chunk gets HTTP 429 circuit_breaking_exception
            lambda: ml.register_zip(blob, meta, chunk_size=2_000_000, progress=False),
        )
    assert "circuit breaker kept refusing the chunks" in err.value.message
    assert "GiB heap is too small" in err.value.message and "in_flight_requests" in err.value.message
    assert "cluster start --heap" in err.value.fix and "jvm.options" in err.value.fix
    assert not _models_named(ml, meta["name"])  # the half-registered model was deleted


def test_chunks_go_two_at_a_time_and_the_last_one_last(ml, tmp_path, monkeypatch):
    blob = tmp_path / "paced.zip"
    blob.write_bytes(os.urandom(1_000_000))
    meta = {"name": "test-deploy-in-flight", "model_format": "TORCH_SCRIPT", "function_name": "SPARSE_ENCODING"}
    upload, lock, flying, seen = ml.api.upload_chunk, threading.Lock(), [0], []

    def counted(**kwargs):
        with lock:
            flying[0] += 1
            seen.append((kwargs["chunk_number"], flying[0]))
        try:
            time.sleep(0.05)
            return upload(**kwargs)
        finally:
            with lock:
                flying[0] -= 1

    monkeypatch.setattr(ml.api, "upload_chunk", counted)
    assert in_flight(ml.transport) == 2  # a test node has 2 GiB of heap or more
    try:
        reg = ml.register_zip(blob, meta, chunk_size=100_000, progress=False)
        assert ml.get(reg.model_id)["model_state"] == "REGISTERED" and reg.uploaded_bytes == blob.stat().st_size
    finally:
        for m in _models_named(ml, meta["name"]):
            ml.delete(m["model_id"])
    assert max(n for _, n in seen) == 2 and seen[-1] == (9, 1)  # never more than two; the last one alone
