"""The offline choice (`tune.select`) on planted per-query scores: the guard keeps the untuned hybrid on noise, adopts
a fixed setting that truly gains, and adopts the per-query model when the best weights follow a query feature."""

from __future__ import annotations

import numpy as np
import pytest

from opensearch_kit.errors import KitError
from opensearch_kit.search.perquery import WeightModel, on_lattice
from opensearch_kit.tune.grid import fusion_grid, weight_grid
from opensearch_kit.tune.select import bootstrap_interval, folds_of, randomization_p, select

GRID = fusion_grid(3)
SIGNALS = ("bm25", "sparse", "dense")
WEIGHTS = np.array([p.weights for p in GRID])


def planted(gain_of_point, seed: int = 0, queries: int = 120):
    """Scores [queries, points] = 0.5 + gain_of_point(features) + noise, untuned = 0.5 + noise: a query's noise is
    mostly shared by every point (neighbouring settings rank alike), a little is the point's own."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(queries, 9))
    shared = rng.normal(0, 0.05, (queries, 1))
    matrix = 0.5 + shared + gain_of_point(features) + rng.normal(0, 0.01, (queries, len(GRID)))
    untuned = 0.5 + shared[:, 0] + rng.normal(0, 0.01, queries)
    return matrix, untuned, features


def test_statistics():
    rng = np.random.default_rng(0)
    assert randomization_p(rng.normal(0.03, 0.05, 100), 0) < 0.001
    assert randomization_p(rng.normal(0.0, 0.05, 100), 0) > 0.05
    assert randomization_p(np.zeros(10), 0) == 1.0
    low, high = bootstrap_interval(np.full(30, 0.02) + rng.normal(0, 0.01, 30), 0)
    assert low < 0.02 < high and high - low < 0.02
    parts = folds_of(23, 5, 1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(23)) and {len(p) for p in parts} == {4, 5}
    with pytest.raises(KitError, match="needs at least 5 dev queries"):
        folds_of(3, 5, 0)


def test_weights_land_on_the_grid_lattice():
    lattice = set(weight_grid(3))
    for raw in ([0.33, 0.33, 0.34], [-1.0, 0.5, 0.2], [0.0, 0.0, 0.0], [5.0, 1.0, 1.0]):
        assert on_lattice(np.array(raw)) in lattice
    model = WeightModel(SIGNALS, (0.0,) * 2, (1.0,) * 2, ((0.2, 0.3, 0.5), (0.1, 0, -0.1), (0, 0, 0)))
    assert model.predict(np.array([0.0, 0.0])) == (0.2, 0.3, 0.5)
    assert WeightModel.from_dict(model.to_dict()) == model


def test_the_guard_keeps_the_default_on_noise():
    matrix, untuned, features = planted(lambda f: np.zeros((len(f), len(GRID))))
    chosen, reason, _, selection = select(matrix, untuned, features, GRID, SIGNALS, 60, 5, 0, True)
    assert chosen == "default" and "kept the untuned hybrid" in reason
    assert len(selection["per_fold"]) == 5 and set(selection["held_out"]) == {"fixed", "per_query"}


def test_the_guard_adopts_a_real_fixed_gain_and_a_real_per_query_gain():
    best = GRID.index(next(p for p in GRID if p.normalization == "l2" and p.weights == (0.2, 0.2, 0.6)))
    fixed_gain = np.zeros(len(GRID))
    fixed_gain[best] = 0.05
    matrix, untuned, features = planted(lambda f: np.broadcast_to(fixed_gain, (len(f), len(GRID))))
    chosen, _, final, selection = select(matrix, untuned, features, GRID, SIGNALS, 60, 5, 0, False)
    assert chosen == "fixed" and final.fixed == best and selection["held_out"]["fixed"]["ci95"][0] > 0

    # the best weight follows the sign of the first feature: bm25 when positive, dense when negative
    matrix, untuned, features = planted(lambda f: 0.2 * np.where(f[:, :1] > 0, WEIGHTS[:, 0], WEIGHTS[:, 2]))
    chosen, _, final, selection = select(matrix, untuned, features, GRID, SIGNALS, 60, 5, 0, True)
    assert chosen == "per_query" and selection["cv"]["per_query"]["score"] > selection["cv"]["fixed"]["score"]
    held = selection["held_out"]["per_query"]
    assert held["gain"] > selection["held_out"]["fixed"]["gain"] and held["p_value"] < 0.05
