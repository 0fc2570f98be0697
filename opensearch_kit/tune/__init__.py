"""Tune hybrid search: fuse sub-query hits client-side exactly as neural-search does (`fusion`), grid-search
normalization x combination x weights and RRF rank constants on dev queries (`grid`), report on held-out queries
and apply the winner to the index's hybrid pipeline (`run`); and grid SEISMIC's query knobs of a sparse_vector
index against recall and latency, recording the choice in the index (`seismic`)."""

from opensearch_kit.search.fusion import FusionPoint, QueryHits, fused_run
from opensearch_kit.tune.grid import fusion_grid, split_queries
from opensearch_kit.tune.run import ServerCheck, TuneReport, apply_fusion, fetch_hits, frozen_searcher, tune
from opensearch_kit.tune.seismic import SeismicTuneReport, tune_seismic

__all__ = [
    "FusionPoint",
    "QueryHits",
    "SeismicTuneReport",
    "ServerCheck",
    "TuneReport",
    "apply_fusion",
    "fetch_hits",
    "frozen_searcher",
    "fused_run",
    "fusion_grid",
    "split_queries",
    "tune",
    "tune_seismic",
]
