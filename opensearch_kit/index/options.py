"""What an index is built with, parsed from the user's specs: chunking, pruning (applied exactly as neural-search's
sparse_encoding processor does, PruneUtils in float32) and hybrid weights."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from opensearch_kit.errors import KitError

PRUNE_TYPES = ("top_k", "alpha_mass", "max_ratio", "abs_value")


@dataclass(frozen=True)
class Prune:
    """`prune_type` and `prune_ratio` of the sparse_encoding processor."""

    type: str
    ratio: float

    def __post_init__(self) -> None:
        ok = {
            "top_k": self.ratio > 0 and float(self.ratio).is_integer(),
            "alpha_mass": 0 <= self.ratio < 1,
            "max_ratio": 0 <= self.ratio < 1,
            "abs_value": self.ratio >= 0,
        }.get(self.type)
        if ok is None:
            raise KitError(f"unknown prune type {self.type!r}", f"use one of {', '.join(PRUNE_TYPES)}")
        if not ok:
            raise KitError(
                f"prune ratio {self.ratio} is invalid for {self.type}",
                "top_k takes a positive integer, max_ratio and alpha_mass [0, 1), abs_value >= 0",
            )

    @classmethod
    def parse(cls, spec: str) -> Prune:
        """`TYPE:RATIO`, e.g. `max_ratio:0.1` or `top_k:64`."""
        kind, _, ratio = spec.partition(":")
        try:
            return cls(kind, float(ratio))
        except ValueError as e:
            raise KitError(f"bad prune spec {spec!r}", "write TYPE:RATIO, e.g. max_ratio:0.1") from e

    def apply(self, weights: dict[str, float]) -> dict[str, float]:
        """The entries the cluster keeps, compared in float32 as the Java code does."""
        import numpy as np

        if not weights:
            return weights
        keys = list(weights)
        vals = np.array([weights[k] for k in keys], dtype=np.float32)
        ratio = np.float32(self.ratio)
        if self.type == "top_k":
            keep = np.argsort(-vals, kind="stable")[: int(self.ratio)]
        elif self.type == "max_ratio":
            keep = np.flatnonzero(vals >= ratio * vals.max())
        elif self.type == "abs_value":
            keep = np.flatnonzero(vals >= ratio)
        else:  # alpha_mass: the largest weights while their running float32 sum stays within alpha * total
            order = np.argsort(-vals, kind="stable")
            total = np.float32(vals.sum(dtype=np.float64))
            running = np.cumsum(vals[order], dtype=np.float32)
            keep = order[running <= ratio * total]
        return {keys[i]: weights[keys[i]] for i in sorted(keep)}


@dataclass(frozen=True)
class Seismic:
    """Index parameters of a SEISMIC `sparse_vector` field (neural-search `method.parameters`). None leaves a
    parameter to neural-search: n_postings then is max(0.0005 x segment documents, 160). The kit's own default
    approximate_threshold (neural-search's is 1,000,000 documents per segment, so smaller indexes never use the
    ANN structures) comes from scripts/bench_scale.py: see the README's "Sizing a cluster"."""

    n_postings: int | None = None
    cluster_ratio: float | None = None
    summary_prune_ratio: float | None = None
    approximate_threshold: int | None = 5000

    def __post_init__(self) -> None:
        bad = [
            (self.n_postings is not None and self.n_postings < 1, "n_postings must be a positive integer"),
            (self.cluster_ratio is not None and not 0 < self.cluster_ratio < 1, "cluster_ratio must be in (0, 1)"),
            (
                self.summary_prune_ratio is not None and not 0 < self.summary_prune_ratio <= 1,
                "summary_prune_ratio must be in (0, 1]",
            ),
            (
                self.approximate_threshold is not None and self.approximate_threshold < 0,
                "approximate_threshold must be 0 or more",
            ),
        ]
        problems = [message for failed, message in bad if failed]
        if problems:
            raise KitError(f"bad SEISMIC parameters: {'; '.join(problems)}", "see index create --help")

    def parameters(self) -> dict[str, int | float]:
        """The mapping's `method.parameters`: the parameters that are set."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Chunking:
    """The text_chunking processor's fixed_token_length algorithm (standard tokenizer)."""

    token_limit: int = 384
    overlap_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.token_limit < 1 or not 0 <= self.overlap_rate <= 0.5:
            raise KitError(
                f"bad chunking {self.token_limit}:{self.overlap_rate}",
                "token limit >= 1 and overlap rate in [0, 0.5], e.g. --chunking 384:0.1",
            )

    @classmethod
    def parse(cls, spec: str) -> Chunking:
        """`TOKEN_LIMIT[:OVERLAP_RATE]`, e.g. `384` or `256:0.2`."""
        limit, _, overlap = spec.partition(":")
        try:
            return cls(int(limit), float(overlap or 0))
        except ValueError as e:
            raise KitError(f"bad chunking spec {spec!r}", "write TOKEN_LIMIT[:OVERLAP_RATE], e.g. 384:0.1") from e


WEIGHT_SUM_TOLERANCE = 0.01  # neural-search ScoreCombinationUtil.DELTA_FOR_WEIGHTS_ASSERTION


def parse_weights(spec: str | None) -> tuple[float, ...] | None:
    """`0.3,0.7` -> (0.3, 0.7): hybrid sub-query weights, each in [0, 1], summing to 1 (None for None)."""
    if spec is None:
        return None
    try:
        weights = tuple(float(w) for w in spec.split(",") if w.strip())
    except ValueError as e:
        raise KitError(f"bad weights {spec!r}", "write numbers separated by commas, e.g. 0.3,0.7") from e
    check_weights(weights)
    return weights


def check_weights(weights: tuple[float, ...] | list[float], source: str = "weights") -> None:
    """Each weight in [0, 1] and a sum of 1, as OpenSearch requires."""
    if (
        not weights
        or any(not 0.0 <= w <= 1.0 for w in weights)
        or not math.isclose(sum(weights), 1.0, abs_tol=WEIGHT_SUM_TOLERANCE)
    ):
        raise KitError(
            f"{source} {list(weights)}: OpenSearch requires each weight in [0, 1] and a sum of 1.0",
            "scale the weights so they add up to 1",
        )


TOP_N = 20  # the kit's SEISMIC query defaults (neural-search's top_n is 10): README "SEISMIC"
HEAP_FACTOR = 1.0


@dataclass(frozen=True)
class SeismicQuery:
    """SEISMIC query knobs (neural_sparse `method_parameters` on a sparse_vector field): the `top_n` heaviest
    query tokens pick the posting lists, `heap_factor` (> 1: more clusters visited, better recall, slower), and `k`
    candidates per segment, never fewer than the request's depth (so an evaluation at k=100 is not cut at
    neural-search's default 10). A knob left None comes from the index's tuned setting (`over`), else the kit
    default: TOP_N, HEAP_FACTOR, k the depth. scripts/bench_scale.py measures the defaults."""

    top_n: int | None = None
    heap_factor: float | None = None
    k: int | None = None

    def __post_init__(self) -> None:
        bad = (
            (self.top_n is not None and self.top_n < 1)
            or (self.heap_factor is not None and self.heap_factor <= 0)
            or (self.k is not None and self.k < 1)
        )
        if bad:
            raise KitError(
                f"bad SEISMIC query parameters {self}", "top_n and k take integers >= 1, heap_factor a number > 0"
            )

    def over(self, base: SeismicQuery | None) -> SeismicQuery:
        """These knobs, each one left None taken from `base` (the index's tuned setting)."""
        if base is None:
            return self
        return replace(base, **{name: value for name, value in asdict(self).items() if value is not None})

    def method_parameters(self, depth: int) -> dict:
        return {
            "top_n": TOP_N if self.top_n is None else self.top_n,
            "heap_factor": HEAP_FACTOR if self.heap_factor is None else self.heap_factor,
            "k": max(self.k or depth, depth),
        }
