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
