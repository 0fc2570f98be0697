"""Sparse export: the real tiny SPLADE and tiny random BERT / XLM-R / ModernBERT / remote-code models."""

from __future__ import annotations

import json
import zipfile

import pytest
from tiny_models import tiny_custom_sparse, tiny_mlm

from opensearch_kit.errors import KitError
from opensearch_kit.export import export_model
from opensearch_kit.files import file_digest
from opensearch_kit.runtime import SparseEncoder

pytestmark = pytest.mark.export


def export_sparse(model: str, fmt: str, out, **options):
    return export_model("sparse", model, out, format=fmt, **options)


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
    assert body["model_content_hash_value"] == file_digest(result.zip_path)
    assert list(body).index("function_name") < list(body).index("model_format")


def test_int8_export_reports_quality(tiny_splade, tmp_path):
    result = export_sparse(tiny_splade, "onnx", tmp_path, name="splade", quantize="int8")
    quality = result.report["reduced_quality"]
    assert quality["top20_overlap_mean"] >= 0.8 and quality["score_spearman"] >= 0.9
    assert result.model_file.stat().st_size < result.report["fp32_model_bytes"] / 2
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["splade.onnx"]  # the fp32 graph is gone


def test_quantize_needs_onnx(tiny_splade, tmp_path):
    with pytest.raises(KitError, match="ONNX"):
        export_sparse(tiny_splade, "torchscript", tmp_path, quantize="int8")


def test_parity_failure_is_loud_with_figures(tiny_splade, tmp_path):
    with pytest.raises(KitError, match=r"parity check failed: .*max\|diff\|=") as err:
        export_sparse(tiny_splade, "torchscript", tmp_path, name="splade", tolerance=0.0)
    assert "splade.report.json" in err.value.fix
    assert json.loads((tmp_path / "splade.report.json").read_text())["parity"]["ok"] is False


def test_pruning_keeps_only_strong_weights(tiny_splade, tmp_path):
    full = SparseEncoder.from_dir(export_sparse(tiny_splade, "onnx", tmp_path / "full").dir)
    pruned_dir = export_sparse(tiny_splade, "onnx", tmp_path / "pruned", prune_ratio=0.5).dir
    pruned = SparseEncoder.from_dir(pruned_dir)
    text = ["sparse retrieval with learned term weights"]
    a, b = full.encode(text)[0], pruned.encode(text)[0]
    assert 0 < len(b) < len(a)
    assert min(b.values()) > 0.5 * max(a.values()) - 1e-5


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
    artifact = export_model("sparse-tokenizer", tiny_splade, tmp_path / "out", idf=corpus, name="tok")
    with zipfile.ZipFile(artifact.zip_path) as zf:
        assert sorted(zf.namelist()) == ["idf.json", "tokenizer.json"]
        idf = json.loads(zf.read("idf.json"))
    assert idf["the"] == pytest.approx(__import__("math").log(4 / 3))
    assert idf["bird"] == pytest.approx(__import__("math").log(4))
    assert "[CLS]" not in idf
    assert artifact.register_body["function_name"] == "SPARSE_TOKENIZE"


def test_fp16_torchscript_export_reports_quality(tiny_splade, tmp_path):
    result = export_sparse(tiny_splade, "torchscript", tmp_path, name="splade", dtype="fp16")
    quality = result.report["reduced_quality"]
    assert quality["name"] == "torchscript fp16" and quality["top20_overlap_mean"] >= 0.95
    assert result.model_file.stat().st_size < result.report["fp32_model_bytes"] * 0.6
    assert result.report["cluster_bounds"] == {"max_abs_diff": 2e-2}


def test_too_big_sparse_model_is_refused_before_loading_weights(tmp_path):
    """A BERT-shaped MLM of ~2 billion parameters (config only: sizing happens on the weight-less architecture)."""
    import transformers

    source = tiny_mlm("bert", tmp_path / "tiny")
    config = transformers.BertConfig(
        vocab_size=transformers.AutoTokenizer.from_pretrained(source).vocab_size,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=40,
        num_attention_heads=16,
        architectures=["BertForMaskedLM"],
    )
    config.save_pretrained(source)  # the folder keeps the tiny weights, which must never be loaded
    with pytest.raises(KitError, match=r"torchscript fp32 model would be about 7\.\d GiB") as err:
        export_sparse(str(source), "torchscript", tmp_path / "out")
    assert err.value.fix == "export with --dtype fp16 or --format onnx --quantize int8"
