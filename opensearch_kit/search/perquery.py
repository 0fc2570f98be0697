"""Per-query hybrid weights: query features the kit has at query time and the small linear model `tune` fits on
them. A searcher with a model computes the features of each hybrid query (one term-statistics request and one
top-`FEATURE_DEPTH` search per sub-query), predicts the sub-query weights and sends them in an inline pipeline.

Features, in order: log(1 + number of analyzed query terms), the max and mean BM25 IDF of those terms, then per
sub-query the relative gap between its 1st and `FEATURE_DEPTH`th score, then per pair of sub-queries the share of
their top `FEATURE_DEPTH` documents they have in common."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from opensearch_kit.opensearch.transport import Transport

FEATURE_DEPTH = 10
WEIGHT_STEP = 0.1  # predicted weights land on the tuning grid's lattice


def term_idfs(transport: Transport, index: str, field: str, text: str) -> list[float]:
    """BM25 IDF of each analyzed term of `text` in `field` (term statistics of an artificial document; a term the
    index lacks has document frequency 0)."""
    body = {
        "doc": {field: text},
        "fields": [field],
        "term_statistics": True,
        "field_statistics": True,
        "positions": False,
        "offsets": False,
    }
    found = (transport.request("POST", f"/{index}/_termvectors", body).get("term_vectors") or {}).get(field) or {}
    docs = (found.get("field_statistics") or {}).get("doc_count", 0)
    frequencies = [term.get("doc_freq", 0) for term in (found.get("terms") or {}).values()]
    return [math.log(1 + (docs - df + 0.5) / (df + 0.5)) for df in frequencies]


def query_features(idfs: Sequence[float], tops: Sequence[Sequence[tuple[str, float]]]) -> np.ndarray:
    """float64 features of one query: its term IDFs and each sub-query's top hits ((doc id, score), best first)."""
    features = [math.log1p(len(idfs)), max(idfs, default=0.0), float(np.mean(idfs)) if idfs else 0.0]
    for top in tops:
        scores = [s for _, s in top[:FEATURE_DEPTH]]
        features.append((scores[0] - scores[-1]) / scores[0] if scores and scores[0] > 0 else 0.0)
    for a, b in itertools.combinations(tops, 2):
        features.append(len({d for d, _ in a[:FEATURE_DEPTH]} & {d for d, _ in b[:FEATURE_DEPTH]}) / FEATURE_DEPTH)
    return np.array(features, dtype=np.float64)


def on_lattice(weights: np.ndarray, step: float = WEIGHT_STEP) -> tuple[float, ...]:
    """Non-negative weights summing to 1 on a `step` lattice (negatives clipped, largest remainders rounded up;
    all zero: equal weights)."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0, None)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1 / len(w))
    units = round(1 / step)
    scaled = w * units
    counts = np.floor(scaled).astype(int)
    for i in np.argsort(-(scaled - counts), kind="stable")[: units - counts.sum()]:
        counts[i] += 1
    return tuple(round(int(c) * step, 10) for c in counts)


@dataclass(frozen=True)
class WeightModel:
    """Ridge regression from standardized query features to sub-query weights (`coef`: [1 + features][signals],
    the first row the intercept), its output put on the weight lattice."""

    signals: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[tuple[float, ...], ...]

    def predict(self, features: np.ndarray) -> tuple[float, ...]:
        z = (np.asarray(features, dtype=np.float64) - np.array(self.mean)) / np.array(self.scale)
        return on_lattice(np.concatenate([[1.0], z]) @ np.array(self.coef))

    def to_dict(self) -> dict:
        return {
            "signals": list(self.signals),
            "features": "log1p(terms), max idf, mean idf, top-10 gap per sub-query, top-10 overlap per pair",
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": [list(row) for row in self.coef],
        }

    @classmethod
    def from_dict(cls, record: Mapping) -> WeightModel:
        return cls(
            tuple(record["signals"]),
            tuple(record["mean"]),
            tuple(record["scale"]),
            tuple(tuple(row) for row in record["coef"]),
        )
