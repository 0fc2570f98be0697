"""Tune hybrid search: fuse sub-query hits client-side exactly as neural-search does (`fusion`), grid-search
normalization x combination x weights and RRF rank constants on dev queries (`grid`), report on held-out queries
and apply the winner to the index's hybrid pipeline (`run`)."""

from opensearch_kit.tune.fusion import FusionPoint, QueryHits, fused_run
from opensearch_kit.tune.grid import fusion_grid, split_queries
from opensearch_kit.tune.run import ServerCheck, TuneReport, apply_fusion, fetch_hits, frozen_searcher, tune

__all__ = [
    "FusionPoint",
    "QueryHits",
    "ServerCheck",
    "TuneReport",
    "apply_fusion",
    "fetch_hits",
    "frozen_searcher",
    "fused_run",
    "fusion_grid",
    "split_queries",
    "tune",
]
