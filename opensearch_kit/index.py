"""Hybrid indexes: check the models, render and create the pipelines and the index, describe and delete them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, TransportError

from opensearch_kit import __version__
from opensearch_kit.errors import KitError
from opensearch_kit.prune import Prune
from opensearch_kit.templates import load, render

ML_MODELS = "/_plugins/_ml/models"
META_KEY = "opensearch_kit"
META_SCHEMA = 1
SPARSE_TYPES = ("rank_features", "sparse_vector")
LUCENE_SPACES = ("l2", "cosinesimil", "innerproduct")
# Pipeline role -> normalization technique; "hybrid" (min-max) is the role the query builder uses by default.
NORMALIZATIONS = {"hybrid": "min_max", "hybrid_l2": "l2", "hybrid_zscore": "z_score"}
MODEL_KINDS = {"sparse": "SPARSE_ENCODING", "dense": "TEXT_EMBEDDING", "rerank": "TEXT_SIMILARITY"}
SERVING = ("DEPLOYED", "PARTIALLY_DEPLOYED")
# Key under which neural-search writes one vector per chunk when the processor's input is a list.
CHUNK_KEYS = {"sparse": "sparse_encoding", "dense": "knn"}


@dataclass(frozen=True)
class Fields:
    """Field names of every opensearch-kit index (recorded in `_meta`, so readers need not assume them)."""

    id: str = "doc_id"
    title: str = "title"
    text: str = "text"
    chunks: str = "text_chunks"
    metadata: str = "metadata"
    line: str = "source_line"
    sparse: str = "sparse_embedding"
    dense: str = "dense_embedding"


FIELDS = Fields()


@dataclass(frozen=True)
class Chunking:
    """The text_chunking processor's fixed_token_length algorithm (standard tokenizer)."""

    token_limit: int = 384
    overlap_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.token_limit < 1 or not 0 <= self.overlap_rate <= 0.5:
            raise KitError(
                f"bad chunking {self.token_limit}:{self.overlap_rate}",
                "token limit >= 1 and overlap rate in [0, 0.5], e.g. --chunking 384:0.1",
            )

    @classmethod
    def parse(cls, spec: str) -> Chunking:
        """`TOKEN_LIMIT[:OVERLAP_RATE]`, e.g. `384` or `256:0.2`."""
        limit, _, overlap = spec.partition(":")
        try:
            return cls(int(limit), float(overlap or 0))
        except ValueError as e:
            raise KitError(f"bad chunking spec {spec!r}", "write TOKEN_LIMIT[:OVERLAP_RATE], e.g. 384:0.1") from e


def pipeline_names(index: str) -> dict[str, str]:
    """The deterministic names of an index's pipelines (two_phase and rerank exist only when applicable)."""
    return {
        "ingest": f"{index}-ingest",
        "hybrid": f"{index}-hybrid-minmax",
        "hybrid_l2": f"{index}-hybrid-l2",
        "hybrid_zscore": f"{index}-hybrid-zscore",
        "rrf": f"{index}-rrf",
        "two_phase": f"{index}-two-phase",
        "rerank": f"{index}-rerank",
    }


def request(client: OpenSearch, method: str, path: str, body: Any = None, params: dict | None = None) -> Any:
    """A REST call whose failure becomes a KitError quoting the cluster's reason."""
    try:
        return client.transport.perform_request(method, path, body=body, params=params)
    except NotFoundError:
        raise
    except TransportError as e:
        raise KitError(f"{method} {path} failed ({e.status_code}): {reason(e)}", "see the cluster's reason") from e


def reason(e: TransportError) -> str:
    """The innermost readable reason of a cluster error."""
    info = e.info if isinstance(e.info, dict) else {}
    err = info.get("error", e.error)
    if isinstance(err, dict):
        root = (err.get("root_cause") or [err])[0]
        return f"{root.get('type', '')}: {root.get('reason', err)}"
    return str(err)


def check_model(client: OpenSearch, model_id: str, kind: str) -> dict:
    """The ML Commons model `model_id` if it exists, serves, and is a `kind` model ("sparse", "dense", "rerank")."""
    want = MODEL_KINDS[kind]
    try:
        model = request(client, "GET", f"{ML_MODELS}/{model_id}")
    except NotFoundError as e:
        raise KitError(
            f"no model with id {model_id!r} in ML Commons", "list the models' ids with GET /_plugins/_ml/models/_search"
        ) from e
    name, state, algorithm = model.get("name", "?"), model.get("model_state"), model.get("algorithm")
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
    space = (config.get("additional_config") or {}).get("space_type", "cosinesimil")
    if space not in LUCENE_SPACES:
        raise KitError(f"space type {space!r} is not one the Lucene engine supports", f"use {', '.join(LUCENE_SPACES)}")
    return dimension, space


def cluster_version(client: OpenSearch) -> tuple[int, ...]:
    return tuple(int(p) for p in client.info()["version"]["number"].split("-")[0].split("."))


def check_language(client: OpenSearch, language: str) -> str:
    """The analyzer for `language`, once its plugin is known to be installed."""
    languages = load("mappings/languages.json")
    if language not in languages:
        raise KitError(f"no analyzer for language {language!r}", f"use one of {', '.join(languages)}")
    plugin = languages[language]["plugin"]
    if plugin and plugin not in {p["component"] for p in client.cat.plugins(format="json")}:
        raise KitError(f"language {language} needs the {plugin} plugin", f"bin/opensearch-plugin install {plugin}")
    return languages[language]["analyzer"]


def vector_mapping(inner: dict, chunked: bool, key: str) -> dict:
    """A vector field's mapping; with chunking, nested, one vector per chunk under `key`."""
    return render("mappings/fields/nested.json", key=key, inner=inner) if chunked else inner


def create_index(
    client: OpenSearch,
    index: str,
    sparse_model: str,
    dense_model: str | None = None,
    rerank_model: str | None = None,
    language: str = "en",
    chunking: Chunking | None = None,
    sparse_type: str = "rank_features",
    prune: Prune | None = None,
    weights: list[float] | None = None,
    shards: int = 1,
    batch_size: int = 16,
) -> dict:
    """Create the ingest and search pipelines and the index, all rendered from the templates.

    The models must exist, be deployed and be of the right kind. The index's `_meta.opensearch_kit` records what
    it was built with (see `index_meta`). Returns {"index", "meta", "mapping", "pipelines": {name: body}}.
    """
    if sparse_type not in SPARSE_TYPES:
        raise KitError(f"unknown sparse field type {sparse_type!r}", f"use one of {', '.join(SPARSE_TYPES)}")
    if sparse_type == "sparse_vector" and cluster_version(client) < (3, 3):
        raise KitError("sparse_vector (SEISMIC) fields need OpenSearch 3.3+", "use --sparse-type rank_features")
    if weights is not None and abs(sum(weights) - 1) > 0.01:
        raise KitError(f"weights {weights} do not sum to 1", "give one weight per hybrid sub-query, summing to 1")
    if client.indices.exists(index=index):
        raise KitError(f"index {index} already exists", f"delete it first: opensearch-kit index delete {index}")
    analyzer = check_language(client, language)
    models = {"sparse": check_model(client, sparse_model, "sparse")}
    if dense_model:
        models["dense"] = check_model(client, dense_model, "dense")
    if rerank_model:
        models["rerank"] = check_model(client, rerank_model, "rerank")

    names = pipeline_names(index)
    if sparse_type == "sparse_vector":
        names.pop("two_phase")  # neural-search rejects two-phase queries on SEISMIC fields
    if not rerank_model:
        names.pop("rerank")
    meta = build_meta(index, language, analyzer, models, chunking, sparse_type, prune, weights, names)
    body = index_body(meta, shards)
    pipelines = {names["ingest"]: ("_ingest/pipeline", ingest_pipeline_body(index, meta, batch_size))}
    pipelines.update({n: ("_search/pipeline", b) for n, b in search_pipeline_bodies(index, meta).items()})
    try:
        for name, (kind, pipeline) in pipelines.items():
            request(client, "PUT", f"/{kind}/{name}", pipeline)
        request(client, "PUT", f"/{index}", body)
    except BaseException:
        delete_pipelines(client, index)
        raise
    return {"index": index, "meta": meta, "mapping": body, "pipelines": {n: p for n, (_, p) in pipelines.items()}}


def index_body(meta: dict, shards: int = 1) -> dict:
    """Settings and mappings of an index, rendered from its `_meta` record."""
    chunked, dense = meta["chunking"] is not None, meta["dense"]
    sparse = render(f"mappings/fields/{meta['sparse']['type']}.json")
    knn = dense and render(
        "mappings/fields/knn_vector.json", dimension=dense["dimension"], space_type=dense["space_type"]
    )
    return render(
        "mappings/index.json",
        shards=shards,
        knn=True if dense else None,
        sparse_ann=True if meta["sparse"]["type"] == "sparse_vector" else None,
        ingest_pipeline=meta["pipelines"]["ingest"],
        meta=meta,
        analyzer=meta["analyzer"],
        sparse_mapping=vector_mapping(sparse, chunked, CHUNK_KEYS["sparse"]),
        dense_mapping=vector_mapping(knn, chunked, CHUNK_KEYS["dense"]) if dense else None,
        **field_values(chunked, dense is not None),
    )


def search_pipeline_bodies(index: str, meta: dict) -> dict[str, dict]:
    """{name: body} of an index's search pipelines, rendered from its `_meta` record."""
    names, weights = meta["pipelines"], meta["weights"]
    bodies = {
        names[role]: render("pipelines/search/hybrid.json", index=index, technique=technique, weights=weights)
        for role, technique in NORMALIZATIONS.items()
    }
    bodies[names["rrf"]] = render("pipelines/search/rrf.json", index=index, rank_constant=60, weights=weights)
    if "two_phase" in names:
        bodies[names["two_phase"]] = render(
            "pipelines/search/two_phase.json",
            index=index,
            two_phase_ratio=0.4,
            expansion_rate=5.0,
            max_window_size=10000,
        )
    if "rerank" in names:
        bodies[names["rerank"]] = render(
            "pipelines/search/rerank.json",
            index=index,
            rerank_model_id=meta["rerank_model_id"],
            text_field=meta["text_field"],
        )
    return bodies


def field_values(chunked: bool, dense: bool) -> dict[str, str | None]:
    """Placeholder values naming the fields; the chunk and dense fields are absent when not used."""
    values = {f"{k}_field": v for k, v in asdict(FIELDS).items()}
    values["chunk_field"] = FIELDS.chunks if chunked else None
    values["dense_field"] = FIELDS.dense if dense else None
    return values


def build_meta(
    index: str,
    language: str,
    analyzer: str,
    models: dict[str, dict],
    chunking: Chunking | None,
    sparse_type: str,
    prune: Prune | None,
    weights: list[float] | None,
    names: dict[str, str],
) -> dict:
    """The `_meta.opensearch_kit` record of a new index (schema in the README)."""
    chunked = chunking is not None

    def model(kind: str) -> dict:
        return {"model_id": models[kind]["model_id"], "model_name": models[kind].get("name")}

    def vector(kind: str, field: str) -> dict:
        return {
            **model(kind),
            "field": field,
            "nested_path": field if chunked else None,
            "query_field": f"{field}.{CHUNK_KEYS[kind]}" if chunked else field,
        }

    sparse = {
        **vector("sparse", FIELDS.sparse),
        "type": sparse_type,
        "format": "TOKEN_ID" if sparse_type == "sparse_vector" else "WORD",
        "prune": asdict(prune) if prune else None,
    }
    dense = None
    if "dense" in models:
        dimension, space = dense_config(models["dense"])
        dense = {**vector("dense", FIELDS.dense), "dimension": dimension, "space_type": space, "engine": "lucene"}
    rerank = model("rerank") if "rerank" in models else None
    return {
        "schema": META_SCHEMA,
        "created_by": f"opensearch-kit {__version__}",
        "index": index,
        "language": language,
        "analyzer": analyzer,
        # What the query builder reads (query.IndexConfig.from_meta).
        "text_field": FIELDS.text,
        "title_field": FIELDS.title,
        "sparse_field": sparse["query_field"],
        "dense_field": dense["query_field"] if dense else None,
        "sparse_model_id": sparse["model_id"],
        "dense_model_id": dense["model_id"] if dense else None,
        "rerank_model_id": rerank["model_id"] if rerank else None,
        "pipelines": names,
        # The details.
        "fields": {
            **asdict(FIELDS),
            "chunks": FIELDS.chunks if chunked else None,
            "dense": FIELDS.dense if dense else None,
        },
        "sparse": sparse,
        "dense": dense,
        "rerank": rerank,
        "chunking": {"algorithm": "fixed_token_length", "tokenizer": "standard", **asdict(chunking)}
        if chunked
        else None,
        "weights": weights,
    }


def ingest_pipeline_body(index: str, meta: dict, batch_size: int = 16) -> dict:
    """The ingest pipeline of an index, rendered from its `_meta` record."""
    chunking, prune, dense = meta["chunking"] or {}, meta["sparse"]["prune"] or {}, meta["dense"] or {}
    fields = meta["fields"]
    return render(
        "pipelines/ingest.json",
        index=index,
        text_field=fields["text"],
        chunk_field=fields["chunks"],
        embed_field=fields["chunks"] or fields["text"],
        token_limit=chunking.get("token_limit"),
        overlap_rate=chunking.get("overlap_rate"),
        sparse_model_id=meta["sparse"]["model_id"],
        sparse_field=fields["sparse"],
        prune_type=prune.get("type"),
        prune_ratio=prune.get("ratio"),
        dense_model_id=dense.get("model_id"),
        dense_field=fields["dense"],
        batch_size=batch_size,
    )


def index_meta(client: OpenSearch, index: str) -> dict:
    """The `_meta.opensearch_kit` record of an index made by `create_index`."""
    try:
        mapping = request(client, "GET", f"/{index}/_mapping")
    except NotFoundError as e:
        raise KitError(f"no index {index}", f"create it: opensearch-kit index create {index} --sparse-model ID") from e
    meta = next(iter(mapping.values()))["mappings"].get("_meta", {}).get(META_KEY)
    if not meta:
        raise KitError(
            f"index {index} was not made by opensearch-kit (no _meta.{META_KEY})", "create it with index create"
        )
    return meta


def index_info(client: OpenSearch, index: str) -> dict:
    """What an index holds: its `_meta` record, document count, pipelines present, and its models' states."""
    meta = index_meta(client, index)
    count = request(client, "GET", f"/{index}/_count")["count"]
    pipelines = {}
    for key, name in meta["pipelines"].items():
        kind = "_ingest" if key == "ingest" else "_search"
        try:
            request(client, "GET", f"/{kind}/pipeline/{name}")
            pipelines[name] = True
        except NotFoundError:
            pipelines[name] = False
    models = {}
    for kind in MODEL_KINDS:
        if meta.get(kind):
            model_id = meta[kind]["model_id"]
            try:
                models[model_id] = request(client, "GET", f"{ML_MODELS}/{model_id}").get("model_state")
            except NotFoundError:
                models[model_id] = "MISSING"
    return {"index": index, "documents": count, "pipelines": pipelines, "models": models, "meta": meta}


def delete_pipelines(client: OpenSearch, index: str) -> list[str]:
    """Delete every pipeline named after `index`; the names of those that existed."""
    deleted = []
    for key, name in pipeline_names(index).items():
        kind = "_ingest" if key == "ingest" else "_search"
        try:
            request(client, "DELETE", f"/{kind}/pipeline/{name}")
            deleted.append(name)
        except NotFoundError:
            pass
    return deleted


def delete_index(client: OpenSearch, index: str, missing_ok: bool = False) -> dict:
    """Delete an index made by opensearch-kit and its pipelines (the models stay).

    Returns {"index", "deleted": whether the index existed, "pipelines": [deleted pipeline names]}.
    """
    try:
        index_meta(client, index)
    except KitError:
        if not (missing_ok and not client.indices.exists(index=index)):
            raise
    try:
        request(client, "DELETE", f"/{index}")
        existed = True
    except NotFoundError:
        existed = False
    return {"index": index, "deleted": existed, "pipelines": delete_pipelines(client, index)}
