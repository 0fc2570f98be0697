"""Search: the pure request builder (`query`: BM25, neural_sparse, knn / neural, hybrid with its pipelines,
rerank), the searcher that runs it against an index (`Searcher`) and its typed results (`results`)."""

from opensearch_kit.search.query import IndexConfig, QueryOptions, SeismicQuery, build_search
from opensearch_kit.search.results import Hit, SearchResult
from opensearch_kit.search.searcher import Searcher, local_dense_encoder, local_sparse_encoder

__all__ = [
    "Hit",
    "IndexConfig",
    "QueryOptions",
    "SearchResult",
    "Searcher",
    "SeismicQuery",
    "build_search",
    "local_dense_encoder",
    "local_sparse_encoder",
]
