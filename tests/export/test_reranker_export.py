"""Reranker export: a tiny random BERT cross-encoder and a tiny random Qwen3 yes/no reranker, locally, in the
cluster, and behind a `rerank` search pipeline."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_dense_deploy import deployed
from tiny_models import tiny_bert_cross_encoder, tiny_qwen3_reranker
from tokenizers import Tokenizer

from opensearch_kit.cli import main
from opensearch_kit.dense_encoder import Reranker
from opensearch_kit.errors import KitError
from opensearch_kit.ml_commons import MLCommons
from opensearch_kit.rerank_export import check_reranker_in_cluster, cluster_scores, export_reranker

QUERY = "what is neural sparse search"
DOCS = [
    "OpenSearch hybrid search combines BM25 and dense vectors.",
    "neural sparse search expands queries into weighted terms",
    "한국어 형태소 분석과 검색 모델",
    "the quick brown fox jumps over the lazy dog",
    "손해배상 청구 소송과 의료 분쟁 판례 검색",
]
# Qwen3-Reranker's prompt, written out as its model card does.
PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


@pytest.fixture(scope="module")
def rerankers(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("rerankers")
    return {
        "cross-encoder": str(tiny_bert_cross_encoder(root / "cross-encoder")),
        "yes-no": str(tiny_qwen3_reranker(root / "yes-no")),
    }


def yes_no_prompt(query: str, doc: str) -> str:
    return PREFIX + f"<Instruct>: {INSTRUCTION}\n<Query>: {query}\n<Document>: {doc}" + SUFFIX


def reference(kind: str, model_dir: str, query: str, docs: list[str]) -> np.ndarray:
    """Independent reference: the HF model run eagerly on each pair, as the model cards' code does."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    scores = []
    if kind == "cross-encoder":
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager").eval()
        for doc in docs:
            enc = tok(query, doc, return_tensors="pt", return_token_type_ids=True)
            with torch.no_grad():
                scores.append(float(model(**enc).logits[0, 0]))
        return np.array(scores)
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    for doc in docs:
        ids = tok(yes_no_prompt(query, doc), add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, -1]
        scores.append(float(logits[yes] - logits[no]))
    return np.array(scores)


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
    body = json.loads(result.register_path.read_text())
    assert body["function_name"] == "TEXT_SIMILARITY" and body["model_config"]["embedding_dimension"] == 1
    want = reference(kind, rerankers[kind], QUERY, DOCS)
    if fmt == "onnx":
        got = Reranker.from_dir(tmp_path).score(QUERY, DOCS, batch_size=len(DOCS))  # one right-padded batch
        assert np.abs(np.array(got) - want).max() <= 1e-3
    recorded = result.report["expected"]
    expected = dict(zip(map(tuple, recorded["pairs"]), recorded["scores"], strict=True))
    assert abs(expected[(QUERY, DOCS[0])] - reference(kind, rerankers[kind], QUERY, [DOCS[0]])[0]) <= 1e-3


def rerank_order(client, model_id: str, query: str) -> list[tuple[int, float]]:
    """Index DOCS, search them through a `rerank` pipeline on the model; (doc index, score) in hit order."""
    index, pipeline = f"kit-test-rerank-{uuid.uuid4().hex[:8]}", f"kit-test-rerank-{uuid.uuid4().hex[:8]}"
    client.indices.create(index=index, body={"mappings": {"properties": {"text": {"type": "text"}}}})
    try:
        for i, doc in enumerate(DOCS):
            client.index(index=index, id=str(i), body={"text": doc})
        client.indices.refresh(index=index)
        processor = {"rerank": {"ml_opensearch": {"model_id": model_id}, "context": {"document_fields": ["text"]}}}
        client.transport.perform_request(
            "PUT", f"/_search/pipeline/{pipeline}", body={"response_processors": [processor]}
        )
        body = {
            "query": {"match_all": {}},
            "size": len(DOCS),
            "ext": {"rerank": {"query_context": {"query_text": query}}},
        }
        hits = client.transport.perform_request(
            "POST", f"/{index}/_search", body=body, params={"search_pipeline": pipeline}
        )["hits"]["hits"]
        return [(int(h["_id"]), h["_score"]) for h in hits]
    finally:
        client.transport.perform_request("DELETE", f"/_search/pipeline/{pipeline}", params={"ignore": 404})
        client.indices.delete(index=index, ignore_unavailable=True)


@pytest.mark.parametrize("kind", ["cross-encoder", "yes-no"])
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_rerank_pipeline_orders_hits_as_the_reference(client, rerankers, tmp_path, kind, fmt):
    ml = MLCommons(client)
    export = export_reranker(rerankers[kind], fmt, tmp_path, name=f"test-rr-{kind}-{fmt}")
    want = reference(kind, rerankers[kind], QUERY, DOCS)
    with deployed(ml, export) as model_id:
        check = check_reranker_in_cluster(ml, model_id, tmp_path)
        assert check["ok"] and check["pairs"] == 12
        assert np.abs(np.array(cluster_scores(ml, model_id, QUERY, DOCS)) - want).max() <= 1e-3
        hits = rerank_order(client, model_id, QUERY)
    assert [i for i, _ in hits] == list(np.argsort(-want))
    assert max(abs(score - want[i]) for i, score in hits) <= 1e-3


@pytest.mark.parametrize(("fmt", "dtype", "quantize"), [("torchscript", "fp16", None), ("onnx", "fp32", "int8")])
def test_reduced_precision_reranker_in_cluster(client, rerankers, tmp_path, fmt, dtype, quantize):
    export = export_reranker(
        rerankers["yes-no"], fmt, tmp_path, name=f"test-rr-{fmt}-{dtype}", dtype=dtype, quantize=quantize
    )
    assert export.report["reduced_quality"]["spearman"] >= 0.9
    ml = MLCommons(client)
    with deployed(ml, export) as model_id:
        assert check_reranker_in_cluster(ml, model_id, tmp_path)["ok"]


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
