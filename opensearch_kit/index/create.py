"""Hybrid indexes: check the models, create the pipelines and the index, describe and delete them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from opensearchpy import OpenSearch

from opensearch_kit import __version__
from opensearch_kit.errors import KitError, ModelNotFound, NotFound
from opensearch_kit.index.bodies import (
    index_body,
    ingest_pipeline_body,
    pipeline_names,
    pipeline_path,
    search_pipeline_bodies,
    tuned_pipeline_name,
)
from opensearch_kit.index.fields import check_fields
from opensearch_kit.index.meta import CHUNK_KEYS, FIELDS, DenseField, IndexMeta, ModelRef, SparseField
from opensearch_kit.index.options import Chunking, Prune, Seismic, check_weights
from opensearch_kit.index.templates import load
from opensearch_kit.index.token_ids import check_sparse_vector
from opensearch_kit.opensearch.features import Features, additional_config, features
from opensearch_kit.opensearch.ml import SERVING, model_function
from opensearch_kit.opensearch.transport import Transport

SPARSE_TYPES = ("rank_features", "sparse_vector")
LUCENE_SPACES = ("l2", "cosinesimil", "innerproduct")
MODEL_KINDS = {"sparse": "SPARSE_ENCODING", "dense": "TEXT_EMBEDDING", "reranker": "TEXT_SIMILARITY"}


@dataclass
class IndexCreated:
    """What `create_index` made: the index's record, its mapping and the pipeline bodies by name."""

    meta: IndexMeta
    mapping: dict
    pipelines: dict[str, dict]

    @property
    def index(self) -> str:
        return self.meta.index

    def to_dict(self) -> dict:
        return {"index": self.index, "meta": self.meta.to_dict(), "mapping": self.mapping, "pipelines": self.pipelines}

    def summary(self) -> str:
        m = self.meta
        lines = [f"created index {m.index} ({m.language}, analyzer {m.analyzer}, sparse {m.sparse.type})"]
        if m.sparse.seismic:
            lines.append("SEISMIC: " + ", ".join(f"{k} {v}" for k, v in m.sparse.seismic.parameters().items()))
        if m.dense:
            lines.append(f"dense field: {m.dense.dimension} dims, {m.dense.space_type}, lucene hnsw")
        lines.append("pipelines: " + ", ".join(m.pipelines.values()))
        return "\n".join(lines)


def check_model(transport: Transport, model_id: str, kind: str) -> dict:
    """The ML Commons model `model_id` if it exists, serves, and is a `kind` model (sparse, dense, reranker)."""
    want = MODEL_KINDS[kind]
    try:
        model = transport.ml.get(model_id)
    except ModelNotFound as e:
        e.message = f"no model with id {model_id!r} in ML Commons"
        e.fix = "list the models' ids with: opensearch-kit models list"
        raise
    if model.get("model_state") == "DEPLOYING":  # ML Commons redeploying it after a node restart
        model = transport.ml.settled(model_id)
    name, state, algorithm = model.get("name", "?"), model.get("model_state"), model_function(model)
    if algorithm != want:
        raise KitError(
            f"model {model_id} ({name}) is a {algorithm} model, not {want} as the {kind} model must be",
            f"pass the id of a {want} model",
        )
    if state not in SERVING:
        raise KitError(
            f"model {model_id} ({name}) is {state}, not deployed",
            f"deploy it: POST /_plugins/_ml/models/{model_id}/_deploy",
        )
    return {**model, "model_id": model_id}


def dense_config(model: dict) -> tuple[int, str]:
    """Dimension and k-NN space type from a TEXT_EMBEDDING model's config (space type defaults to cosinesimil)."""
    config = model.get("model_config") or {}
    dimension = config.get("embedding_dimension")
    if not isinstance(dimension, int) or dimension < 1:
        raise KitError(
            f"model {model.get('name')} has no embedding_dimension in its model_config",
            "register it with model_config.embedding_dimension (opensearch-kit export dense writes it)",
        )
    space = additional_config(config).get("space_type", "cosinesimil")
    if space not in LUCENE_SPACES:
        raise KitError(f"space type {space!r} is not one the Lucene engine supports", f"use {', '.join(LUCENE_SPACES)}")
    return dimension, space


def check_language(feats: Features, language: str) -> str:
    """The analyzer for `language`, once its plugin is known to be installed."""
    languages = load("mappings/languages.json")
    if language not in languages:
        raise KitError(f"no analyzer for language {language!r}", f"use one of {', '.join(languages)}")
    plugin = languages[language]["plugin"]
    if plugin and plugin not in feats.plugins:
        fix = f"bin/opensearch-plugin install {plugin}"
        if feats.version < (3,):
            fix += " (opensearch-kit's local 2.19 node has none: Maven Central's nori is built for 3.x)"
        raise KitError(f"language {language} needs the {plugin} plugin", fix)
    return languages[language]["analyzer"]


def create_index(
    cluster: Transport | OpenSearch,
    index: str,
    sparse_model: str,
    *,
    dense_model: str | None = None,
    reranker_model: str | None = None,
    language: str = "en",
    chunking: Chunking | None = None,
    sparse_type: str = "rank_features",
    prune: Prune | None = None,
    seismic: Seismic | None = None,
    weights: tuple[float, ...] | list[float] | None = None,
    shards: int = 1,
    batch_size: int = 16,
    fields: Mapping[str, str] | None = None,
    sparse_encoder: Path | None = None,
) -> IndexCreated:
    """Create the ingest and search pipelines and the index, all rendered from the templates.

    The models must exist, be deployed and be of the right kind. `fields` ({name: type}) are keys of the source
    lines indexed as top-level typed fields. A sparse_vector field is refused for a sparse model whose vocabulary
    the server's SEISMIC cannot hold (read from `sparse_encoder`, the model's export, when given). The index's
    `_meta.opensearch_kit` records what it was built with (`IndexMeta`). Nothing is left behind when a step fails.
    `seismic`: the SEISMIC index parameters of a sparse_vector field (default `Seismic()`).
    """
    transport = Transport.of(cluster)
    if sparse_type not in SPARSE_TYPES:
        raise KitError(f"unknown sparse field type {sparse_type!r}", f"use one of {', '.join(SPARSE_TYPES)}")
    feats = features(transport)
    if sparse_type == "sparse_vector":
        feats.require("sparse_vector")
    if seismic is not None and sparse_type != "sparse_vector":
        raise KitError("SEISMIC parameters apply to sparse_vector fields only", "add --sparse-type sparse_vector")
    if sparse_type == "sparse_vector":
        seismic = seismic or Seismic()
    if weights is not None:
        check_weights(tuple(weights))
    check_fields(fields or {})
    if transport.exists(f"/{index}"):
        raise KitError(f"index {index} already exists", f"delete it first: opensearch-kit index delete {index}")
    analyzer = check_language(feats, language)
    models = {"sparse": check_model(transport, sparse_model, "sparse")}
    ids = check_sparse_vector(transport, models["sparse"], sparse_encoder) if sparse_type == "sparse_vector" else None
    if dense_model:
        models["dense"] = check_model(transport, dense_model, "dense")
    if reranker_model:
        models["reranker"] = check_model(transport, reranker_model, "reranker")

    names = pipeline_names(index)
    if sparse_type == "sparse_vector":
        names.pop("two_phase")  # neural-search rejects two-phase queries on SEISMIC fields
    if not reranker_model:
        names.pop("rerank")
    for role, feature in (("hybrid_zscore", "z_score"), ("rrf", "rrf")):
        if not feats.has(feature):
            names.pop(role)  # the cluster has no such processor: searches needing it are refused by name
    meta = build_meta(index, language, analyzer, models, chunking, sparse_type, prune, weights, names, seismic)
    meta = replace(meta, typed_fields=dict(fields or {}))
    if ids:
        meta = replace(meta, sparse=replace(meta.sparse, folds_ids=ids[0], id_limit=ids[1]))
    body = index_body(meta, shards)
    searches = search_pipeline_bodies(meta, rrf_weights=feats.has("rrf_weights"))
    pipelines = {names["ingest"]: ingest_pipeline_body(meta, batch_size), **searches}
    roles = {name: role for role, name in names.items()}
    try:
        for name, pipeline in pipelines.items():
            transport.request("PUT", pipeline_path(roles[name], name), pipeline)
        transport.request("PUT", f"/{index}", body)
    except BaseException:
        delete_pipelines(transport, index)
        raise
    return IndexCreated(meta, body, pipelines)


def build_meta(
    index: str,
    language: str,
    analyzer: str,
    models: dict[str, dict],
    chunking: Chunking | None,
    sparse_type: str,
    prune: Prune | None,
    weights: Any,
    names: dict[str, str],
    seismic: Seismic | None = None,
) -> IndexMeta:
    """The record of a new index."""
    chunked = chunking is not None

    def vector(kind: str, field: str) -> dict:
        return {
            "model_id": models[kind]["model_id"],
            "model_name": models[kind].get("name"),
            "field": field,
            "nested_path": field if chunked else None,
            "query_field": f"{field}.{CHUNK_KEYS[kind]}" if chunked else field,
        }

    sparse = SparseField(
        **vector("sparse", FIELDS.sparse),
        type=sparse_type,
        format="TOKEN_ID" if sparse_type == "sparse_vector" else "WORD",
        prune=prune,
        seismic=seismic,
    )
    dense = None
    if "dense" in models:
        dimension, space = dense_config(models["dense"])
        dense = DenseField(**vector("dense", FIELDS.dense), dimension=dimension, space_type=space, engine="lucene")
    reranker = models.get("reranker")
    return IndexMeta(
        index=index,
        language=language,
        analyzer=analyzer,
        sparse=sparse,
        dense=dense,
        reranker=ModelRef(reranker["model_id"], reranker.get("name")) if reranker else None,
        chunking=chunking,
        weights=tuple(weights) if weights is not None else None,
        pipelines=names,
        fields=replace(FIELDS, chunks=FIELDS.chunks if chunked else None, dense=FIELDS.dense if dense else None),
        created_by=f"opensearch-kit {__version__}",
    )


@dataclass
class IndexInfo:
    """What an index holds: its record, document count, which of its pipelines exist, and its models' states."""

    meta: IndexMeta
    documents: int
    pipelines: dict[str, bool]
    models: dict[str, str]

    def to_dict(self) -> dict:
        return {
            "index": self.meta.index,
            "documents": self.documents,
            "pipelines": self.pipelines,
            "models": self.models,
            "meta": self.meta.to_dict(),
        }

    def summary(self) -> str:
        m = self.meta
        lines = [
            f"{m.index}: {self.documents} documents, language {m.language} ({m.analyzer})",
            f"sparse: {m.sparse.type} {m.sparse.field} <- model {m.sparse.model_id}",
        ]
        if m.sparse.id_limit:
            lines.append(f"sparse token ids below {m.sparse.id_limit} (this server's SEISMIC folds larger ones)")
        if m.dense:
            lines.append(
                f"dense: {m.dense.field} {m.dense.dimension} dims {m.dense.space_type} <- model {m.dense.model_id}"
            )
        if m.chunking:
            lines.append(f"chunking: {m.chunking.token_limit} tokens, overlap {m.chunking.overlap_rate}")
        if m.typed_fields:
            lines.append("typed fields: " + ", ".join(f"{name} ({kind})" for name, kind in m.typed_fields.items()))
        lines.append("models: " + ", ".join(f"{i} {state}" for i, state in self.models.items()))
        lines.append("pipelines: " + ", ".join(f"{p}{'' if ok else ' (MISSING)'}" for p, ok in self.pipelines.items()))
        return "\n".join(lines)


def index_info(cluster: Transport | OpenSearch, index: str) -> IndexInfo:
    """The record, document count, pipelines and model states of an index made by `create_index`."""
    transport = Transport.of(cluster)
    meta = IndexMeta.read(transport, index)
    count = transport.request("GET", f"/{index}/_count")["count"]
    pipelines = {name: transport.exists(pipeline_path(role, name)) for role, name in meta.pipelines.items()}
    models = {}
    for model_id in meta.models().values():
        try:
            models[model_id] = transport.ml.get(model_id).get("model_state")
        except ModelNotFound:
            models[model_id] = "MISSING"
    return IndexInfo(meta, count, pipelines, models)


def delete_pipelines(transport: Transport, index: str) -> list[str]:
    """Delete every pipeline named after `index` (the tuned one too); the names of those that existed."""
    deleted = []
    for role, name in {**pipeline_names(index), "hybrid_tuned": tuned_pipeline_name(index)}.items():
        try:
            transport.request("DELETE", pipeline_path(role, name))
            deleted.append(name)
        except NotFound:
            pass
    return deleted


@dataclass
class IndexDeleted:
    """What `delete_index` removed."""

    index: str
    deleted: bool  # whether the index existed
    pipelines: list[str]

    def to_dict(self) -> dict:
        return {"index": self.index, "deleted": self.deleted, "pipelines": self.pipelines}

    def summary(self) -> str:
        return f"deleted {self.index} and pipelines {', '.join(self.pipelines) or '(none)'}"


def delete_index(cluster: Transport | OpenSearch, index: str, *, missing_ok: bool = False) -> IndexDeleted:
    """Delete an index made by opensearch-kit and its pipelines (the models stay); an index it did not make is
    refused. `missing_ok`: a missing index is no error (its leftover pipelines are still deleted)."""
    transport = Transport.of(cluster)
    try:
        IndexMeta.read(transport, index)
    except KitError:
        if not (missing_ok and not transport.exists(f"/{index}")):
            raise
    try:
        transport.request("DELETE", f"/{index}")
        existed = True
    except NotFound:
        existed = False
    return IndexDeleted(index, existed, delete_pipelines(transport, index))
