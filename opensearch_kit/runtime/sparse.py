"""Encode texts into sparse vectors locally with an exported ONNX model, exactly as ML Commons returns them."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from opensearch_kit.artifact import Artifact
from opensearch_kit.runtime.onnx import OnnxModel
from opensearch_kit.runtime.sizing import ModelShape


class SparseEncoder(OnnxModel):
    """Batched, dynamically padded ONNX inference returning {token: weight} (as ML Commons' WORD format) or
    {token_id: weight} (for sparse_vector fields)."""

    @classmethod
    def from_dir(cls, export_dir: Path, threads: int | None = None) -> SparseEncoder:
        """The graph and tokenizer.json of an `opensearch-kit export sparse --format onnx` directory (the model
        file its report names: the int8 graph of an int8 export)."""
        artifact = Artifact.locate(Path(export_dir), "sparse")
        return cls(artifact.onnx_file(), artifact.tokenizer_file, threads, ModelShape.of(artifact.report))

    @cached_property
    def id_to_token(self) -> dict[int, str]:
        return decoded_vocab(self.tokenizer)

    def vectors(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """Dense [len(texts), vocab] float32 weights; texts are sorted by length so each batch pads little."""
        out = self.run(texts, batch_size)
        return np.stack(out) if out else np.zeros((0, self.tokenizer.get_vocab_size()), np.float32)

    def encode(self, texts: list[str], batch_size: int | None = None) -> list[dict[str, float]]:
        """{decoded token: weight} per text, the way ML Commons' SparseEncodingTranslator builds it."""
        return [self.to_tokens(v) for v in self.vectors(texts, batch_size)]

    def encode_ids(self, texts: list[str], batch_size: int | None = None) -> list[dict[str, float]]:
        """{token id: weight} per text (ML Commons' TOKEN_ID format)."""
        return [{str(int(i)): float(v[i]) for i in np.flatnonzero(v)} for v in self.vectors(texts, batch_size)]

    def to_tokens(self, vector: np.ndarray) -> dict[str, float]:
        return token_weights(self.id_to_token, vector)


def decoded_vocab(tokenizer: Tokenizer) -> dict[int, str]:
    """ML Commons decodes each id alone, skipping special tokens."""
    return {i: tokenizer.decode([i], skip_special_tokens=True) for i in range(tokenizer.get_vocab_size())}


def token_weights(vocab: dict[int, str], vector: np.ndarray) -> dict[str, float]:
    """{token: weight} for the non-zero entries, as ML Commons builds it (a later id wins a shared string); an id
    the tokenizer lacks (a padded vocabulary's extra rows, which kit exports zero) is left out."""
    weights: dict[str, float] = {}
    for i in np.flatnonzero(vector):
        token = vocab.get(int(i))
        if token:
            weights[token] = float(vector[i])
    return weights
