"""Search: the pure request builder (`query`: BM25, neural_sparse, knn / neural, hybrid with its pipelines,
rerank) and the searcher that runs it against an index (`Searcher`)."""

from opensearch_kit.search.query import IndexConfig, QueryOptions, SeismicQuery, build_search
from opensearch_kit.search.searcher import Hit, Searcher, SearchResult, local_dense_encoder, local_sparse_encoder

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
