"""The JSON an index is made of, rendered from its `IndexMeta` with the templates in `data/`: the index's
settings and mappings, its ingest pipeline and its search pipelines."""

from __future__ import annotations

from dataclasses import asdict

from opensearch_kit.index.fields import field_mapping
from opensearch_kit.index.meta import CHUNK_KEYS, FIELDS, IndexMeta
from opensearch_kit.index.templates import render

# Pipeline role -> normalization technique; "hybrid" (min-max) is the role the query builder uses by default.
NORMALIZATIONS = {"hybrid": "min_max", "hybrid_l2": "l2", "hybrid_zscore": "z_score"}
RRF_RANK_CONSTANT = 60


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


def tuned_pipeline_name(index: str) -> str:
    """The search pipeline `tune --apply` writes; the index's hybrid role then points at it."""
    return f"{index}-hybrid-tuned"


def pipeline_path(role: str, name: str) -> str:
    """The REST path of a pipeline: the ingest pipeline under _ingest, the others under _search."""
    return f"/{'_ingest' if role == 'ingest' else '_search'}/pipeline/{name}"


def index_body(meta: IndexMeta, shards: int = 1) -> dict:
    """Settings and mappings of an index, with its `_meta` record."""
    chunked, dense = meta.chunking is not None, meta.dense
    sparse = render(f"mappings/fields/{meta.sparse.type}.json")
    knn = dense and render("mappings/fields/knn_vector.json", dimension=dense.dimension, space_type=dense.space_type)
    body = render(
        "mappings/index.json",
        shards=shards,
        knn=True if dense else None,
        sparse_ann=True if meta.sparse.type == "sparse_vector" else None,
        ingest_pipeline=meta.pipelines["ingest"],
        meta=meta.to_dict(),
        analyzer=meta.analyzer,
        sparse_mapping=vector_mapping(sparse, chunked, CHUNK_KEYS["sparse"]),
        dense_mapping=vector_mapping(knn, chunked, CHUNK_KEYS["dense"]) if dense else None,
        **field_values(chunked, dense is not None),
    )
    typed = {name: field_mapping(kind, meta.analyzer) for name, kind in meta.typed_fields.items()}
    body["mappings"]["properties"].update(typed)
    return body


def vector_mapping(inner: dict, chunked: bool, key: str) -> dict:
    """A vector field's mapping; with chunking, nested, one vector per chunk under `key`."""
    return render("mappings/fields/nested.json", key=key, inner=inner) if chunked else inner


def field_values(chunked: bool, dense: bool) -> dict[str, str | None]:
    """Placeholder values naming the fields; the chunk and dense fields are absent when not used."""
    values = {f"{k}_field": v for k, v in asdict(FIELDS).items()}
    values["chunk_field"] = FIELDS.chunks if chunked else None
    values["dense_field"] = FIELDS.dense if dense else None
    return values


def search_pipeline_bodies(meta: IndexMeta) -> dict[str, dict]:
    """{name: body} of an index's search pipelines."""
    names, weights = meta.pipelines, list(meta.weights) if meta.weights is not None else None
    index = meta.index
    bodies = {
        names[role]: render("pipelines/search/hybrid.json", index=index, technique=technique, weights=weights)
        for role, technique in NORMALIZATIONS.items()
    }
    bodies[names["rrf"]] = render(
        "pipelines/search/rrf.json", index=index, rank_constant=RRF_RANK_CONSTANT, weights=weights
    )
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
            rerank_model_id=meta.reranker.model_id,
            text_field=meta.fields.text,
        )
    return bodies


def ingest_pipeline_body(meta: IndexMeta, batch_size: int = 16) -> dict:
    """The ingest pipeline of an index."""
    chunking, prune, dense, fields = meta.chunking, meta.sparse.prune, meta.dense, meta.fields
    return render(
        "pipelines/ingest.json",
        index=meta.index,
        text_field=fields.text,
        chunk_field=fields.chunks,
        embed_field=fields.chunks or fields.text,
        token_limit=chunking.token_limit if chunking else None,
        overlap_rate=chunking.overlap_rate if chunking else None,
        sparse_model_id=meta.sparse.model_id,
        sparse_field=fields.sparse,
        prune_type=prune.type if prune else None,
        prune_ratio=prune.ratio if prune else None,
        dense_model_id=dense.model_id if dense else None,
        dense_field=fields.dense,
        batch_size=batch_size,
    )
