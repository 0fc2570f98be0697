"""The torch-free local sparse encoder on real exports: ML Commons' token decoding, and the model file it loads."""

from __future__ import annotations

import shutil

import pytest

from opensearch_kit.export import export_model
from opensearch_kit.runtime import SparseEncoder

pytestmark = pytest.mark.export


def export_sparse(model: str, fmt: str, out, **options):
    return export_model("sparse", model, out, format=fmt, **options)


def test_local_encoder_returns_words_and_ids(tiny_splade, tmp_path):
    encoder = SparseEncoder.from_dir(export_sparse(tiny_splade, "onnx", tmp_path).dir)
    texts = ["what is the capital of france", "a second, longer text about the history of paris and france"]
    words, ids = encoder.encode(texts, batch_size=2), encoder.encode_ids(texts, batch_size=2)
    assert "france" in words[0] and "[CLS]" not in words[0] and "[SEP]" not in words[0]
    assert len(ids[0]) >= len(words[0]) and all(k.isdigit() for k in ids[0])
    one_by_one = encoder.encode(texts, batch_size=1)
    assert all(abs(one_by_one[1][k] - words[1][k]) < 1e-5 for k in words[1])


def test_int8_from_dir_runs_the_int8_graph_the_report_names(tiny_splade, tmp_path):
    """`SparseEncoder.from_dir` loads the model file the report names, even beside another .onnx file (round 1
    picked `<name>.fp32.onnx`, the first .onnx in name order)."""
    fp32 = export_sparse(tiny_splade, "onnx", tmp_path / "fp32", name="splade")
    int8 = export_sparse(tiny_splade, "onnx", tmp_path / "int8", name="splade", quantize="int8")
    shutil.copy(fp32.model_file, int8.dir / "splade.fp32.onnx")  # sorts before splade.onnx
    encoder = SparseEncoder.from_dir(int8.dir)
    texts = int8.report["expected"]["texts"]
    got = encoder.encode(texts, batch_size=1)
    for g, want in zip(got, int8.report["expected"]["weights"], strict=True):
        assert g.keys() == want.keys() and max(abs(g[k] - want[k]) for k in want) <= 1e-5
    fp32_weights = SparseEncoder.from_dir(fp32.dir).encode(texts, batch_size=1)
    assert max(abs(g.get(k, 0) - f.get(k, 0)) for g, f in zip(got, fp32_weights, strict=True) for k in f) > 1e-3
