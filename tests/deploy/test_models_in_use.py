"""Models in use: `models list` names the indexes using each model, undeploy/delete refuse a model an index uses
unless forced, and the node's model limit is explained with the deployed models and the command to free them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from tiny_models import tiny_sparse_zip

from opensearch_kit.cli import main
from opensearch_kit.deploy import deploy_explained
from opensearch_kit.errors import KitError, ModelNotFound
from opensearch_kit.index import create_index
from opensearch_kit.models import delete_model, list_models, undeploy_model
from opensearch_kit.search import QueryOptions, Searcher

pytestmark = pytest.mark.export


def register_tiny(ml, tmp_path, name: str) -> str:
    path, _, _ = tiny_sparse_zip(tmp_path / name)
    meta = {"name": name, "model_format": "TORCH_SCRIPT", "function_name": "SPARSE_ENCODING"}
    model_id = ml.register_zip(path, meta, progress=False).model_id
    ml.deploy(model_id, timeout=300)
    return model_id


def test_an_in_use_model_is_refused_without_force_and_listed_with_its_index(conn, transport, ml, fresh, tmp_path):
    model_id = register_tiny(ml, tmp_path, "test-in-use-sparse")
    try:
        index = fresh("in-use")
        create_index(transport, index, model_id)
        listed = {m["model_id"]: m for m in list_models(transport).to_dict()}
        assert listed[model_id]["indexes"] == [index]
        for action in (undeploy_model, delete_model):
            with pytest.raises(KitError, match=f"used by index\\(es\\) {index}") as refused:
                action(transport, model_id)
            assert "--force" in refused.value.fix
        assert ml.get(model_id)["model_state"] == "DEPLOYED"
        out = CliRunner().invoke(main, ["--url", conn.url, "models", "delete", model_id, "--force"])
        assert out.exit_code == 0 and f"deleted {model_id}" in out.output and index in out.output, out.output
        with pytest.raises(ModelNotFound) as gone:
            Searcher(transport, index).search("hello", QueryOptions(mode="sparse"))
        assert f"index {index} uses a model ML Commons no longer has (sparse {model_id})" in gone.value.message
    finally:
        ml.delete(model_id)


def test_the_node_model_limit_names_the_setting_and_the_unused_models(client, transport, ml, tmp_path):
    setting = "plugins.ml_commons.max_model_on_node"
    before = client.cluster.get_settings(flat_settings=True)["persistent"].get(setting)
    held = register_tiny(ml, tmp_path, "test-limit-held")
    refused = None
    try:
        count = sum(m.get("model_state") == "DEPLOYED" for m in ml.list_models())
        client.cluster.put_settings(body={"persistent": {setting: count}})
        path, _, _ = tiny_sparse_zip(tmp_path / "extra")
        meta = {"name": "test-limit-extra", "model_format": "TORCH_SCRIPT", "function_name": "SPARSE_ENCODING"}
        refused = ml.register_zip(path, meta, progress=False).model_id
        with pytest.raises(KitError) as err:
            deploy_explained(ml, refused, timeout=120)
        text = str(err.value)
        assert setting in err.value.message and held in err.value.message
        assert f"opensearch-kit models undeploy {held}" in err.value.fix, text
    finally:
        client.cluster.put_settings(body={"persistent": {setting: before}})
        ml.delete(held)
        if refused:
            ml.delete(refused)
