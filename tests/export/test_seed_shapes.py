"""The seed models' shapes: a sparse encoder whose vocabulary is padded past its tokenizer exports with the extra
ids masked, and the failures a user can cause are KitErrors that name the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
import seed_models
import torch
from helpers import force_memory_bounded
from seed_models import PADDED_ROWS, seed_embedder, seed_reranker, seed_sparse
from tiny_models import tiny_custom_sparse, tiny_qwen3_embedder
from tokenizers import Tokenizer

from opensearch_kit.errors import KitError
from opensearch_kit.export import export_model, resources
from opensearch_kit.export.resources import AVAILABLE_ENV
from opensearch_kit.runtime import SparseEncoder
from opensearch_kit.runtime.onnx import run_padded
from opensearch_kit.verify.samples import SAMPLE_TEXTS

pytestmark = pytest.mark.export


def graph_vectors(export, texts: list[str]) -> np.ndarray:
    """[texts, vocab] weights through the exported graph itself (ONNX Runtime or libtorch)."""
    if export.format == "onnx":
        return SparseEncoder.from_dir(export.dir).vectors(texts)
    module = torch.jit.load(str(export.model_file))
    tokenizer = Tokenizer.from_file(str(export.tokenizer_file))

    def run(feeds):
        with torch.no_grad():
            inputs = {k: torch.from_numpy(feeds[k]) for k in ("input_ids", "attention_mask")}
            return module(inputs)["output"].float().numpy()

    return np.stack(run_padded(tokenizer.encode_batch(texts), 4, run))


@pytest.fixture(scope="module")
def padded_sparse(tmp_path_factory):
    return str(seed_sparse(tmp_path_factory.mktemp("padded") / "model", tiny=True))


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_padded_vocabulary_is_masked_and_reported(padded_sparse, tmp_path, fmt):
    export = export_model("sparse", padded_sparse, tmp_path, format=fmt, trust_remote_code=True)
    report = export.report
    assert report["parity"]["ok"], report["parity"]
    assert report["vocab_size"] - report["tokenizer_size"] == report["masked_missing_ids"] == PADDED_ROWS
    assert any("padded vocabulary" in note for note in report["notes"])
    vectors = graph_vectors(export, SAMPLE_TEXTS)
    assert vectors.shape[1] == report["vocab_size"]
    assert np.count_nonzero(vectors[:, : report["tokenizer_size"]]) > 0
    assert not vectors[:, report["tokenizer_size"] :].any()  # no id the tokenizer lacks ever carries weight
    assert all(report["expected"]["weights"])


def test_real_size_padded_sparse_exports_with_the_padding_masked(tmp_path):
    """The 150M shape (22 x 768, 50,000 rows, 88 without a token) in ONNX: the padded ids never carry weight."""
    model = str(seed_sparse(tmp_path / "model"))
    export = export_model("sparse", model, tmp_path / "out", format="onnx", trust_remote_code=True, progress=False)
    report = export.report
    assert report["parity"]["ok"] and report["masked_missing_ids"] == PADDED_ROWS, report["parity"]
    assert report["shape"]["num_hidden_layers"] == 22 and report["vocab_size"] == 50_000
    vectors = graph_vectors(export, SAMPLE_TEXTS[:4])
    assert np.count_nonzero(vectors) > 0 and not vectors[:, report["tokenizer_size"] :].any()


def test_a_missing_folder_is_a_kit_error(tmp_path):
    with pytest.raises(KitError, match="no model folder") as err:
        export_model("sparse", str(tmp_path / "nope"), tmp_path / "out")
    assert "config.json" in err.value.fix


def test_a_folder_that_is_no_model_is_a_kit_error(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("not a model")
    with pytest.raises(KitError, match="not a Hugging Face model"):
        export_model("dense", str(tmp_path / "model"), tmp_path / "out")


def test_an_unknown_architecture_is_a_kit_error(tmp_path):
    model = tiny_qwen3_embedder(tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "model_type": "qwen99"}))
    with pytest.raises(KitError, match="architecture not supported") as err:
        export_model("dense", str(model), tmp_path / "out", pooling="last-token")
    assert "upgrade transformers" in err.value.fix


def test_untrusted_custom_code_is_a_kit_error(tmp_path):
    model = tiny_custom_sparse(tmp_path / "model")
    for kind, options in (("sparse", {}), ("dense", {"pooling": "mean"})):
        with pytest.raises(KitError, match="ships its own model code") as err:
            export_model(kind, str(model), tmp_path / kind, **options)
        assert "--trust-remote-code" in err.value.fix


def test_export_refuses_when_memory_is_short(padded_sparse, tmp_path, monkeypatch):
    monkeypatch.setenv(AVAILABLE_ENV, str(200 * 1024**2))  # the machine reports 200 MB available
    with pytest.raises(KitError, match=r"needs about [\d.]+ GB of memory; 0\.2 GB is available") as err:
        export_model("sparse", padded_sparse, tmp_path, format="onnx", trust_remote_code=True)
    assert "free memory" in err.value.fix and AVAILABLE_ENV in err.value.fix
    assert not list(tmp_path.iterdir())  # refused before any weight was loaded or file written


def test_export_refuses_when_disk_is_short(padded_sparse, tmp_path, monkeypatch):
    """A full disk mid-write can abort the process inside torch's zip writer: the export checks the room first."""
    monkeypatch.setattr(resources, "free_disk", lambda folder: 100 * 1024**2)  # the disk reports 100 MB free
    out = tmp_path / "out"
    with pytest.raises(KitError, match=r"needs about [\d.]+ GB of disk in .*out .*; 0\.1 GB is free there") as err:
        export_model("sparse", padded_sparse, out, format="onnx", trust_remote_code=True)
    assert "--out" in err.value.fix
    assert not list(out.iterdir())  # refused before any weight was loaded or file written


@pytest.mark.parametrize(("fmt", "variant"), [("torchscript", "fp16"), ("onnx", "fp16"), ("onnx", "int8")])
@pytest.mark.parametrize("kind", ["dense", "reranker"])
def test_memory_bounded_export(tmp_path, monkeypatch, kind, fmt, variant):
    """The path big models take (here forced on tiny sharded bf16 checkpoints): no fp32 graph, the reduced graph
    checked batched against one at a time and against the fp32 original; int8 ONNX quantizes the fp16 graph's
    MatMul weights, the embedding table stays fp16."""
    import onnx

    force_memory_bounded(monkeypatch)
    monkeypatch.setattr(seed_models, "SHARD_SIZE", "40KB")  # a bf16 checkpoint in several shards
    model = (seed_embedder if kind == "dense" else seed_reranker)(tmp_path / "model", tiny=True)
    assert len(list(model.glob("*.safetensors"))) > 1
    options = {"quantize": "int8"} if variant == "int8" else {"dtype": "fp16"}
    export = export_model(kind, str(model), tmp_path / "out", format=fmt, **options)
    report = export.report
    assert report["memory_bounded"] and report["parity"]["ok"], report["parity"]
    quality = report["reduced_quality"]
    least = 0.985 if variant == "int8" else 0.99  # int8's 7-bit weights: 0.9999 on these random tiny models
    assert quality.get("min_cosine", 1) >= least and quality.get("max_abs_diff", 0) <= 0.05, quality
    assert not list((tmp_path / "out").glob("*.fp32.*"))
    if fmt == "onnx":
        graph = onnx.load(str(export.model_file)).graph
        big = [i for i in graph.initializer if np.prod(i.dims) >= 256]
        kinds = {onnx.TensorProto.FLOAT16} | ({onnx.TensorProto.INT8} if variant == "int8" else set())
        assert big and {i.data_type for i in big} == kinds, [(i.name, i.data_type) for i in big]
        matmuls = sum(n.op_type == "MatMulInteger" for n in graph.node)
        assert matmuls == (7 * seed_models.TINY_DECODER["num_hidden_layers"] if variant == "int8" else 0)
