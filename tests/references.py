"""Independent references the tests compare exports with: the Hugging Face models run as their model cards do."""

from __future__ import annotations

import numpy as np
import torch

QUERY_PROMPT = "Instruct: Given a web search query, retrieve relevant passages\nQuery:"
MIXED = ["hello", "neural sparse search with a much longer text than the others", "검색 모델", "a b"]


def qwen_reference(model_dir: str, texts: list[str]) -> np.ndarray:
    """Independent reference: the HF model on each text alone, last token's hidden state, L2-normalised."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    rows = []
    for text in texts:
        ids = tok(text, truncation=True, max_length=256, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            rows.append(torch.nn.functional.normalize(model(input_ids=ids).last_hidden_state[0, -1], dim=-1))
    return torch.stack(rows).numpy()


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


def yes_no_prompt(query: str, doc: str) -> str:
    return PREFIX + f"<Instruct>: {INSTRUCTION}\n<Query>: {query}\n<Document>: {doc}" + SUFFIX


def reranker_reference(kind: str, model_dir: str, query: str, docs: list[str]) -> np.ndarray:
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
