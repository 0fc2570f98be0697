"""Encode texts into sparse vectors locally with an exported ONNX model, exactly as ML Commons returns them."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


def onnx_session(path: Path, threads: int | None = None):
    """An onnxruntime CPU session using all cores by default."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_padded(encodings: list, batch_size: int, run) -> list[np.ndarray]:
    """Call run({input_ids, attention_mask, token_type_ids}) -> [batch, ...] on length-sorted batches padded
    (right, with id 0) to their longest member, so each batch pads little; the rows come back in input order."""
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    out: list[np.ndarray] = [None] * len(encodings)  # type: ignore[list-item]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(encodings[i].ids) for i in idx)
        feeds = {
            k: np.zeros((len(idx), width), dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")
        }
        for row, i in enumerate(idx):
            n = len(encodings[i].ids)
            feeds["input_ids"][row, :n] = encodings[i].ids
            feeds["attention_mask"][row, :n] = 1
            feeds["token_type_ids"][row, :n] = encodings[i].type_ids
        result = run(feeds)
        for row, i in enumerate(idx):
            out[i] = result[row]
    return out


class SparseEncoder:
    """Batched, dynamically padded ONNX inference returning {token: weight} (as ML Commons' WORD format) or
    {token_id: weight} (for sparse_vector fields)."""

    def __init__(self, onnx_path: Path, tokenizer_path: Path, threads: int | None = None):
        self.session = onnx_session(onnx_path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))

    @classmethod
    def from_dir(cls, export_dir: Path, threads: int | None = None) -> SparseEncoder:
        """Load `<dir>/*.onnx` and `<dir>/tokenizer.json` as written by `opensearch-kit export sparse`."""
        models = sorted(Path(export_dir).glob("*.onnx"))
        if not models:
            raise FileNotFoundError(f"no .onnx model in {export_dir}; export with --format onnx")
        return cls(models[0], Path(export_dir) / "tokenizer.json", threads)

    @cached_property
    def id_to_token(self) -> dict[int, str]:
        return decoded_vocab(self.tokenizer)

    def vectors(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Dense [len(texts), vocab] float32 weights; texts are sorted by length so each batch pads little."""
        encodings = self.tokenizer.encode_batch(texts)

        def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
            arrays = (feeds["input_ids"], feeds["attention_mask"])
            return self.session.run(None, dict(zip(self.input_names, arrays, strict=True)))[0]

        out = run_padded(encodings, batch_size, run)
        return np.stack(out) if out else np.zeros((0, self.tokenizer.get_vocab_size()), np.float32)

    def encode(self, texts: list[str], batch_size: int = 32) -> list[dict[str, float]]:
        """{decoded token: weight} per text, the way ML Commons' SparseEncodingTranslator builds it."""
        return [self.to_tokens(v) for v in self.vectors(texts, batch_size)]

    def encode_ids(self, texts: list[str], batch_size: int = 32) -> list[dict[str, float]]:
        """{token id: weight} per text (ML Commons' TOKEN_ID format)."""
        return [{str(int(i)): float(v[i]) for i in np.flatnonzero(v)} for v in self.vectors(texts, batch_size)]

    def to_tokens(self, vector: np.ndarray) -> dict[str, float]:
        return token_weights(self.id_to_token, vector)


def decoded_vocab(tokenizer: Tokenizer) -> dict[int, str]:
    """ML Commons decodes each id alone, skipping special tokens."""
    return {i: tokenizer.decode([i], skip_special_tokens=True) for i in range(tokenizer.get_vocab_size())}


def token_weights(vocab: dict[int, str], vector: np.ndarray) -> dict[str, float]:
    """{token: weight} for the non-zero entries, as ML Commons builds it (a later id wins a shared string)."""
    weights: dict[str, float] = {}
    for i in np.flatnonzero(vector):
        token = vocab[int(i)]
        if token:
            weights[token] = float(vector[i])
    return weights
