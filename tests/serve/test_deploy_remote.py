"""`deploy --remote` against our Ray Serve server on the live cluster: each kind through its API passes the
in-cluster parity check, re-running reuses the model, keys stay out of records, and an untrusted endpoint is
refused with the setting to add (or added with allow_endpoint)."""

from __future__ import annotations

import json

import pytest
from conftest import delete_remote

from opensearch_kit.errors import KitError
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
        delete_remote(transport, result)


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
