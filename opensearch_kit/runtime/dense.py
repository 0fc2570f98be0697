"""Embed texts locally with an exported ONNX embedder, exactly as the cluster does (same tokenizer.json, same
graph, the same prompts): for client-side ingestion, search and evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from opensearch_kit.artifact import Artifact
from opensearch_kit.runtime.onnx import OnnxModel
from opensearch_kit.runtime.sizing import ModelShape


class DenseEncoder(OnnxModel):
    """Batched, dynamically padded ONNX embedding with the export's pooling, normalisation and prompts."""

    def __init__(
        self,
        onnx_path: Path,
        tokenizer_path: Path,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        threads: int | None = None,
        shape: ModelShape | None = None,
    ):
        super().__init__(onnx_path, tokenizer_path, threads, shape)
        self.query_prompt = query_prompt or ""
        self.passage_prompt = passage_prompt or ""

    @classmethod
    def from_dir(cls, export_dir: Path, threads: int | None = None) -> DenseEncoder:
        """The graph, tokenizer.json and prompts of an `opensearch-kit export dense --format onnx` directory."""
        artifact = Artifact.locate(Path(export_dir), "dense")
        report = artifact.report
        return cls(
            artifact.onnx_file(),
            artifact.tokenizer_file,
            report["query_prompt"],
            report["passage_prompt"],
            threads,
            ModelShape.of(report),
        )

    @property
    def dimension(self) -> int:
        return int(self.session.get_outputs()[0].shape[-1])

    def embed(self, texts: list[str], batch_size: int | None = None, is_query: bool = False) -> np.ndarray:
        """[len(texts), dimension] float32 embeddings; queries get the query prompt, passages the passage prompt."""
        prompt = self.query_prompt if is_query else self.passage_prompt
        rows = self.run([prompt + t for t in texts], batch_size)
        return np.stack(rows) if rows else np.zeros((0, self.dimension), np.float32)
