"""The record of what an index was built with, kept in its mapping's `_meta.opensearch_kit`. `IndexMeta` is the
one reader and writer of that record: `index create` writes it, ingest, search, evaluation and `models` read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from opensearch_kit.errors import IndexNotFound, KitError
from opensearch_kit.index.options import Chunking, Prune, Seismic
from opensearch_kit.opensearch.transport import Transport

META_KEY = "opensearch_kit"
META_SCHEMA = 2  # 2: "reranker" (schema 1 called it "rerank" and repeated the query fields at the top)
# Key under which neural-search writes one vector per chunk when the processor's input is a list.
CHUNK_KEYS = {"sparse": "sparse_encoding", "dense": "knn"}


@dataclass(frozen=True)
class Fields:
    """Field names of an opensearch-kit index; `chunks` and `dense` are None when the index has none."""

    id: str = "doc_id"
    title: str = "title"
    text: str = "text"
    chunks: str | None = "text_chunks"
    metadata: str = "metadata"
    line: str = "source_line"
    sparse: str = "sparse_embedding"
    dense: str | None = "dense_embedding"


FIELDS = Fields()


@dataclass(frozen=True)
class ModelRef:
    """A model an index uses: its ML Commons id and the name it had when the index was made."""

    model_id: str
    model_name: str | None = None


@dataclass(frozen=True)
class SparseField:
    """The sparse vector field and the model that encodes it (None for vectors made by the client only)."""

    model_id: str | None
    model_name: str | None
    field: str
    type: str  # rank_features | sparse_vector
    format: str  # WORD (token strings) | TOKEN_ID (sparse_vector)
    nested_path: str | None  # set when chunked: one vector per chunk under `query_field`
    query_field: str
    prune: Prune | None = None
    # sparse_vector: the server's SEISMIC folds token ids into 15 bits (neural-search issue #1926), found by a
    # probe when the index was made; ids at or above `id_limit` cannot be stored or queried
    folds_ids: bool | None = None
    id_limit: int | None = None
    seismic: Seismic | None = None  # sparse_vector: the SEISMIC index parameters


@dataclass(frozen=True)
class DenseField:
    """The knn_vector field and the model that embeds it (None for vectors made by the client only)."""

    model_id: str | None
    model_name: str | None
    field: str
    dimension: int
    space_type: str
    engine: str
    nested_path: str | None
    query_field: str


@dataclass(frozen=True)
class IndexMeta:
    """What an index holds and was built with (the README's table lists the JSON keys)."""

    index: str
    language: str
    analyzer: str
    sparse: SparseField
    dense: DenseField | None = None
    reranker: ModelRef | None = None
    chunking: Chunking | None = None
    weights: tuple[float, ...] | None = None
    pipelines: dict[str, str] = field(default_factory=dict)  # role -> name (see index.create.pipeline_names)
    fields: Fields = FIELDS
    tuning: dict[str, Any] | None = None  # what `tune --apply` chose for the hybrid pipeline, and on what
    # what `tune --grid seismic --apply` chose for SEISMIC queries (top_n, heap_factor, k), and on what
    seismic_tuning: dict[str, Any] | None = None
    typed_fields: dict[str, str] = field(default_factory=dict)  # top-level typed fields of the source lines
    created_by: str = ""
    schema: int = META_SCHEMA

    def models(self) -> dict[str, str]:
        """kind (sparse, dense, reranker) -> model id, for the models the index uses."""
        refs = {"sparse": self.sparse, "dense": self.dense, "reranker": self.reranker}
        return {kind: ref.model_id for kind, ref in refs.items() if ref is not None and ref.model_id}

    def with_pipelines(self, pipelines: dict[str, str]) -> IndexMeta:
        return replace(self, pipelines=dict(pipelines))

    def to_dict(self) -> dict[str, Any]:
        """The `_meta.opensearch_kit` JSON."""
        sparse = asdict(self.sparse)
        chunking = self.chunking and {
            "algorithm": "fixed_token_length",
            "tokenizer": "standard",
            **asdict(self.chunking),
        }
        return {
            "schema": self.schema,
            "created_by": self.created_by,
            "index": self.index,
            "language": self.language,
            "analyzer": self.analyzer,
            "fields": asdict(self.fields),
            "sparse": sparse,
            "dense": asdict(self.dense) if self.dense else None,
            "reranker": asdict(self.reranker) if self.reranker else None,
            "chunking": chunking or None,
            "weights": list(self.weights) if self.weights is not None else None,
            "pipelines": dict(self.pipelines),
            "tuning": self.tuning,
            "seismic_tuning": self.seismic_tuning,
            "typed_fields": dict(self.typed_fields),
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> IndexMeta:
        """Read a `_meta.opensearch_kit` record of schema 1 or 2."""
        try:
            sparse = dict(record["sparse"])
            prune = sparse.pop("prune", None)
            seismic = sparse.pop("seismic", None)
            dense = record.get("dense")
            reranker = record.get("reranker", record.get("rerank"))
            chunking = record.get("chunking")
            weights = record.get("weights")
            return cls(
                index=record["index"],
                language=record["language"],
                analyzer=record["analyzer"],
                sparse=SparseField(
                    **sparse, prune=Prune(**prune) if prune else None, seismic=Seismic(**seismic) if seismic else None
                ),
                dense=DenseField(**dense) if dense else None,
                reranker=ModelRef(**reranker) if reranker else None,
                chunking=Chunking(chunking["token_limit"], chunking["overlap_rate"]) if chunking else None,
                weights=tuple(weights) if weights is not None else None,
                pipelines={str(k): str(v) for k, v in (record.get("pipelines") or {}).items() if v},
                fields=Fields(**record["fields"]),
                tuning=record.get("tuning"),
                seismic_tuning=record.get("seismic_tuning"),
                typed_fields=dict(record.get("typed_fields") or {}),
                created_by=record.get("created_by", ""),
                schema=record.get("schema", 1),
            )
        except (KeyError, TypeError) as e:
            raise KitError(
                f"the index's _meta.{META_KEY} record is incomplete or of an unknown schema ({e})",
                "recreate the index with this opensearch-kit (index delete, index create, ingest)",
            ) from e

    def write(self, transport: Transport) -> None:
        """Replace the index's `_meta.opensearch_kit` record with this one (other `_meta` keys are kept)."""
        mapping = transport.request("GET", f"/{self.index}/_mapping")
        meta = dict(next(iter(mapping.values()))["mappings"].get("_meta") or {})
        meta[META_KEY] = self.to_dict()
        transport.request("PUT", f"/{self.index}/_mapping", {"_meta": meta})

    @classmethod
    def read(cls, transport: Transport, index: str) -> IndexMeta:
        """The record of an index made by `create_index`; a KitError for a missing index or one not made by us."""
        try:
            mapping = transport.request("GET", f"/{index}/_mapping")
        except IndexNotFound as e:
            e.message = f"no index {index}"
            e.fix = f"create it: opensearch-kit index create {index} --sparse-model ID"
            raise
        record = next(iter(mapping.values()))["mappings"].get("_meta", {}).get(META_KEY)
        if not record:
            raise KitError(
                f"index {index} was not made by opensearch-kit (no _meta.{META_KEY})", "create it with index create"
            )
        return cls.from_dict(record)
