"""Dynamic int8 quantization of ONNX exports and its quality report."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic (weights int8, activations quantized at run time) quantization with onnxruntime."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return 1.0
    return float(np.corrcoef(ra, rb)[0, 1])


def sparse_quality(fp32: np.ndarray, int8: np.ndarray, k: int = 20) -> dict:
    """Top-k token overlap per text and the rank correlation of all text-pair dot-product scores vs fp32."""
    overlaps = []
    for a, b in zip(fp32, int8, strict=True):
        top_a, top_b = (
            set(np.argsort(-a)[:k][a[np.argsort(-a)[:k]] > 0]),
            set(np.argsort(-b)[:k][b[np.argsort(-b)[:k]] > 0]),
        )
        overlaps.append(len(top_a & top_b) / max(1, len(top_a)))
    iu = np.triu_indices(len(fp32), k=1)
    scores_fp32, scores_int8 = (fp32 @ fp32.T)[iu], (int8 @ int8.T)[iu]
    return {
        f"top{k}_overlap_mean": float(np.mean(overlaps)),
        f"top{k}_overlap_min": float(np.min(overlaps)),
        "score_spearman": _spearman(scores_fp32, scores_int8),
        "max_abs_diff": float(np.abs(fp32 - int8).max()),
    }
