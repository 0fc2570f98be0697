"""How close two models' outputs are: an export against its original (parity), a reduced-precision export against
fp32 (quality), the cluster against the export (token weights, vectors, scores)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


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


def batch_runs(runner, items: list, tick: Callable[[int], object] = lambda n: None) -> dict[int, np.ndarray]:
    """runner(items, batch_size) one item at a time and all in one padded batch; `tick(1)` after each of the
    len(items) + 1 runs."""
    alone = one_at_a_time(runner, items, tick)
    batched = np.asarray(runner(items, len(items)))
    tick(1)
    return {1: alone, len(items): batched}


def one_at_a_time(runner, items: list, tick: Callable[[int], object]) -> np.ndarray:
    """runner([item], 1) for each item, the rows stacked in item order; `tick(1)` after each."""
    rows = []
    for item in items:
        rows.append(np.asarray(runner([item], 1)))
        tick(1)
    return np.concatenate(rows)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two 1-D arrays (1.0 when either is constant)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return 1.0
    return float(np.corrcoef(ra, rb)[0, 1])


def dense_quality(reference: np.ndarray, reduced: np.ndarray) -> dict:
    """How an int8 / fp16 export's embeddings compare with the fp32 original's."""
    cos = cosines(reference, reduced)
    return {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}


def score_quality(reference: np.ndarray, reduced: np.ndarray) -> dict:
    """How an int8 / fp16 export's reranking scores compare with the fp32 original's."""
    return {"max_abs_diff": float(np.abs(reduced - reference).max()), "spearman": spearman(reference, reduced)}


def sparse_quality(fp32: np.ndarray, reduced: np.ndarray, k: int = 20) -> dict:
    """Top-k token overlap per text and the rank correlation of all text-pair dot-product scores vs fp32."""
    overlaps = []
    for a, b in zip(fp32, reduced, strict=True):
        top_a, top_b = (set(i for i in np.argsort(-v)[:k] if v[i] > 0) for v in (a, b))
        overlaps.append(len(top_a & top_b) / max(1, len(top_a)))
    iu = np.triu_indices(len(fp32), k=1)
    scores_fp32, scores_reduced = (fp32 @ fp32.T)[iu], (reduced @ reduced.T)[iu]
    return {
        f"top{k}_overlap_mean": float(np.mean(overlaps)),
        f"top{k}_overlap_min": float(np.min(overlaps)),
        "score_spearman": spearman(scores_fp32, scores_reduced),
        "max_abs_diff": float(np.abs(fp32 - reduced).max()),
    }


def compare_token_weights(got: list[dict[str, float]], want: list[dict[str, float]], tol: float) -> dict:
    """Same non-zero tokens (a token one side lacks may weigh at most `tol`), weights within `tol`."""
    max_diff, mismatched = 0.0, []
    for g, w in zip(got, want, strict=True):
        for token in g.keys() | w.keys():
            diff = abs(g.get(token, 0.0) - w.get(token, 0.0))
            max_diff = max(max_diff, diff)
            if (token in g) != (token in w) and diff > tol:
                mismatched.append(token)
    return {
        "texts": len(want),
        "max_abs_diff": max_diff,
        "token_mismatch": mismatched[:20],
        "tolerance": tol,
        "ok": max_diff <= tol and not mismatched,
    }
