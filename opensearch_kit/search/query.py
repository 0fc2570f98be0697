"""Build OpenSearch search requests for BM25, neural sparse, dense and hybrid retrieval (pure, no I/O).

Checks here catch what OpenSearch 3.6 answers silently: a hybrid query without its normalization pipeline returns
raw per-sub-query hits with marker scores; a rerank `ext` without a rerank processor, or a two-phase processor
around a hybrid query, is ignored; weights of the wrong length fail only once some document matches.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

from opensearch_kit.errors import KitError
from opensearch_kit.index.meta import IndexMeta
from opensearch_kit.index.options import SeismicQuery, check_weights
from opensearch_kit.index.token_ids import check_token_ids
from opensearch_kit.search.filters import Filter, bool_filtered, combined, inner_filtered

MODES = ("bm25", "sparse", "dense", "hybrid")
SIGNALS = ("bm25", "sparse", "dense")
MAX_SUB_QUERIES = 5  # HybridQueryBuilder.MAX_NUMBER_OF_SUB_QUERIES
NO_PIPELINE = "_none"  # also switches off an index.search.default_pipeline
HYBRID_PROCESSORS = ("normalization-processor", "score-ranker-processor")
SECTIONS = ("request_processors", "phase_results_processors", "response_processors")


@dataclass(frozen=True)
class IndexConfig:
    """Which fields, models and search pipelines an index has for each retrieval mode."""

    text_field: str = "text"
    title_field: str | None = None
    sparse_field: str | None = None
    sparse_type: str = "rank_features"  # sparse_vector: SEISMIC, queried (and filtered) with method_parameters
    dense_field: str | None = None
    sparse_model_id: str | None = None
    dense_model_id: str | None = None
    reranker_model_id: str | None = None
    pipelines: dict[str, str] = field(default_factory=dict)  # role (hybrid, rrf, rerank, two_phase) -> name
    # chunked indexes: the nested paths holding one vector per chunk, and the field with the chunk texts
    sparse_nested: str | None = None
    dense_nested: str | None = None
    chunks_field: str | None = None
    weight_model: dict | None = None  # `tune --apply`'s per-query weights model (search.perquery.WeightModel)
    seismic: SeismicQuery | None = None  # `tune --grid seismic --apply`'s query knobs (sparse_vector)
    sparse_id_limit: int | None = None  # sparse_vector on a server that folds token ids: ids it holds
    filter_fields: tuple[str, ...] = ()  # top-level fields a --where shorthand names as they are
    metadata_field: str | None = "metadata"  # where other --where names are looked up

    @classmethod
    def from_meta(cls, meta: IndexMeta) -> IndexConfig:
        """What the builder needs from an index's record."""
        return cls(
            text_field=meta.fields.text,
            title_field=meta.fields.title,
            sparse_field=meta.sparse.query_field,
            sparse_type=meta.sparse.type,
            dense_field=meta.dense.query_field if meta.dense else None,
            sparse_model_id=meta.sparse.model_id,
            dense_model_id=meta.dense.model_id if meta.dense else None,
            reranker_model_id=meta.reranker.model_id if meta.reranker else None,
            pipelines=dict(meta.pipelines),
            sparse_nested=meta.sparse.nested_path,
            dense_nested=meta.dense.nested_path if meta.dense else None,
            chunks_field=meta.fields.chunks if meta.chunking else None,
            weight_model=(meta.tuning or {}).get("weight_model"),
            seismic=SeismicQuery(**meta.seismic_tuning["setting"]) if meta.seismic_tuning else None,
            sparse_id_limit=meta.sparse.id_limit,
            filter_fields=(meta.fields.id, meta.fields.title, meta.fields.text, *meta.typed_fields),
            metadata_field=meta.fields.metadata,
        )


@dataclass(frozen=True)
class QueryOptions:
    """What to search with. `hybrid` lists the sub-queries of a hybrid query (default: every signal the index has).
    `filter`: query clauses (or `--where` shorthands) every hit must pass; `offset` and `k`: the page of hits;
    `highlight`: the best-matching passage of the text field per hit."""

    mode: str = "bm25"
    k: int = 10
    hybrid: tuple[str, ...] = ()
    weights: tuple[float, ...] | None = None
    rrf: bool = False
    rerank: bool = False
    rerank_depth: int | None = None
    two_phase: bool = False
    explain: bool = False
    pagination_depth: int | None = None
    title_boost: float = 2.0
    source: tuple[str, ...] | None = None  # None: title and text fields; (): no _source
    filter: tuple[Filter, ...] = ()
    offset: int = 0
    highlight: bool = False
    seismic: SeismicQuery = SeismicQuery()  # sparse_vector fields only; knobs left None: the index's tuned ones

    @classmethod
    def parse(cls, spec: str, **kwargs) -> QueryOptions:
        """`bm25`, `sparse+two-phase`, `hybrid+rrf+rerank`, ...: a mode and its `+`-joined flags."""
        mode, *flags = spec.strip().lower().split("+")
        known = {"rerank": "rerank", "rrf": "rrf", "two-phase": "two_phase", "two_phase": "two_phase"}
        unknown = [f for f in flags if f not in known]
        if mode not in MODES or unknown:
            raise KitError(
                f"unknown mode {spec!r}",
                f"use one of {', '.join(MODES)}, optionally with +rerank, +rrf (hybrid) or +two-phase (sparse)",
            )
        return cls(mode=mode, **{known[f]: True for f in flags}, **kwargs)

    @property
    def label(self) -> str:
        flags = [name for name, on in (("rrf", self.rrf), ("two-phase", self.two_phase), ("rerank", self.rerank)) if on]
        return "+".join([self.mode, *flags])


@dataclass(frozen=True)
class SearchRequest:
    """A request ready to send: the body, the `search_pipeline` URL parameter (None when the pipeline is inline in
    the body), the hits to keep, and the signal names of a hybrid query's sub-queries in order."""

    body: dict
    pipeline: str | None
    k: int
    signals: tuple[str, ...] = ()

    @property
    def params(self) -> dict[str, str]:
        return {"search_pipeline": self.pipeline} if self.pipeline else {}


def signals_of(options: QueryOptions, config: IndexConfig) -> tuple[str, ...]:
    """The signals a request combines: its mode, or a hybrid query's sub-queries."""
    if options.mode != "hybrid":
        return (options.mode,)
    if options.hybrid:
        return options.hybrid
    return tuple(s for s in SIGNALS if s == "bm25" or getattr(config, f"{s}_field"))


def pipeline_roles(options: QueryOptions) -> list[str]:
    """Pipeline roles (keys of IndexConfig.pipelines) a request needs."""
    roles = []
    if options.mode == "hybrid":
        roles.append("rrf" if options.rrf else "hybrid")
    if options.two_phase:
        roles.append("two_phase")
    if options.rerank:
        roles.append("rerank")
    return roles


def required_pipelines(options: QueryOptions, config: IndexConfig) -> list[str]:
    """Names of the search pipelines a request needs; a KitError when the index config lacks one."""
    names = []
    for role in pipeline_roles(options):
        name = config.pipelines.get(role)
        if not name:
            fix = _PIPELINE_FIX[role]
            if role == "rerank" and config.reranker_model_id:
                fix += f"; its ml_opensearch model_id is the index's rerank model {config.reranker_model_id}"
            raise KitError(f"{options.label} needs a {role!r} search pipeline and the index has none", fix)
        names.append(name)
    return names


def build_search(
    text: str,
    options: QueryOptions,
    config: IndexConfig,
    *,
    sparse_tokens: Mapping[str, float] | None = None,
    dense_vector: list[float] | None = None,
    pipelines: Mapping[str, Mapping] | None = None,
    hybrid_filter: bool = True,
) -> SearchRequest:
    """The request for `text`. Sparse and dense sub-queries use the client-side `sparse_tokens` / `dense_vector`
    when given, else the index's in-cluster model ids. `pipelines` holds the definitions (as GET
    _search/pipeline returns them) of every name `required_pipelines` lists. `hybrid_filter`: the server's hybrid
    query takes a `filter` (neural-search 3.0+); else each sub-query is filtered."""
    _check_options(options)
    signals = signals_of(options, config)
    size = max(options.k, options.rerank_depth or 0) if options.rerank else options.k
    depth = max(options.offset + size, options.pagination_depth or 0)
    only = combined(options.filter, config.filter_fields, config.metadata_field)
    outer = only if not (options.mode == "hybrid" and hybrid_filter) else None
    clauses = [_clause(s, text, config, options, sparse_tokens, dense_vector, depth, only, outer) for s in signals]
    if options.mode == "hybrid":
        _check_hybrid(signals, options)
        hybrid: dict = {"queries": clauses}
        if options.pagination_depth or options.offset:
            hybrid["pagination_depth"] = depth
        if only is not None and hybrid_filter:
            hybrid["filter"] = only
        query = {"hybrid": hybrid}
    else:
        query = clauses[0]
    body: dict = {"size": size, "query": query, "_source": _source(options, config)}
    if options.offset:
        body["from"] = options.offset
    if options.highlight:
        body["highlight"] = highlight(text, config)
    if options.explain:
        body["explain"] = True
    if options.rerank:
        body["ext"] = {"rerank": {"query_context": {"query_text": text}}}
    pipeline = _pipeline(options, config, signals, pipelines or {}, body)
    return SearchRequest(body, pipeline, options.k, signals if options.mode == "hybrid" else ())


def highlight(text: str, config: IndexConfig) -> dict:
    """The text field's best passage for the query's words, whatever the mode (its own `highlight_query`)."""
    passage = {"fragment_size": 200, "number_of_fragments": 1, "no_match_size": 200}
    return {"fields": {config.text_field: passage}, "highlight_query": {"match": {config.text_field: text}}}


def bm25_clause(text: str, config: IndexConfig, title_boost: float = 2.0) -> dict:
    """`match` on the text field, or `multi_match` (best_fields, tie_breaker 0.5) with a boosted title field."""
    if not config.title_field:
        return {"match": {config.text_field: {"query": text}}}
    fields = [f"{config.title_field}^{title_boost:g}", config.text_field]
    return {"multi_match": {"query": text, "fields": fields, "type": "best_fields", "tie_breaker": 0.5}}


def sparse_clause(text: str, config: IndexConfig, tokens: Mapping[str, float] | None = None) -> dict:
    """`neural_sparse` with client-side `query_tokens`, or `query_text` + the index's sparse (or tokenizer) model."""
    if not config.sparse_field:
        raise KitError("the index has no sparse field", "index with a sparse encoder, or search in bm25/dense mode")
    if tokens is not None:
        # neural_sparse refuses a weight outside (0, 64]; a zero weight (an IDF of 0, a pruned token) adds nothing
        weights = {t: float(w) for t, w in tokens.items() if w > 0}
        if not weights:
            raise KitError(f"the sparse encoder gave no tokens for {text!r}", "check the query text and the encoder")
        if config.sparse_type == "sparse_vector" and not all(str(t).isdigit() for t in weights):
            raise KitError(
                "the sparse encoder gives token strings, and this index's sparse_vector field takes token ids",
                "pass the ONNX export directory (--sparse-encoder DIR), which is bound to token ids for this index",
            )
        check_token_ids(weights, config.sparse_id_limit, f"the query {text!r}")
        return {"neural_sparse": {config.sparse_field: {"query_tokens": weights}}}
    if not config.sparse_model_id:
        raise KitError(
            "sparse search needs query tokens or an in-cluster model and the index has no sparse_model_id",
            "pass a local sparse encoder (--sparse-encoder DIR), or deploy the model and record its id",
        )
    return {"neural_sparse": {config.sparse_field: {"query_text": text, "model_id": config.sparse_model_id}}}


def dense_clause(text: str, config: IndexConfig, k: int, vector: list[float] | None = None) -> dict:
    """`knn` with a client-side vector, or `neural` with `query_text` + the index's embedding model."""
    if not config.dense_field:
        raise KitError(
            "the index has no dense vector field", "index with a dense encoder, or search in bm25/sparse mode"
        )
    if vector is not None:
        return {"knn": {config.dense_field: {"vector": [float(x) for x in vector], "k": k}}}
    if not config.dense_model_id:
        raise KitError(
            "dense search needs a query vector or an in-cluster model and the index has no dense_model_id",
            "pass a local dense encoder (--dense-encoder DIR), or deploy the model and record its id",
        )
    return {"neural": {config.dense_field: {"query_text": text, "model_id": config.dense_model_id, "k": k}}}


def hybrid_weights(definition: Mapping) -> list[float] | None:
    """The combination weights of a hybrid pipeline's normalization or RRF processor, if it sets any."""
    processor = _hybrid_processor(definition)
    if processor is None:
        return None
    weights = (processor.get("combination") or {}).get("parameters", {}).get("weights")
    return [float(w) for w in weights] if weights else None


def rerank_fields(definition: Mapping) -> list[str]:
    """Document fields a rerank pipeline reads from each hit's _source: ml_opensearch's context.document_fields
    (a field missing from _source is silently reranked as an empty string) and by_field's target_field."""
    fields: list[str] = []
    for processor in definition.get("response_processors") or []:
        rerank = processor.get("rerank") or {}
        fields += (rerank.get("context") or {}).get("document_fields") or []
        if "by_field" in rerank:
            fields.append(rerank["by_field"]["target_field"])
    return fields


_PIPELINE_FIX = {
    "hybrid": "create a search pipeline with a normalization-processor and record it under pipelines.hybrid "
    "(a hybrid query without one returns uncombined sub-query hits)",
    "rrf": "create a search pipeline with a score-ranker-processor (rrf) and record it under pipelines.rrf",
    "rerank": "create a search pipeline with a rerank response processor and record it under pipelines.rerank "
    "(without one the rerank request is silently ignored)",
    "two_phase": "create a search pipeline with a neural_sparse_two_phase_processor and record it under "
    "pipelines.two_phase",
}

_ROLE_PROCESSORS = {
    "hybrid": ("phase_results_processors", HYBRID_PROCESSORS),
    "rrf": ("phase_results_processors", HYBRID_PROCESSORS),
    "rerank": ("response_processors", ("rerank",)),
    "two_phase": ("request_processors", ("neural_sparse_two_phase_processor",)),
}


def _check_options(options: QueryOptions) -> None:
    if options.mode not in MODES:
        raise KitError(f"unknown mode {options.mode!r}", f"use one of {', '.join(MODES)}")
    if options.k < 1:
        raise KitError(f"k must be at least 1, got {options.k}", "pass --k 1 or more")
    if options.offset < 0:
        raise KitError(f"the offset (--from) must be 0 or more, got {options.offset}", "pass --from 0 or more")
    if options.offset and options.rerank:
        raise KitError(
            "--from with rerank would rerank each page on its own, not the whole ranking",
            "drop --from and raise --k (or --rerank-depth) to see deeper reranked hits",
        )
    if options.mode != "hybrid" and (options.weights or options.rrf or options.hybrid):
        raise KitError(
            f"weights, rrf and sub-queries apply to hybrid mode only, not {options.mode!r}", "use --mode hybrid"
        )
    if options.two_phase and options.mode != "sparse":
        raise KitError(
            f"two-phase applies to sparse mode only, not {options.mode!r}",
            "neural_sparse_two_phase_processor leaves hybrid and non-sparse queries unchanged: drop +two-phase",
        )


def _check_hybrid(signals: tuple[str, ...], options: QueryOptions) -> None:
    unknown = [s for s in signals if s not in SIGNALS]
    if unknown or len(set(signals)) != len(signals):
        raise KitError(f"bad hybrid sub-queries {signals}", f"list distinct signals among {', '.join(SIGNALS)}")
    if not 2 <= len(signals) <= MAX_SUB_QUERIES:
        raise KitError(
            f"a hybrid query needs 2 to {MAX_SUB_QUERIES} sub-queries; this index gives {list(signals)}",
            "index a sparse or dense field too, or search in a single mode",
        )
    if options.weights is not None:
        _check_weights(list(options.weights), signals, "--weights")


def _check_weights(weights: list[float], signals: tuple[str, ...], source: str) -> None:
    if len(weights) != len(signals):
        even = ",".join([f"{1 / len(signals):.3g}"] * len(signals))
        raise KitError(
            f"{source} has {len(weights)} weight(s) for {len(signals)} hybrid sub-queries ({', '.join(signals)})",
            f"give one weight per sub-query, in that order, e.g. --weights {even}",
        )
    check_weights(weights, source)


def _clause(signal, text, config, options, sparse_tokens, dense_vector, depth, only, outer) -> dict:
    """One signal's query. The engines that search approximately (Lucene HNSW, SEISMIC) always get `only` as their
    own filter, joined down to the chunks of a chunked index by k-NN; `outer` (None when the hybrid query filters)
    wraps the query in a bool filter on the (parent) document."""
    if signal == "bm25":
        return bool_filtered(bm25_clause(text, config, options.title_boost), outer)
    if signal == "sparse":
        clause = sparse_clause(text, config, sparse_tokens)
        if config.sparse_type == "sparse_vector":
            knobs = options.seismic.over(config.seismic)
            clause["neural_sparse"][config.sparse_field]["method_parameters"] = knobs.method_parameters(depth)
            clause = inner_filtered(clause, only, depth)
    else:
        clause = inner_filtered(dense_clause(text, config, depth, dense_vector), only, depth)
    path = getattr(config, f"{signal}_nested")
    if path:
        clause = nested_clause(path, clause, signal)
    approximate = signal == "dense" or config.sparse_type == "sparse_vector"
    return clause if approximate and not path else bool_filtered(clause, outer)


def nested_clause(path: str, clause: dict, name: str) -> dict:
    """`clause` on the chunk vectors under `path`: a document scores as its best chunk (score_mode max), and
    inner_hits `name` returns that chunk's offset (the chunk text is `chunks_field[offset]` of the _source)."""
    inner = {"name": name, "size": 1, "_source": False}
    return {"nested": {"path": path, "query": clause, "score_mode": "max", "inner_hits": inner}}


def _source(options: QueryOptions, config: IndexConfig) -> dict | bool:
    fields = options.source
    if fields is None:
        fields = tuple(f for f in (config.title_field, config.text_field, config.chunks_field) if f)
    return {"includes": list(fields)} if fields else False


def _hybrid_processor(definition: Mapping) -> Mapping | None:
    for processor in definition.get("phase_results_processors") or []:
        for kind in HYBRID_PROCESSORS:
            if kind in processor:
                return processor[kind]
    return None


def _pipeline(options, config, signals, definitions, body) -> str | None:
    """The pipeline name to pass, or None after putting a composed pipeline inline in `body`."""
    roles = pipeline_roles(options)
    if not roles:
        return NO_PIPELINE
    names = required_pipelines(options, config)
    for role, name in zip(roles, names, strict=True):
        if name not in definitions:
            raise KitError(f"search pipeline {name!r} ({role}) does not exist on the cluster", _PIPELINE_FIX[role])
        section, kinds = _ROLE_PROCESSORS[role]
        if not any(kind in p for p in definitions[name].get(section) or [] for kind in kinds):
            raise KitError(f"search pipeline {name!r} has no {' or '.join(kinds)} in {section}", _PIPELINE_FIX[role])
        if role == "rerank":
            _include_source(body, rerank_fields(definitions[name]))
    parts = [definitions[name] for name in names]
    if options.mode == "hybrid" and options.weights is None:
        weights = hybrid_weights(parts[0])
        if weights is not None:
            _check_weights(weights, signals, f"search pipeline {names[0]!r}")
    if len(parts) == 1 and options.weights is None and not (options.explain and options.mode == "hybrid"):
        return names[0]
    body["search_pipeline"] = _compose(parts, options)
    return None


def _include_source(body: dict, fields: list[str]) -> None:
    current = body["_source"]["includes"] if body["_source"] else []
    body["_source"] = {"includes": list(dict.fromkeys([*current, *fields]))} if current or fields else False


def _compose(definitions: list[Mapping], options: QueryOptions) -> dict:
    """One inline pipeline from several: each section's processors in order, one of each processor type. With
    --weights the hybrid processor's weights are replaced; with explain the hybrid_score_explanation response
    processor is dropped so hits keep the raw per-sub-query scores."""
    composed: dict = {}
    for section in SECTIONS:
        seen, processors = set(), []
        for definition in definitions:
            for processor in definition.get(section) or []:
                kind = next(iter(processor))
                if kind in seen or (options.explain and kind == "hybrid_score_explanation"):
                    continue
                seen.add(kind)
                processors.append(copy.deepcopy(dict(processor)))
        if processors:
            composed[section] = processors
    if options.weights is not None:
        hybrid = _hybrid_processor(composed)
        combination = hybrid.setdefault("combination", {})
        combination.setdefault("parameters", {})["weights"] = list(options.weights)
    return composed
