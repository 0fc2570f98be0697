"""Reranker export: a tiny random BERT cross-encoder and a tiny random Qwen3 yes/no reranker against their model
cards' reference code (the in-cluster tests are in tests/deploy/test_reranker_deploy.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from references import DOCS, QUERY, reranker_reference, yes_no_prompt
from tokenizers import Tokenizer

from opensearch_kit.cli import main
from opensearch_kit.errors import KitError
from opensearch_kit.export import export_model
from opensearch_kit.runtime import Reranker

pytestmark = pytest.mark.export


def export_reranker(model: str, fmt: str, out, **options):
    return export_model("reranker", model, out, format=fmt, **options)


def test_yes_no_tokenizer_turns_the_pair_into_the_prompt(rerankers, tmp_path):
    """The server encodes (query, doc) as a pair with tokenizer.json: that must give the prompt's token ids."""
    from transformers import AutoTokenizer

    export_reranker(rerankers["yes-no"], "onnx", tmp_path)
    server = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    hf = AutoTokenizer.from_pretrained(rerankers["yes-no"])
    for query in [QUERY, "손해배상 청구 소송", "OpenSearch: BM25 and k-NN"]:
        for doc in DOCS + [" leading space", "ends with a newline\n"]:
            want = hf(yes_no_prompt(query, doc), add_special_tokens=False)["input_ids"]
            assert server.encode(query, doc).ids == want, (query, doc)


@pytest.mark.parametrize("kind", ["cross-encoder", "yes-no"])
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_the_model_card_reference(rerankers, tmp_path, kind, fmt):
    result = export_reranker(rerankers[kind], fmt, tmp_path, name="rr")
    parity = result.report["parity"]
    assert parity["ok"] and parity["max_abs_diff"] <= 1e-3 and parity["batch_sizes"] == [1, 12]
    assert result.report["reranker"] == kind
    body = result.register_body
    assert body["function_name"] == "TEXT_SIMILARITY" and body["model_config"]["embedding_dimension"] == 1
    want = reranker_reference(kind, rerankers[kind], QUERY, DOCS)
    if fmt == "onnx":
        got = Reranker.from_dir(tmp_path).score(QUERY, DOCS, batch_size=len(DOCS))  # one right-padded batch
        assert np.abs(np.array(got) - want).max() <= 1e-3
    recorded = result.report["expected"]
    expected = dict(zip(map(tuple, recorded["pairs"]), recorded["scores"], strict=True))
    assert abs(expected[(QUERY, DOCS[0])] - reranker_reference(kind, rerankers[kind], QUERY, [DOCS[0]])[0]) <= 1e-3


def test_not_a_reranker_is_a_clear_error(minilm, rerankers, tmp_path):
    with pytest.raises(KitError, match="is not a reranker") as err:
        export_reranker(minilm, "onnx", tmp_path)
    assert "ForSequenceClassification" in err.value.fix
    with pytest.raises(KitError, match="--instruction applies to LLM yes/no rerankers"):
        export_reranker(rerankers["cross-encoder"], "onnx", tmp_path, instruction="find answers")


def test_cli_export_reranker(rerankers, tmp_path):
    args = ["export", "reranker", rerankers["yes-no"], "--out", str(tmp_path), "--instruction", "find answers"]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["reranker"] == "yes-no" and record["instruction"] == "find answers" and record["parity"]["ok"]
    assert "find answers" in Tokenizer.from_file(str(tmp_path / "tokenizer.json")).decode(
        Tokenizer.from_file(str(tmp_path / "tokenizer.json")).encode("q", "d").ids
    )


def test_chat_llm_yes_no_reranker_uses_its_own_chat_template(tmp_path):
    """A Llama chat model (SmolLM2's template) as a zero-shot yes/no reranker: the prompt is its chat template's
    system + user turns up to the assistant's first token (no Qwen3 <think> block), in the server's pair
    encoding as in the scores, which match logit(yes) - logit(no) of the eager model on that prompt."""
    import torch
    from tiny_models import tiny_llama_chat_reranker
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from opensearch_kit.export.reranker import DEFAULT_INSTRUCTION, YES_NO_SYSTEM

    model_dir = tiny_llama_chat_reranker(tmp_path / "llama")
    result = export_reranker(str(model_dir), "onnx", tmp_path / "out", name="llama-rr")
    assert result.report["parity"]["ok"] and result.report["prompt"] == "chat-template"
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    server = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer.json"))
    want = []
    for doc in DOCS:
        user = f"<Instruct>: {DEFAULT_INSTRUCTION}\n<Query>: {QUERY}\n<Document>: {doc}"
        messages = [{"role": "system", "content": YES_NO_SYSTEM}, {"role": "user", "content": user}]
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert text.endswith("<|im_end|>\n<|im_start|>assistant\n") and "<think>" not in text
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert server.encode(QUERY, doc).ids == ids, doc
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        want.append(float(logits[yes] - logits[no]))
    got = Reranker.from_dir(tmp_path / "out").score(QUERY, DOCS, batch_size=len(DOCS))
    assert np.abs(np.array(got) - np.array(want)).max() <= 1e-3
