"""Numeric parity between an original model and its export."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

LONG_EN = (
    "Neural sparse retrieval expands a passage into weighted vocabulary terms so that an inverted index "
    "can match synonyms and related words without dense vectors. "
)
LONG_KO = (
    "신경망 희소 검색은 문서를 가중치가 있는 어휘 용어로 확장하여 역색인이 동의어와 관련 단어를 찾을 수 있게 합니다. "
)
SAMPLE_TEXTS = [
    "what is neural sparse search?",
    "손해배상 청구",
    "OpenSearch hybrid search combines BM25 and dense vectors.",
    "한국어 형태소 분석과 검색 모델",
    LONG_EN * 40,  # past any max length: exercises truncation
    LONG_KO * 40,
]
# Reranker parity pairs each of these queries with every sample text. They end in a letter: the server tokenizes
# query and document apart, so a query ending in punctuation or spaces can pre-tokenize differently at its end
# than inside an LLM reranker's one-string prompt (see rerank_export).
RERANK_QUERIES = ["what is neural sparse search", "손해배상 청구 소송"]


@dataclass
class ParityResult:
    """How close an export is to the original on the sample texts."""

    name: str
    texts: int
    batch_sizes: list[int]
    max_abs_diff: float
    nonzero_mismatch: int  # tokens non-zero on one side only, whatever their weight
    nonzero_mismatch_above_tol: int  # such tokens whose weight exceeds the tolerance
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.nonzero_mismatch_above_tol == 0

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        return (
            f"{self.name}: {verdict} max|diff|={self.max_abs_diff:.2e} (tol {self.tolerance:g}), "
            f"non-zero mismatches {self.nonzero_mismatch} ({self.nonzero_mismatch_above_tol} above tol), "
            f"{self.texts} texts, batch sizes {self.batch_sizes}"
        )


def compare_sparse(name: str, reference: np.ndarray, runs: dict[int, np.ndarray], tol: float) -> ParityResult:
    """Compare the reference [n, vocab] weights with the export's, one run per batch size."""
    diff, mismatch, above = 0.0, 0, 0
    for got in runs.values():
        diff = max(diff, float(np.abs(got - reference).max()))
        differs = (got > 0) != (reference > 0)
        mismatch += int(differs.sum())
        above += int((differs & (np.maximum(got, reference) > tol)).sum())
    return ParityResult(name, len(reference), sorted(runs), diff, mismatch, above, tol)


@dataclass
class VectorParity:
    """How close exported embeddings (or scores, as 1-D vectors per item) are to the original's."""

    name: str
    items: int
    batch_sizes: list[int]
    min_cosine: float  # 1.0 for scores, which are compared by absolute difference only
    max_abs_diff: float
    min_cosine_required: float
    max_abs_diff_allowed: float

    @property
    def ok(self) -> bool:
        return self.min_cosine >= self.min_cosine_required and self.max_abs_diff <= self.max_abs_diff_allowed

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        return (
            f"{self.name}: {verdict} min cosine {self.min_cosine:.6f} (needs >= {self.min_cosine_required:g}), "
            f"max|diff|={self.max_abs_diff:.2e} (allowed {self.max_abs_diff_allowed:g}), "
            f"{self.items} items, batch sizes {self.batch_sizes}"
        )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two [n, dim] arrays."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-30)


def compare_vectors(
    name: str, reference: np.ndarray, runs: dict[int, np.ndarray], min_cosine: float, max_abs_diff: float = np.inf
) -> VectorParity:
    """Compare reference [n, dim] embeddings with the export's, one run per batch size."""
    cos = min(float(cosines(reference, got).min()) for got in runs.values())
    diff = max(float(np.abs(np.asarray(got) - reference).max()) for got in runs.values())
    return VectorParity(name, len(reference), sorted(runs), cos, diff, min_cosine, max_abs_diff)


def compare_scores(name: str, reference: np.ndarray, runs: dict[int, np.ndarray], tol: float) -> VectorParity:
    """Compare reference [n] scores with the export's, one run per batch size: |diff| <= tol."""
    diff = max(float(np.abs(np.asarray(got) - reference).max()) for got in runs.values())
    return VectorParity(name, len(reference), sorted(runs), 1.0, diff, 1.0, tol)


def batch_runs(runner, items: list) -> dict[int, np.ndarray]:
    """runner(items, batch_size) one item at a time and all in one padded batch."""
    return {bs: np.asarray(runner(items, bs)) for bs in (1, len(items))}
