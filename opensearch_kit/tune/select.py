"""Choosing a fusion that holds on unseen queries, offline over per-query scores (`grid.score_matrix`): k-fold
cross-validation of each way of choosing (the best fixed grid point; a per-query weights model), a one-sided paired
randomization test and bootstrap intervals against the untuned hybrid, and fitting the per-query model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from opensearch_kit.errors import KitError
from opensearch_kit.search.fusion import FusionPoint, QueryHits
from opensearch_kit.search.perquery import FEATURE_DEPTH, WeightModel, query_features

ALPHA = 0.05  # adopt a tuned choice only when its cross-validated gain has p < ALPHA
RESAMPLES = 10_000  # sign flips of the randomization test, resamples of the bootstrap
RIDGE = 10.0  # shrinkage of the weights model toward the mean target, in pseudo-queries
TEMPERATURE = 0.02  # metric units: how sharply a query's target weights follow its best-scoring weights
PROCEDURES = ("fixed", "per_query")


def folds_of(count: int, folds: int, seed: int) -> list[np.ndarray]:
    """`folds` disjoint index arrays covering range(count), in a seeded random order."""
    if folds < 2 or count < folds:
        raise KitError(
            f"{folds}-fold cross-validation needs at least {max(folds, 2)} dev queries, got {count}",
            "use fewer --folds (at least 2) or more dev queries",
        )
    order = np.random.default_rng(seed).permutation(count)
    return [np.sort(part) for part in np.array_split(order, folds)]


def randomization_p(diff: np.ndarray, seed: int) -> float:
    """One-sided p-value of a mean gain `diff` (per query) > 0: the share of random sign flips whose mean is at
    least the observed one (counting the observed, so never 0)."""
    diff = np.asarray(diff, dtype=np.float64)
    if not len(diff) or not diff.any():
        return 1.0
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(RESAMPLES, len(diff)))
    flipped = (signs * diff).mean(axis=1)
    return float((np.sum(flipped >= diff.mean() - 1e-12) + 1) / (RESAMPLES + 1))


def bootstrap_interval(diff: np.ndarray, seed: int) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of `diff` over queries."""
    diff = np.asarray(diff, dtype=np.float64)
    picks = np.random.default_rng(seed).integers(0, len(diff), size=(RESAMPLES, len(diff)))
    means = diff[picks].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def evidence(scores: np.ndarray, baseline: np.ndarray, seed: int) -> dict:
    """A choice's per-query scores against a baseline's (the untuned hybrid's): both means, the gain with its 95%
    interval, the p-value of a gain, and the number of queries."""
    diff = np.asarray(scores) - np.asarray(baseline)
    low, high = bootstrap_interval(diff, seed)
    return {
        "queries": len(diff),
        "score": float(np.mean(scores)),
        "baseline": float(np.mean(baseline)),
        "gain": float(diff.mean()),
        "ci95": [low, high],
        "p_value": randomization_p(diff, seed),
    }


def hits_features(hits: QueryHits, idfs: Sequence[float]) -> np.ndarray:
    """`perquery.query_features` from fetched sub-query hits (each signal's top FEATURE_DEPTH over every shard, as
    a search of that signal alone returns them)."""
    tops = []
    for j in range(len(hits.signals)):
        rows = np.flatnonzero(hits.present[:, j])
        ranked = sorted(rows, key=lambda r: (-float(hits.raw[r, j]), hits.rows[r][1]))[:FEATURE_DEPTH]
        tops.append([(hits.rows[r][1], float(hits.raw[r, j])) for r in ranked])
    return query_features(idfs, tops)


@dataclass
class Choices:
    """What each way of choosing picks from some queries' scores: the grid column of the best fixed point, and the
    per-query model (on that point's family) with the grid column it gives each query."""

    fixed: int
    model: WeightModel
    columns: np.ndarray  # [all queries]: the per-query model's column for each query


def choose(
    matrix: np.ndarray, features: np.ndarray, grid: list[FusionPoint], rows: np.ndarray, signals: tuple[str, ...]
) -> Choices:
    """Fit both ways of choosing on the queries `rows` of `matrix` [queries, points] (the first best point wins
    ties, so grid order breaks them), and apply the model to every query."""
    fixed = int(np.argmax(matrix[rows].mean(axis=0)))
    family = [i for i, p in enumerate(grid) if p.family == grid[fixed].family]
    weights = np.array([grid[i].weights for i in family])
    model = fit_weight_model(features[rows], matrix[np.ix_(rows, family)], weights, signals)
    column_of = {grid[i].weights: i for i in family}
    columns = np.array([column_of[model.predict(x)] for x in features])
    return Choices(fixed, model, columns)


def fit_weight_model(
    features: np.ndarray, scores: np.ndarray, weights: np.ndarray, signals: tuple[str, ...]
) -> WeightModel:
    """Ridge regression (intercept free) from standardized features to each query's target weights: the average of
    the weight vectors weighted by softmax(score / TEMPERATURE), each query counted by how much its weights matter
    (its best minus its worst score)."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    design = np.hstack([np.ones((len(features), 1)), (features - mean) / scale])
    soft = np.exp((scores - scores.max(axis=1, keepdims=True)) / TEMPERATURE)
    target = (soft / soft.sum(axis=1, keepdims=True)) @ weights
    importance = scores.max(axis=1) - scores.min(axis=1)
    if importance.sum() <= 0:
        importance = np.ones(len(scores))
    penalty = np.eye(design.shape[1]) * RIDGE * importance.mean()
    penalty[0, 0] = 0.0
    weighted = design * importance[:, None]
    coef = np.linalg.solve(design.T @ weighted + penalty, weighted.T @ target)
    return WeightModel(signals, tuple(mean), tuple(scale), tuple(tuple(map(float, row)) for row in coef))


def cross_validate(
    matrix: np.ndarray,
    untuned: np.ndarray,
    features: np.ndarray,
    grid: list[FusionPoint],
    signals: tuple[str, ...],
    folds: int,
    seed: int,
    procedures: tuple[str, ...] = PROCEDURES,
) -> dict:
    """Each way of choosing, fitted on the held-in folds of the dev queries (all rows of `matrix`) and scored on the
    held-out fold: per fold the held-out means and the fixed pick, and over all folds the out-of-fold evidence
    against the untuned hybrid (and, `per_query_vs_fixed`, of the per-query model against the fixed pick)."""
    out_of_fold = {name: np.zeros(len(matrix)) for name in procedures}
    per_fold = []
    for held in folds_of(len(matrix), folds, seed):
        inside = np.setdiff1d(np.arange(len(matrix)), held)
        picked = choose(matrix, features, grid, inside, signals)
        out_of_fold["fixed"][held] = matrix[held, picked.fixed]
        if "per_query" in procedures:
            out_of_fold["per_query"][held] = matrix[held, picked.columns[held]]
        per_fold.append(
            {
                "queries": len(held),
                "untuned": float(untuned[held].mean()),
                **{name: float(out_of_fold[name][held].mean()) for name in procedures},
                "fixed_setting": grid[picked.fixed].label,
            }
        )
    cv = {"folds": per_fold, **{name: evidence(out_of_fold[name], untuned, seed) for name in procedures}}
    if "per_query" in procedures:
        cv["per_query_vs_fixed"] = evidence(out_of_fold["per_query"], out_of_fold["fixed"], seed)
    return cv


def verdict(cv: dict, procedures: tuple[str, ...] = PROCEDURES) -> tuple[str, str]:
    """("default" | "fixed" | "per_query", why), on the cross-validated evidence: the per-query model when it beats
    both the untuned hybrid and the fixed setting with p < ALPHA (the more complex way must earn its place), else
    the fixed setting when it beats the untuned hybrid with p < ALPHA, else the untuned hybrid."""

    def significant(e: dict) -> bool:
        return e["gain"] > 0 and e["p_value"] < ALPHA

    def gain(name: str, e: dict) -> str:
        return f"{e['gain']:+.4f} over {name} (p = {e['p_value']:.4f})"

    fixed = cv["fixed"]
    per_query = ""
    if "per_query" in procedures:
        over_untuned, over_fixed = cv["per_query"], cv["per_query_vs_fixed"]
        per_query = f"; per-query model {gain('untuned', over_untuned)}, {gain('fixed', over_fixed)}"
        if significant(over_untuned) and significant(over_fixed):
            return (
                "per_query",
                f"cross-validated: per-query model {gain('untuned', over_untuned)}, {gain('fixed', over_fixed)}",
            )
    if significant(fixed):
        return "fixed", f"cross-validated: fixed setting {gain('untuned', fixed)}{per_query}"
    return (
        "default",
        f"kept the untuned hybrid (nothing significant at p < {ALPHA}): "
        f"fixed setting {gain('untuned', fixed)}{per_query}",
    )


def select(
    matrix: np.ndarray,
    untuned: np.ndarray,
    features: np.ndarray,
    grid: list[FusionPoint],
    signals: tuple[str, ...],
    dev: int,
    folds: int,
    seed: int,
    per_query: bool,
) -> tuple[str, str, Choices, dict]:
    """(chosen, why, both ways fitted on all dev queries, evidence): the first `dev` rows of `matrix` and `untuned`
    are the dev queries, the others held out. The evidence holds the cross-validation of each way of choosing (out of
    fold and per fold) and each one's final fit on the held-out queries, against the untuned hybrid."""
    procedures = PROCEDURES if per_query else ("fixed",)
    on_dev, on_held = np.arange(dev), np.arange(dev, len(matrix))
    cv = cross_validate(matrix[on_dev], untuned[on_dev], features[on_dev], grid, signals, folds, seed, procedures)
    chosen, reason = verdict(cv, procedures)
    final = choose(matrix, features, grid, on_dev, signals)
    columns = {"fixed": np.full(len(matrix), final.fixed), "per_query": final.columns}
    held_out = {name: evidence(matrix[on_held, columns[name][on_held]], untuned[on_held], seed) for name in procedures}
    selection = {
        "folds": folds,
        "alpha": ALPHA,
        "test": f"one-sided paired randomization test over queries ({RESAMPLES} sign flips)",
        "interval": f"95% percentile bootstrap over queries ({RESAMPLES} resamples)",
        "cv": {name: cv[name] for name in procedures},
        "cv_per_query_vs_fixed": cv.get("per_query_vs_fixed"),
        "per_fold": cv["folds"],
        "held_out": held_out,
    }
    return chosen, reason, final, selection
