"""Embed texts and score (query, document) pairs locally with exported ONNX models, exactly as the cluster does
(same tokenizer.json, same graph): for client-side ingestion, search and evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from opensearch_kit.artifact import read_report
from opensearch_kit.errors import KitError
from opensearch_kit.sparse_encoder import onnx_session, run_padded


def _onnx_export(export_dir: Path, kind: str) -> tuple[Path, dict]:
    """The ONNX model file of an `opensearch-kit export <kind>` directory, and its report."""
    report = read_report(Path(export_dir), kind)
    if report["format"] != "onnx":
        raise KitError(f"{export_dir} holds a {report['format']} export", f"export {kind} with --format onnx")
    return Path(export_dir) / report["model_file"], report


class _OnnxPairModel:
    """An onnxruntime session fed by name from right-padded, length-sorted batches of tokenizer encodings."""

    def __init__(self, onnx_path: Path, tokenizer_path: Path, threads: int | None = None):
        self.session = onnx_session(onnx_path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))

    def _run(self, items: list, batch_size: int) -> list[np.ndarray]:
        encodings = self.tokenizer.encode_batch(items)
        return run_padded(
            encodings, batch_size, lambda feeds: self.session.run(None, {n: feeds[n] for n in self.input_names})[0]
        )


class DenseEncoder(_OnnxPairModel):
    """Batched, dynamically padded ONNX embedding with the export's pooling, normalisation and prompts."""

    def __init__(
        self,
        onnx_path: Path,
        tokenizer_path: Path,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        threads: int | None = None,
    ):
        super().__init__(onnx_path, tokenizer_path, threads)
        self.query_prompt = query_prompt or ""
        self.passage_prompt = passage_prompt or ""

    @classmethod
    def from_dir(cls, export_dir: Path, threads: int | None = None) -> DenseEncoder:
        """Load the model, tokenizer.json and prompts written by `opensearch-kit export dense --format onnx`."""
        model_file, report = _onnx_export(export_dir, "dense")
        return cls(
            model_file, Path(export_dir) / "tokenizer.json", report["query_prompt"], report["passage_prompt"], threads
        )

    @property
    def dimension(self) -> int:
        return int(self.session.get_outputs()[0].shape[-1])

    def embed(self, texts: list[str], batch_size: int = 32, is_query: bool = False) -> np.ndarray:
        """[len(texts), dimension] float32 embeddings; queries get the query prompt, passages the passage prompt."""
        prompt = self.query_prompt if is_query else self.passage_prompt
        rows = self._run([prompt + t for t in texts], batch_size)
        return np.stack(rows) if rows else np.zeros((0, self.dimension), np.float32)


class Reranker(_OnnxPairModel):
    """A cross-encoder / yes-no reranker: one relevance score per (query, document), higher is more relevant."""

    @classmethod
    def from_dir(cls, export_dir: Path, threads: int | None = None) -> Reranker:
        """Load the model and tokenizer.json written by `opensearch-kit export reranker --format onnx`."""
        model_file, _ = _onnx_export(export_dir, "reranker")
        return cls(model_file, Path(export_dir) / "tokenizer.json", threads)

    def pair_scores(self, pairs: list[tuple[str, str]], batch_size: int = 32) -> np.ndarray:
        """[len(pairs)] float32 scores, each pair tokenized as the server does (tokenizer.json's pair template)."""
        rows = self._run(pairs, batch_size)
        return np.array([float(np.ravel(r)[0]) for r in rows], np.float32)

    def score(self, query: str, docs: list[str], batch_size: int = 32) -> list[float]:
        """The score of each document for `query`, in the documents' order."""
        return self.pair_scores([(query, d) for d in docs], batch_size).tolist()
