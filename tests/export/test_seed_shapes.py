"""The seed models' shapes: a sparse encoder whose vocabulary is padded past its tokenizer exports with the extra
ids masked, and the failures a user can cause are KitErrors that name the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from seed_models import PADDED_ROWS, seed_sparse
from tiny_models import tiny_custom_sparse, tiny_qwen3_embedder
from tokenizers import Tokenizer

from opensearch_kit.errors import KitError
from opensearch_kit.export import export_model
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
