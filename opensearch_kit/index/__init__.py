"""Hybrid indexes: the record of what an index holds (`IndexMeta`, the one reader/writer of its `_meta`), the
options it is built with (`Chunking`, `Prune`, weights), and creating, describing and deleting it."""

from opensearch_kit.index.create import create_index, delete_index, index_info
from opensearch_kit.index.meta import FIELDS, Fields, IndexMeta
from opensearch_kit.index.options import Chunking, Prune, Seismic, parse_weights

__all__ = [
    "FIELDS",
    "Chunking",
    "Fields",
    "IndexMeta",
    "Prune",
    "Seismic",
    "create_index",
    "delete_index",
    "index_info",
    "parse_weights",
]
