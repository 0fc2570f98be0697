"""Torch-free local inference with exported ONNX models, exactly as the cluster computes: sparse vectors
(`SparseEncoder`), embeddings (`DenseEncoder`) and reranking scores (`Reranker`)."""

from opensearch_kit.runtime.dense import DenseEncoder
from opensearch_kit.runtime.reranker import Reranker
from opensearch_kit.runtime.sparse import SparseEncoder

__all__ = ["DenseEncoder", "Reranker", "SparseEncoder"]
