"""Sparse-vector pruning exactly as neural-search's sparse_encoding processor applies it (PruneUtils, float32)."""

from __future__ import annotations

from dataclasses import dataclass

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
