"""Hybrid score fusion computed client-side exactly as neural-search 3.6 does it on the server, for many fusion
settings at once (numpy, float32 where the Java code uses float).

Server contract (neural-search 3.6.0.0, `processor/normalization`, `processor/combination`, `ScoreCombiner`):
- each sub-query of a hybrid query returns its own top hits per shard; normalization uses every shard's hits
  (min_max: global min and max, a score equal to the min becomes 0.001 and min == max == score gives 1.0; l2: the
  float32 sum of squares in hit order, then sqrt; z_score: mean and standard deviation in double as commons-math
  computes them, a normalized score <= 0 becomes 0.001; rrf: 1 / (rank_constant + rank + 1) rounded to 10
  decimals HALF_UP, the rank counted per shard on one shard, across shards by score on several);
- a document missing from a sub-query scores 0.0 there: arithmetic mean and RRF count that sub-query's weight
  (score >= 0), geometric and harmonic mean skip it (score <= 0);
- sub-query weights default to 1.0 when the processor sets none;
- hits are ordered by the combined score, per shard, then merged; ties are in Lucene doc-id order, which a client
  cannot see, so `fused_run` breaks them as trec_eval does (doc id descending) and comparisons with the server
  allow tied documents to swap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from opensearch_kit.errors import KitError

NORMALIZATIONS = ("min_max", "l2", "z_score")
COMBINATIONS = ("arithmetic_mean", "geometric_mean", "harmonic_mean")
RRF = "rrf"
# ScoreNormalizationFactory.COMBINATION_TECHNIQUE_FOR_NORMALIZATION_METHODS: z_score combines by arithmetic mean only
COMBINATIONS_FOR = {"min_max": COMBINATIONS, "l2": COMBINATIONS, "z_score": ("arithmetic_mean",)}
MIN_MAX_FLOOR = np.float32(0.001)  # MinMaxScoreNormalizationTechnique.MIN_SCORE
Z_SCORE_FLOOR = np.float32(0.001)  # ZScoreNormalizationTechnique.MIN_SCORE
F32 = np.float32


@dataclass(frozen=True)
class FusionPoint:
    """One fusion setting: a normalization technique and a combination technique with optional weights, or RRF
    (`normalization` "rrf", `combination` "rrf") with its rank constant."""

    normalization: str
    combination: str
    weights: tuple[float, ...] | None = None
    rank_constant: int | None = None

    def __post_init__(self) -> None:
        ok = self.combination in COMBINATIONS_FOR.get(self.normalization, ()) or (
            self.normalization == RRF == self.combination and self.rank_constant is not None
        )
        if not ok:
            raise KitError(
                f"unknown fusion {self.label}",
                "use min_max or l2 with an arithmetic, geometric or harmonic mean, z_score with the arithmetic mean, "
                "or rrf with a rank constant",
            )

    @property
    def family(self) -> tuple[str, str, int | None]:
        """What the point shares with every point that differs only in weights."""
        return (self.normalization, self.combination, self.rank_constant)

    @property
    def label(self) -> str:
        technique = (
            f"rrf(k={self.rank_constant})" if self.normalization == RRF else f"{self.normalization}+{self.combination}"
        )
        weights = ",".join(f"{w:g}" for w in self.weights) if self.weights else "unweighted"
        return f"{technique} [{weights}]"

    def to_dict(self) -> dict:
        return {
            "normalization": self.normalization,
            "combination": self.combination,
            "weights": list(self.weights) if self.weights else None,
            "rank_constant": self.rank_constant,
        }

    def processor(self) -> dict:
        """The phase_results processor that fuses this way (normalization-processor or score-ranker-processor)."""
        parameters = {"parameters": {"weights": list(self.weights)}} if self.weights else {}
        if self.normalization == RRF:
            return {
                "score-ranker-processor": {
                    "combination": {"technique": RRF, "rank_constant": self.rank_constant, **parameters}
                }
            }
        return {
            "normalization-processor": {
                "normalization": {"technique": self.normalization},
                "combination": {"technique": self.combination, **parameters},
            }
        }

    def pipeline(self, description: str = "") -> dict:
        """A search pipeline body holding only this fusion."""
        body = {"phase_results_processors": [self.processor()]}
        return {"description": description, **body} if description else body

    @classmethod
    def from_pipeline(cls, definition: Mapping) -> FusionPoint | None:
        """The fusion of a search pipeline's normalization or score-ranker processor (None if it has neither)."""
        for processor in definition.get("phase_results_processors") or []:
            if "normalization-processor" in processor:
                p = processor["normalization-processor"]
                combination = p.get("combination") or {}
                weights = (combination.get("parameters") or {}).get("weights")
                return cls(
                    (p.get("normalization") or {}).get("technique", "min_max"),
                    combination.get("technique", "arithmetic_mean"),
                    tuple(float(w) for w in weights) if weights else None,
                )
            if "score-ranker-processor" in processor:
                combination = processor["score-ranker-processor"].get("combination") or {}
                weights = (combination.get("parameters") or {}).get("weights")
                return cls(
                    RRF,
                    RRF,
                    tuple(float(w) for w in weights) if weights else None,
                    int(combination.get("rank_constant", 60)),
                )
        return None


@dataclass
class QueryHits:
    """Every sub-query's hits for one query: `lists[shard][signal]` = (doc ids, float32 scores) in hit order."""

    signals: tuple[str, ...]
    lists: list[list[tuple[list[str], np.ndarray]]]
    rows: list[tuple[int, str]] = field(init=False)  # (shard, doc id) of each matrix row
    present: np.ndarray = field(init=False)  # bool [rows, signals]
    raw: np.ndarray = field(init=False)  # float32 [rows, signals], 0 where absent

    def __post_init__(self) -> None:
        index: dict[tuple[int, str], int] = {}
        for shard, per_signal in enumerate(self.lists):
            for ids, _ in per_signal:
                for doc in ids:
                    index.setdefault((shard, doc), len(index))
        self.rows = list(index)
        self.present = np.zeros((len(index), len(self.signals)), dtype=bool)
        self.raw = np.zeros((len(index), len(self.signals)), dtype=F32)
        self._positions: list[list[np.ndarray]] = []  # [shard][signal] -> row of each hit, in hit order
        for shard, per_signal in enumerate(self.lists):
            positions = []
            for j, (ids, scores) in enumerate(per_signal):
                rows = np.array([index[(shard, doc)] for doc in ids], dtype=np.int64)
                self.present[rows, j] = True
                self.raw[rows, j] = scores
                positions.append(rows)
            self._positions.append(positions)

    @property
    def doc_ids(self) -> list[str]:
        return [doc for _, doc in self.rows]

    def normalized(self, technique: str, rank_constant: int | None = None) -> np.ndarray:
        """float32 [rows, signals]: each sub-query's scores after `technique` (0 where a document is absent)."""
        out = np.zeros_like(self.raw)
        for j in range(len(self.signals)):
            hits = [(s, rows) for s, per in enumerate(self._positions) if len(rows := per[j])]
            if not hits:
                continue
            ordered = np.concatenate([rows for _, rows in hits])  # shard order, then hit order
            scores = self.raw[ordered, j]
            if technique == "min_max":
                out[ordered, j] = _min_max(scores)
            elif technique == "l2":
                out[ordered, j] = _l2(scores)
            elif technique == "z_score":
                out[ordered, j] = _z_score(scores)
            elif technique == RRF:
                out[ordered, j] = _rrf(hits, self.raw[:, j], rank_constant)
            else:
                raise KitError(f"unknown normalization {technique!r}", f"use one of {', '.join(NORMALIZATIONS)}")
        return out


def _min_max(scores: np.ndarray) -> np.ndarray:
    low, high = scores.min(), scores.max()
    if high == low:  # the single-score case and calculateNormalizedScore's min == max case both give 1.0
        return np.ones_like(scores)
    normalized = (scores - low) / (high - low)
    return np.where(normalized == 0, MIN_MAX_FLOOR, normalized).astype(F32)


def _l2(scores: np.ndarray) -> np.ndarray:
    total = F32(0)
    for s in scores:  # float32 accumulation in hit order, as the Java loop does
        total = F32(total + s * s)
    norm = F32(math.sqrt(float(total)))
    return np.zeros_like(scores) if norm == 0 else (scores / norm).astype(F32)


def _z_score(scores: np.ndarray) -> np.ndarray:
    values = scores.astype(np.float64)
    n = len(values)
    mean = _commons_mean(values)
    if n > 1:
        deviations = values - mean
        accum, accum2 = 0.0, 0.0
        for d in deviations:  # commons-math Variance.evaluate (bias-corrected), summed in order
            accum += d * d
            accum2 += d
        std = math.sqrt((accum - accum2 * accum2 / n) / (n - 1.0))
    else:
        std = 0.0
    mean32, std32 = F32(mean), F32(std)
    if std32 == 0:
        return np.where(scores == mean32, scores.max(), scores.min()).astype(F32)
    normalized = ((scores - mean32) / std32).astype(F32)
    normalized = np.where(normalized <= 0, Z_SCORE_FLOOR, normalized)
    return np.where(scores == mean32, F32(scores.max()), normalized).astype(F32)


def _commons_mean(values: np.ndarray) -> float:
    """commons-math Mean.evaluate: sum / n plus the mean of the deviations (a correction term), in order."""
    total = 0.0
    for v in values:
        total += v
    mean = total / len(values)
    correction = 0.0
    for v in values:
        correction += v - mean
    return mean + correction / len(values)


def _rrf(hits: list[tuple[int, np.ndarray]], raw: np.ndarray, rank_constant: int) -> np.ndarray:
    """RRF scores of the hits of one sub-query, in the order of np.concatenate(rows of each shard)."""
    if len(hits) == 1:
        ranks = np.arange(len(hits[0][1]))
    else:  # global rank: score descending, then shard (Lucene doc ids are unknown here: hit order stands in)
        keyed = [(-float(raw[r]), shard, pos) for shard, rows in hits for pos, r in enumerate(rows)]
        order = sorted(range(len(keyed)), key=lambda i: keyed[i])
        ranks = np.empty(len(keyed), dtype=np.int64)
        ranks[order] = np.arange(len(keyed))
    return np.array([rrf_score(rank_constant, int(r)) for r in ranks], dtype=F32)


def rrf_score(rank_constant: int, rank: int) -> np.float32:
    """RRFNormalizationTechnique: BigDecimal 1 / (rank_constant + rank + 1), 10 decimals HALF_UP, floatValue."""
    value = (Decimal(1) / Decimal(rank_constant + rank + 1)).quantize(Decimal("1e-10"), rounding=ROUND_HALF_UP)
    return F32(float(value))


def combine(normalized: np.ndarray, combination: str, weights: np.ndarray | None) -> np.ndarray:
    """float32 [rows, points]: the combined score of every row for every weight vector (`weights` float32
    [points, signals]; None: every weight 1.0, one point). Sub-queries are added in order, in float32."""
    rows, signals = normalized.shape
    w = np.ones((1, signals), dtype=F32) if weights is None else np.asarray(weights, dtype=F32)
    acc = np.zeros((rows, len(w)), dtype=F32)
    total = np.zeros((rows, len(w)), dtype=F32)
    for j in range(signals):
        s = normalized[:, j : j + 1]
        wj = w[:, j]
        if combination in ("arithmetic_mean", RRF):
            acc = acc + s * wj
            total = total + np.broadcast_to(wj, acc.shape)
        elif combination == "geometric_mean":
            use = np.broadcast_to(s > 0, acc.shape)
            safe = np.where(s > 0, s, F32(1)).astype(np.float64)
            step = (acc.astype(np.float64) + wj.astype(np.float64) * np.log(safe)).astype(F32)
            acc = np.where(use, step, acc)
            total = np.where(use, total + wj, total)
        elif combination == "harmonic_mean":
            use = np.broadcast_to(s > 0, acc.shape)
            safe = np.where(s > 0, s, F32(1))
            acc = np.where(use, acc + wj / safe, acc)
            total = np.where(use, total + wj, total)
        else:
            raise KitError(f"unknown combination {combination!r}", f"use one of {', '.join(COMBINATIONS)} or rrf")
    with np.errstate(divide="ignore", invalid="ignore"):
        if combination == "arithmetic_mean":
            out = np.where(total == 0, F32(0), acc / total)
        elif combination == RRF:
            out = np.where(total == 0, F32(0), acc)
        elif combination == "geometric_mean":
            out = np.where(total == 0, F32(0), np.exp((acc / total).astype(F32).astype(np.float64)).astype(F32))
        else:
            out = np.where(acc > 0, total / acc, F32(0))
    return out.astype(F32)


def fuse(hits: QueryHits, point: FusionPoint) -> np.ndarray:
    """float32 [rows]: the combined score of each row of `hits` under `point`."""
    normalized = hits.normalized(point.normalization, point.rank_constant)
    weights = None if point.weights is None else np.array([point.weights], dtype=F32)
    return combine(normalized, point.combination, weights)[:, 0]


def fused_run(hits: QueryHits, point: FusionPoint, k: int) -> dict[str, float]:
    """{doc id: combined score} of the top k documents, as the hybrid query with `point`'s pipeline returns them
    (ties at the cut by doc id descending)."""
    scores = fuse(hits, point)
    return top_k(hits.doc_ids, scores, k)


def top_k(doc_ids: Sequence[str], scores: np.ndarray, k: int) -> dict[str, float]:
    """The k best (doc id, score) by score, ties by doc id descending (trec_eval's order)."""
    order = sorted(range(len(doc_ids)), key=lambda i: (float(scores[i]), doc_ids[i]), reverse=True)[:k]
    return {doc_ids[i]: float(scores[i]) for i in order}
