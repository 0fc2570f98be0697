"""Score (query, document) pairs locally with an exported ONNX reranker, exactly as the cluster does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from opensearch_kit.artifact import Artifact
from opensearch_kit.runtime.onnx import OnnxModel
from opensearch_kit.runtime.sizing import ModelShape


class Reranker(OnnxModel):
    """A cross-encoder / yes-no reranker: one relevance score per (query, document), higher is more relevant."""

    @classmethod
    def from_dir(cls, export_dir: Path, threads: int | None = None) -> Reranker:
        """The graph and tokenizer.json of an `opensearch-kit export reranker --format onnx` directory."""
        artifact = Artifact.locate(Path(export_dir), "reranker")
        return cls(artifact.onnx_file(), artifact.tokenizer_file, threads, ModelShape.of(artifact.report))

    def pair_scores(self, pairs: list[tuple[str, str]], batch_size: int | None = None) -> np.ndarray:
        """[len(pairs)] float32 scores, each pair tokenized as the server does (tokenizer.json's pair template)."""
        rows = self.run(pairs, batch_size)
        return np.array([float(np.ravel(r)[0]) for r in rows], np.float32)

    def score(self, query: str, docs: list[str], batch_size: int | None = None) -> list[float]:
        """The score of each document for `query`, in the documents' order."""
        return self.pair_scores([(query, d) for d in docs], batch_size).tolist()
