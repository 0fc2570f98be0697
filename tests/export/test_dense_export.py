"""Dense export: all-MiniLM-L6-v2 against sentence-transformers, a tiny random Qwen3 decoder embedder, the errors."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from references import MIXED, QUERY_PROMPT, qwen_reference
from tiny_models import qwen_tokenizer, tiny_qwen3_sentence_transformer

from opensearch_kit.cli import main
from opensearch_kit.errors import KitError
from opensearch_kit.export import export_model
from opensearch_kit.runtime import DenseEncoder
from opensearch_kit.verify.compare import cosines
from opensearch_kit.verify.samples import SAMPLE_TEXTS
from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model

pytestmark = pytest.mark.export


def export_dense(model: str, fmt: str, out, **options):
    return export_model("dense", model, out, format=fmt, **options)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_minilm_export_equals_sentence_transformers(minilm, minilm_st, tmp_path, fmt):
    result = export_dense(minilm, fmt, tmp_path, name="minilm")
    parity = result.report["parity"]
    assert parity["ok"] and parity["min_cosine"] >= 0.9999 and parity["batch_sizes"] == [1, 6]
    assert result.report["pooling"] == "mean" and result.report["normalize"] is True
    assert cosines(minilm_st, np.array(result.report["expected"]["passage_vectors"])).min() >= 0.9999
    body = result.register_body
    assert body["function_name"] == "TEXT_EMBEDDING" and list(body).index("function_name") < list(body).index(
        "model_config"
    )
    assert body["model_config"] == {
        "model_type": "bert",
        "embedding_dimension": 384,
        "framework_type": "sentence_transformers",
        "pooling_mode": "none",
        "normalize_result": False,
        "model_max_length": 256,  # sentence_bert_config.json max_seq_length
        "additional_config": {"space_type": "cosinesimil"},
    }
    with zipfile.ZipFile(result.zip_path) as zf:
        suffix = ".pt" if fmt == "torchscript" else ".onnx"
        assert sorted(zf.namelist()) == sorted([f"minilm{suffix}", "tokenizer.json"])
        assert json.loads(zf.read("tokenizer.json"))["truncation"]["max_length"] == 256
    if fmt == "onnx":
        encoder = DenseEncoder.from_dir(tmp_path)
        assert encoder.dimension == 384
        assert cosines(minilm_st, encoder.embed(SAMPLE_TEXTS, batch_size=4)).min() >= 0.9999


def test_minilm_int8_and_fp16_report_quality(minilm, minilm_st, tmp_path):
    int8 = export_dense(minilm, "onnx", tmp_path / "int8", name="m", quantize="int8")
    assert int8.report["reduced_quality"]["min_cosine"] >= 0.95
    assert int8.model_file.stat().st_size < int8.report["fp32_model_bytes"] / 3
    assert cosines(minilm_st, DenseEncoder.from_dir(tmp_path / "int8").embed(SAMPLE_TEXTS)).min() >= 0.95
    fp16 = export_dense(minilm, "onnx", tmp_path / "fp16", name="m", dtype="fp16")
    assert fp16.report["reduced_quality"]["min_cosine"] >= 0.9999
    assert fp16.model_file.stat().st_size < int8.model_file.stat().st_size * 3  # ~half of fp32's ~90 MB


def test_qwen3_last_token_pooling_with_padding_and_query_prompt(tiny_qwen, tmp_path):
    result = export_dense(
        tiny_qwen, "onnx", tmp_path, name="q", pooling="last-token", normalize=True, query_prompt=QUERY_PROMPT
    )
    assert result.report["parity"]["ok"]
    config = json.loads(result.register_path.read_text())["model_config"]
    assert config["model_type"] == "qwen3" and config["query_prefix"] == QUERY_PROMPT
    assert config["additional_config"] == {"space_type": "cosinesimil"} and "passage_prefix" not in config
    encoder = DenseEncoder.from_dir(tmp_path)
    want = qwen_reference(tiny_qwen, MIXED)
    assert cosines(want, encoder.embed(MIXED, batch_size=len(MIXED))).min() >= 0.9999  # right-padded batch
    assert cosines(want, encoder.embed(MIXED, batch_size=1)).min() >= 0.9999
    queries = encoder.embed(MIXED, batch_size=len(MIXED), is_query=True)
    assert cosines(qwen_reference(tiny_qwen, [QUERY_PROMPT + t for t in MIXED]), queries).min() >= 0.9999
    # left padding (as Qwen3-Embedding's own code pads) pools the same last real token
    tok = qwen_tokenizer(eos_template=True)
    tok.padding_side = "left"
    enc = tok(MIXED, padding=True, return_tensors="np")
    left = encoder.session.run(None, {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})[0]
    assert (enc["attention_mask"][:, 0] == 0).any()
    assert cosines(want, left).min() >= 0.9999


def test_sparse_model_as_dense_is_a_clear_error(tmp_path):
    with pytest.raises(KitError, match="masked-LM .* sparse") as err:
        export_dense(str(fetch_wheel_model(TINY_SPLADE)), "onnx", tmp_path)
    assert "export sparse" in err.value.fix and "--pooling" in err.value.fix


def test_no_pooling_information_names_the_option(tiny_qwen, tmp_path):
    with pytest.raises(KitError, match="how to pool") as err:
        export_dense(tiny_qwen, "onnx", tmp_path)
    assert "--pooling" in err.value.fix and "last-token" in err.value.fix


def test_too_big_for_ml_commons_names_what_fits(tmp_path):
    """A Qwen3-1.7B-shaped config (no weights: sizing happens before loading) is ~6.4 GiB in fp32."""
    import transformers

    config = transformers.Qwen3Config(
        vocab_size=151936,
        hidden_size=2048,
        intermediate_size=6144,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=True,
    )
    config.save_pretrained(tmp_path / "big")
    qwen_tokenizer().save_pretrained(tmp_path / "big")
    with pytest.raises(
        KitError, match=r"torchscript fp32 model would be about 6\.4 GiB; ML Commons accepts at most 4 GiB"
    ) as err:
        export_dense(str(tmp_path / "big"), "torchscript", tmp_path / "out", pooling="last-token")
    assert err.value.fix == "export with --dtype fp16 or --format onnx --quantize int8"


def test_parity_failure_is_loud_with_figures(tiny_qwen, tmp_path):
    with pytest.raises(KitError, match=r"parity check failed: .*min cosine") as err:
        export_dense(tiny_qwen, "torchscript", tmp_path, name="q", pooling="mean", tolerance=-1.0)
    assert "q.report.json" in err.value.fix
    assert json.loads((tmp_path / "q.report.json").read_text())["parity"]["ok"] is False


def test_cli_export_dense(tiny_qwen, tmp_path):
    args = ["export", "dense", tiny_qwen, "--out", str(tmp_path), "--format", "onnx", "--pooling", "last-token"]
    result = CliRunner().invoke(main, [*args, "--normalize", "--query-prompt", "query: ", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["dimension"] == 32 and record["query_prompt"] == "query: " and record["parity"]["ok"]
    assert "expected" not in record and record["zip"].endswith(".zip")


def test_sentence_transformers_decoder_folder_equals_sentence_transformers(tmp_path):
    from sentence_transformers import SentenceTransformer

    model_dir = tiny_qwen3_sentence_transformer(tmp_path / "st", QUERY_PROMPT)
    result = export_dense(str(model_dir), "onnx", tmp_path / "out", name="st")
    report = result.report
    assert (report["pooling"], report["normalize"], report["query_prompt"]) == ("last-token", True, QUERY_PROMPT)
    assert report["passage_prompt"] is None and report["max_length"] == 128
    encoder = DenseEncoder.from_dir(tmp_path / "out")
    st = SentenceTransformer(str(model_dir), device="cpu")
    assert cosines(st.encode(MIXED), encoder.embed(MIXED, batch_size=4)).min() >= 0.9999
    want = st.encode(MIXED, prompt_name="query")
    assert cosines(want, encoder.embed(MIXED, batch_size=4, is_query=True)).min() >= 0.9999
