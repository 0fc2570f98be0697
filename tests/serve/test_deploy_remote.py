"""`deploy --remote` against our Ray Serve server on the live cluster: each kind through its API passes the
in-cluster parity check, re-running reuses the model, keys stay out of records, an untrusted endpoint is
refused with the setting to add (or added with allow_endpoint), and deleting a model deletes its connector unless
another model uses it."""

from __future__ import annotations

import json

import pytest

from opensearch_kit.errors import KitError, NotFound
from opensearch_kit.models import delete_model
from opensearch_kit.remote import PRIVATE_IP, TRUSTED_REGEX, deploy_remote


@pytest.mark.parametrize("kind", ["sparse", "dense", "reranker"])
def test_remote_models_pass_the_in_cluster_parity_check(remote_models, transport, kind):
    result = remote_models[kind]
    assert result.cluster_parity["ok"], result.cluster_parity
    model = transport.ml.get(result.model_id)
    assert model["algorithm"] == "REMOTE" and model["model_state"] == "DEPLOYED"


def test_rerunning_reuses_the_connector_and_model(remote_models, transport, server, served_exports):
    again = deploy_remote(transport, server.url, "dense", api="openai", reference=served_exports["dense"])
    assert again.reused and again.model_id == remote_models["dense"].model_id
    assert again.connector_id == remote_models["dense"].connector_id


def test_tei_api_and_the_key_stays_in_the_connector(transport, server, served_exports, monkeypatch):
    monkeypatch.setenv("TEST_SERVE_KEY", "s3cret-key-value")
    result = deploy_remote(
        transport, server.url, "dense", api="tei", reference=served_exports["dense"],
        credential_env="TEST_SERVE_KEY", name="test-remote-tei",
    )  # fmt: skip
    try:
        assert result.cluster_parity["ok"], result.cluster_parity
        assert "s3cret" not in json.dumps(result.to_dict()) + result.summary()
        connector = transport.request("GET", f"/_plugins/_ml/connectors/{result.connector_id}")
        assert "s3cret" not in json.dumps(connector)
    finally:
        delete_model(transport, result.model_id)


def test_deleting_a_remote_model_deletes_its_connector_unless_another_model_uses_it(transport, server, served_exports):
    result = deploy_remote(
        transport, server.url, "reranker", api="cohere", reference=served_exports["reranker"], name="test-shared"
    )
    ml = transport.ml
    body = {"name": "test-shared-2", "function_name": "remote", "connector_id": result.connector_id}
    other = ml.register_remote({**body, "model_group_id": ml.model_group("test-shared-2")})
    try:
        first = delete_model(transport, result.model_id)
        assert first.connector == {
            "connector_id": result.connector_id, "deleted": False, "kept_because": f"model(s) {other} use it"
        }  # fmt: skip
    finally:
        last = delete_model(transport, other)
    assert last.connector["connector_id"] == result.connector_id
    if last.connector["deleted"]:
        with pytest.raises(NotFound):
            transport.request("GET", f"/_plugins/_ml/connectors/{result.connector_id}")
    else:  # ML Commons matched a live model whose connector id shares a word with this one: it must name it
        assert "only share a word with it" in last.connector["kept_because"], last.connector


def test_no_connector_shape_is_an_error_naming_the_apis(transport, server):
    with pytest.raises(KitError, match="no tei connector shape for reranker"):
        deploy_remote(transport, server.url, "reranker", api="tei")


def test_an_untrusted_endpoint_names_the_setting_then_allow_endpoint_adds_it(
    transport, server, served_exports, remote_models
):
    settings = {"persistent": {TRUSTED_REGEX: [r"^https://example\.com/.*$"], PRIVATE_IP: False}}
    transport.request("PUT", "/_cluster/settings", settings)
    try:
        with pytest.raises(KitError) as refused:
            deploy_remote(transport, server.url, "sparse", reference=served_exports["sparse"])
        assert TRUSTED_REGEX in str(refused.value) and "--allow-endpoint" in str(refused.value)
        allowed = deploy_remote(
            transport, server.url, "sparse", reference=served_exports["sparse"], allow_endpoint=True
        )
        assert set(allowed.settings_changed) == {TRUSTED_REGEX, PRIVATE_IP}
        assert allowed.cluster_parity["ok"]
    finally:
        transport.request("PUT", "/_cluster/settings", {"persistent": {TRUSTED_REGEX: None, PRIVATE_IP: None}})
