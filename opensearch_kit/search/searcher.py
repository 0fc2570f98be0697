"""Run built queries against an index: typed hits, per-signal scores of hybrid queries, latency."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Literal, TypeVar

from opensearchpy import OpenSearch

from opensearch_kit.errors import ClusterError, KitError, ModelNotFound, NotFound
from opensearch_kit.index.meta import IndexMeta
from opensearch_kit.opensearch.features import features
from opensearch_kit.opensearch.ml import MODEL_WARMING
from opensearch_kit.opensearch.transport import Transport
from opensearch_kit.search.fused import blocker, fused_ranking, msearch, msearch_lines
from opensearch_kit.search.perquery import FEATURE_DEPTH, WeightModel, query_features, term_idfs
from opensearch_kit.search.query import (
    IndexConfig,
    QueryOptions,
    SearchRequest,
    build_search,
    required_pipelines,
    signals_of,
)
from opensearch_kit.search.results import SearchResult, hit_of

SparseQueryEncoder = Callable[[str], Mapping[str, float]]
DenseQueryEncoder = Callable[[str], list[float]]
Encoding = Literal["auto", "local", "cluster"]
Fusion = Literal["auto", "client", "server"]
T = TypeVar("T")


def read_index_config(transport: Transport, index: str) -> IndexConfig:
    """The IndexConfig of an index made by `create_index`, from its record."""
    return IndexConfig.from_meta(IndexMeta.read(transport, index))


def hybrid_takes_filter(transport: Transport) -> bool:
    """Whether the cluster's hybrid query takes a `filter` (neural-search 3.0+); else each sub-query is filtered."""
    return features(transport).has("hybrid_filter")


def local_sparse_encoder(export_dir: Path, token_ids: bool = False) -> SparseQueryEncoder:
    """Query encoder from an ONNX sparse export directory (opensearch-kit export sparse --format onnx); token
    ids as keys (`token_ids`) for sparse_vector fields, token strings for rank_features."""
    from opensearch_kit.runtime.sparse import SparseEncoder

    encoder = SparseEncoder.from_dir(export_dir)
    encode = encoder.encode_ids if token_ids else encoder.encode
    return lambda text: encode([text])[0]


def local_dense_encoder(export_dir: Path) -> DenseQueryEncoder:
    """Query encoder from a dense export directory (query-side prompt/prefix applied)."""
    from opensearch_kit.runtime.dense import DenseEncoder

    encoder = DenseEncoder.from_dir(export_dir)
    return lambda text: [float(x) for x in encoder.embed([text], is_query=True)[0]]


class Searcher:
    """Searches one index. Sparse and dense queries are encoded locally by the given encoders (a callable, or an
    export directory: a sparse one then yields token ids or strings as the index's field takes), or by the ONNX
    export of the index's model when the export cache holds it (ML Commons runs one predict call per query
    embedding, several times the cost of local ONNX on the same cores: see scripts/bench_scale.py), else in the
    cluster by the index's model ids. `encoding` local / cluster force one side. `hybrid_filter`: whether the
    server's hybrid query takes a filter (None: asked of the cluster when needed).

    `fusion`: where a hybrid query's sub-queries are combined. "server": the hybrid query and its pipeline, which
    scores every match of every sub-query (4x BM25 at 10^5 documents). "client": each sub-query alone (it stops
    early) per shard, in _msearch (`search_fused`), combined here as neural-search does (`search.fused`: the same
    hits and float32 scores; tied documents may swap). "auto": client wherever it can (`search.fused.blocker`),
    else server."""

    def __init__(
        self,
        cluster: Transport | OpenSearch,
        index: str,
        *,
        config: IndexConfig | None = None,
        sparse_encoder: SparseQueryEncoder | Path | None = None,
        dense_encoder: DenseQueryEncoder | Path | None = None,
        encoding: Encoding = "auto",
        hybrid_filter: bool | None = None,
        fusion: Fusion = "auto",
    ):
        self.transport = Transport.of(cluster)
        self.index = index
        self.config = config or read_index_config(self.transport, index)
        token_ids = self.config.sparse_type == "sparse_vector"
        if isinstance(sparse_encoder, Path):
            sparse_encoder = local_sparse_encoder(sparse_encoder, token_ids=token_ids)
        if isinstance(dense_encoder, Path):
            dense_encoder = local_dense_encoder(dense_encoder)
        self.encoders = {"sparse": sparse_encoder, "dense": dense_encoder}
        self.encoding = encoding
        self._pipelines: dict[str, dict] = {}
        self.hybrid_filter = hybrid_filter
        self.fusion = fusion
        self._looked_up: set[str] = set()  # signals whose cached export auto mode has looked for

    def pipeline_definitions(self, names: list[str]) -> dict[str, dict]:
        """Definitions of the named search pipelines that exist (fetched once per name)."""
        for name in names:
            if name not in self._pipelines:
                try:
                    found = self.transport.request("GET", f"/_search/pipeline/{name}")
                    self._pipelines[name] = found.get(name, {})
                except NotFound:
                    continue
        return {n: self._pipelines[n] for n in names if n in self._pipelines}

    def uses_local(self, signal: str) -> bool:
        """Whether `signal` (sparse or dense) is encoded here rather than by an in-cluster model."""
        model_id = getattr(self.config, f"{signal}_model_id")
        has_model = bool(model_id)
        if self.encoding == "local" and has_model and self.encoders[signal] is None:
            self.encoders[signal] = self.located_encoder(signal, model_id)
        if self.encoding == "auto" and has_model and self.encoders[signal] is None and signal not in self._looked_up:
            self._looked_up.add(signal)
            # no cached export (or the model is gone): the cluster encodes, and answers for its model
            with contextlib.suppress(KitError):
                self.encoders[signal] = self.located_encoder(signal, model_id, make=False)
        has_local = self.encoders[signal] is not None
        if self.encoding == "local" or (self.encoding == "auto" and (has_local or not has_model)):
            if not has_local:
                where = "" if self.encoding == "local" else " and the index records no in-cluster model"
                raise KitError(
                    f"{signal} search needs a local {signal} encoder{where}",
                    f"pass --{signal}-encoder DIR (an exported {signal} model directory)",
                )
            return True
        if not has_model:
            raise KitError(
                f"{signal} search in the cluster needs {signal}_model_id and the index records none",
                f"use --encoding local with --{signal}-encoder DIR",
            )
        return False

    def located_encoder(self, signal: str, model_id: str, make: bool = True):
        """The local query encoder of the index's `signal` model, from its ONNX export found by fingerprint (made
        from its recorded source when missing, if `make`)."""
        from opensearch_kit.export.locate import onnx_export_of

        export = onnx_export_of(self.transport.ml, model_id, signal, make=make)
        if signal == "dense":
            return local_dense_encoder(export)
        return local_sparse_encoder(export, token_ids=self.config.sparse_type == "sparse_vector")

    def require_features(self, options: QueryOptions) -> None:
        """A KitError when the cluster lacks what `options` needs (RRF before 2.19, weighted RRF before 3.0)."""
        if options.rrf:
            feats = features(self.transport)
            feats.require("rrf")
            if options.weights is not None:
                feats.require("rrf_weights")

    def build(self, text: str, options: QueryOptions) -> SearchRequest:
        """The request for `text`, with query vectors encoded locally where this searcher does so; what the
        cluster lacks is refused first."""
        self.require_features(options)
        return self._build(text, options, self.encode_local(text, self.encoded_here(options)))

    def encoded_here(self, options: QueryOptions) -> list[str]:
        """The signals of a request with `options` that this searcher encodes locally (sparse, dense)."""
        signals = signals_of(options, self.config)
        return [s for s in ("sparse", "dense") if s in signals and self.uses_local(s)]

    def _build(self, text: str, options: QueryOptions, local: dict) -> SearchRequest:
        tokens, vector = local.get("sparse"), local.get("dense")
        definitions = self.pipeline_definitions(required_pipelines(options, self.config))
        if options.filter and options.mode == "hybrid" and self.hybrid_filter is None:
            self.hybrid_filter = hybrid_takes_filter(self.transport)
        return build_search(
            text,
            options,
            self.config,
            sparse_tokens=tokens,
            dense_vector=vector,
            pipelines=definitions,
            hybrid_filter=self.hybrid_filter is not False,
        )

    @cached_property
    def _beside(self) -> ThreadPoolExecutor:
        """Threads for the work a search runs beside its own thread: a second encoding, an early _msearch."""
        return ThreadPoolExecutor(max_workers=16, thread_name_prefix="search")  # searches from many threads

    def encode_local(self, text: str, signals: list[str]) -> dict:
        """`text` encoded by the local encoder of each of `signals`; two run at once (ONNX Runtime leaves the
        GIL: a hybrid query's sparse and dense encodings overlap)."""
        if len(signals) < 2:
            return {s: self.encoders[s](text) for s in signals}
        first, second = signals
        pending = self._beside.submit(self.encoders[second], text)
        return {first: self.encoders[first](text), second: pending.result()}

    def weighs_per_query(self, options: QueryOptions) -> bool:
        """Whether a search with `options` gets per-query weights: a hybrid query (not RRF, no --weights) on the
        sub-queries of the index's tuned weights model."""
        model = self.config.weight_model
        return bool(
            model
            and options.mode == "hybrid"
            and not options.rrf
            and options.weights is None
            and signals_of(options, self.config) == tuple(model["signals"])
        )

    def per_query_weights(self, text: str, filter: tuple = ()) -> tuple[float, ...]:
        """The weights the index's tuned model predicts for `text`, from its term IDFs and a top-FEATURE_DEPTH
        search per sub-query (under the search's `filter`, as `tune` saw the hits)."""
        model = WeightModel.from_dict(self.config.weight_model)
        tops = []
        for signal in model.signals:
            request = self.build(text, QueryOptions(mode=signal, k=FEATURE_DEPTH, source=(), filter=filter))
            raw = self.transport.request("POST", f"/{self.index}/_search", request.body, params=request.params)
            tops.append([(h["_id"], float(h["_score"])) for h in raw["hits"]["hits"][:FEATURE_DEPTH]])
        idfs = term_idfs(self.transport, self.index, self.config.text_field, text)
        return model.predict(query_features(idfs, tops))

    def search(self, text: str, options: QueryOptions | None = None) -> SearchResult:
        """Run one query; the latency covers local encoding and the HTTP round trip (pipeline definitions are
        fetched once per searcher, outside it)."""
        options = options or QueryOptions()
        self.require_features(options)
        self.pipeline_definitions(required_pipelines(options, self.config))
        began = time.perf_counter()
        if self.weighs_per_query(options):
            options = replace(options, weights=self.per_query_weights(text, options.filter))
        if self.fuses_here(options):
            return self.search_fused(text, options, began)
        request = self.build(text, options)
        response, began = self.sent(lambda: self.send(request), began)
        latency_ms = (time.perf_counter() - began) * 1000
        found = response["hits"]
        hits = [hit_of(h, request.signals, self.config) for h in found["hits"][: request.k]]
        total = found.get("total") or {}
        return SearchResult(
            self.index,
            options,
            self.config,
            hits,
            latency_ms,
            int(response.get("took", 0)),
            request,
            int(total.get("value", len(hits))),
            total.get("relation", "eq") == "eq",
        )

    def fuses_here(self, options: QueryOptions) -> bool:
        """Whether a search with `options` is a hybrid query fused client-side (see `fusion`); a KitError naming
        the reason when fusion "client" is asked for a search it cannot fuse."""
        if options.mode != "hybrid" or self.fusion == "server":
            return False
        why = self.client_fusion_blocker(options)
        if why and self.fusion == "client":
            raise KitError(f"{options.label} cannot be fused client-side: {why}", "use --fusion server or auto")
        return why is None

    def client_fusion_blocker(self, options: QueryOptions) -> str | None:
        """Why a hybrid search with `options` must be fused on the server (`search.fused.blocker`), or None."""
        definitions = lambda: self.pipeline_definitions(required_pipelines(options, self.config))  # noqa: E731
        why = blocker(options, self.config, features(self.transport), definitions)
        return why or (f"{self.index} names several indexes" if self.shards is None else None)

    @cached_property
    def shards(self) -> int | None:
        """The index's primary shard count; None when the name is an alias or pattern over several indexes."""
        settings = self.transport.request("GET", f"/{self.index}/_settings")
        if len(settings) != 1:
            return None
        return int(next(iter(settings.values()))["settings"]["index"]["number_of_shards"])

    def search_fused(self, text: str, options: QueryOptions, began: float) -> SearchResult:
        """A hybrid search fused client-side (`search.fused`): the top `pagination depth` hits of every sub-query
        on every shard, combined by the hybrid pipeline's fusion, then paged. The sub-queries that need no query
        encoding (bm25) go first, in their own _msearch, while the others are encoded here (the server's BM25 work
        overlaps the encoding); the rest follow in one _msearch. `total` is a lower bound: the most documents one
        sub-query matched."""
        depth = max(options.offset + options.k, options.pagination_depth or 0)
        alone = replace(options, k=depth, offset=0, hybrid=(), weights=None, rrf=False, pagination_depth=None)
        encoded_here = self.encoded_here(options)
        early = [s for s in signals_of(options, self.config) if s == "bm25"] if encoded_here else []
        pending = early and self._beside.submit(self.send_many, self.fused_lines(text, alone, early, {}))
        local = self.encode_local(text, encoded_here)
        hybrid = self._build(text, options, local)  # checks what the server would (pipelines, weights, signals)
        definition = hybrid.body.get("search_pipeline") or self.pipeline_definitions([hybrid.pipeline])[hybrid.pipeline]
        late = [s for s in hybrid.signals if s not in early]
        answers, began = self.sent(lambda: self.send_many(self.fused_lines(text, alone, late, local)), began)
        answers = (pending.result() if pending else []) + answers
        latency_ms = (time.perf_counter() - began) * 1000
        by_signal = {s: answers[n * self.shards : (n + 1) * self.shards] for n, s in enumerate(early + late)}
        in_order = [answer for signal in hybrid.signals for answer in by_signal[signal]]
        ranked, total = fused_ranking(in_order, hybrid.signals, self.shards, definition, options.offset + options.k)
        page = [replace(hit_of(raw, (), self.config), score=score) for raw, score in ranked[options.offset :]]
        took = max(r["took"] for r in answers)
        return SearchResult(self.index, options, self.config, page, latency_ms, took, hybrid, total, False)

    def fused_lines(self, text: str, alone: QueryOptions, signals: list[str], local: dict) -> list[dict]:
        """The _msearch lines of each of `signals` searched alone with `alone`'s options, on every shard."""
        return msearch_lines(
            self.index, self.shards, [self._build(text, replace(alone, mode=s), local) for s in signals]
        )

    def sent(self, send: Callable[[], T], began: float) -> tuple[T, float]:
        """`send()`'s answer and the time the search began. When a model is still warming up after a node restart,
        the index's models are served again and `send` is retried; the wait is no part of the search's latency."""
        try:
            return send(), began
        except ClusterError as e:
            if not (MODEL_WARMING.search(e.reason) and self.restore_models()):
                raise
            began = time.perf_counter()
            return send(), began

    def send(self, request: SearchRequest) -> dict:
        """POST the request; a model the index uses but ML Commons no longer has is named in the error."""
        with self.naming_lost_models():
            return self.transport.request("POST", f"/{self.index}/_search", request.body, params=request.params)

    def send_many(self, lines: list[dict]) -> list[dict]:
        """`search.fused.msearch`, a model the index uses but ML Commons no longer has named in the error."""
        with self.naming_lost_models():
            return msearch(self.transport, lines)

    @contextlib.contextmanager
    def naming_lost_models(self) -> Iterator[None]:
        """A model the index uses but ML Commons no longer has is named in the error raised inside."""
        try:
            yield
        except ModelNotFound as e:
            e.message = f"index {self.index} uses a model ML Commons no longer has ({self.models()}): {e.reason}"
            e.fix = "deploy the model again and recreate the index, or search in bm25 mode"
            raise

    def models(self) -> str:
        """The index's in-cluster models: "sparse <id>, dense <id>, ..."."""
        used = {s: getattr(self.config, f"{s}_model_id") for s in ("sparse", "dense", "reranker")}
        return ", ".join(f"{s} {m}" for s, m in used.items() if m)

    def restore_models(self) -> bool:
        """After a node restart: the index's models served again (`MLCommons.restore`); whether any needed it."""
        ids = [getattr(self.config, f"{s}_model_id") for s in ("sparse", "dense", "reranker")]
        return any([self.transport.ml.restore(m) for m in ids if m])
