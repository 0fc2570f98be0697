"""Run built queries against an index: typed hits, per-signal scores of hybrid queries, latency."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from opensearchpy import OpenSearch

from opensearch_kit.errors import KitError, ModelNotFound, NotFound
from opensearch_kit.index.meta import IndexMeta
from opensearch_kit.opensearch.features import features
from opensearch_kit.opensearch.transport import Transport
from opensearch_kit.search.query import (
    IndexConfig,
    QueryOptions,
    SearchRequest,
    build_search,
    required_pipelines,
    signals_of,
)

SparseQueryEncoder = Callable[[str], Mapping[str, float]]
DenseQueryEncoder = Callable[[str], list[float]]
Encoding = Literal["auto", "local", "cluster"]


@dataclass(frozen=True)
class Hit:
    """One result. `signals` holds a hybrid query's raw sub-query scores, by signal name, when the request asked
    for explain (0.0 where a sub-query did not match); None otherwise."""

    id: str
    score: float
    source: dict
    signals: dict[str, float] | None = None
    chunk: Chunk | None = None  # chunked index: the best-matching chunk of a sparse / dense match

    def to_dict(self) -> dict:
        record = {"id": self.id, "score": self.score, "source": self.source, "signals": self.signals}
        if self.chunk:
            record["chunk"] = asdict(self.chunk)
        return record


@dataclass(frozen=True)
class Chunk:
    """A document's best chunk for one signal: its position in the chunk list, its text and its score."""

    signal: str
    offset: int
    text: str
    score: float


@dataclass(frozen=True)
class SearchResult:
    """Hits (at most k), the wall time of the whole search (query encoding included), and the server's `took`."""

    index: str
    options: QueryOptions
    config: IndexConfig
    hits: list[Hit]
    latency_ms: float
    took_ms: int
    request: SearchRequest

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "mode": self.options.label,
            "latency_ms": round(self.latency_ms, 1),
            "took_ms": self.took_ms,
            "hits": [hit.to_dict() for hit in self.hits],
        }

    def summary(self) -> str:
        """One line per hit: rank, score, id, per-signal scores (with explain) and the start of its text."""
        lines = [f"{self.options.label} on {self.index}: {len(self.hits)} hit(s) in {self.latency_ms:.0f} ms"]
        for rank, hit in enumerate(self.hits, 1):
            shown = [self.config.title_field, self.config.text_field, *hit.source]
            snippet = " | ".join(str(hit.source[f]) for f in dict.fromkeys(shown) if f in hit.source)
            signals = "  " + " ".join(f"{s}={v:.4g}" for s, v in hit.signals.items()) if hit.signals else ""
            lines.append(f"{rank:>3}. {hit.score:9.4f}  {hit.id}{signals}  {snippet[:80]}")
            if hit.chunk:
                c = hit.chunk
                lines.append(f"       best {c.signal} chunk #{c.offset} ({c.score:.4g}): {c.text[:80]}")
        return "\n".join(lines)


def read_index_config(transport: Transport, index: str) -> IndexConfig:
    """The IndexConfig of an index made by `create_index`, from its record."""
    return IndexConfig.from_meta(IndexMeta.read(transport, index))


def local_sparse_encoder(export_dir: Path) -> SparseQueryEncoder:
    """Query encoder from an ONNX sparse export directory (opensearch-kit export sparse --format onnx)."""
    from opensearch_kit.runtime.sparse import SparseEncoder

    encoder = SparseEncoder.from_dir(export_dir)
    return lambda text: encoder.encode([text])[0]


def local_dense_encoder(export_dir: Path) -> DenseQueryEncoder:
    """Query encoder from a dense export directory (query-side prompt/prefix applied)."""
    from opensearch_kit.runtime.dense import DenseEncoder

    encoder = DenseEncoder.from_dir(export_dir)
    return lambda text: [float(x) for x in encoder.embed([text], is_query=True)[0]]


class Searcher:
    """Searches one index. Sparse and dense queries are encoded in the cluster by the index's model ids, or
    locally by the given encoders: `encoding` auto prefers the cluster's models, local / cluster force one side."""

    def __init__(
        self,
        cluster: Transport | OpenSearch,
        index: str,
        *,
        config: IndexConfig | None = None,
        sparse_encoder: SparseQueryEncoder | None = None,
        dense_encoder: DenseQueryEncoder | None = None,
        encoding: Encoding = "auto",
    ):
        self.transport = Transport.of(cluster)
        self.index = index
        self.config = config or read_index_config(self.transport, index)
        self.encoders = {"sparse": sparse_encoder, "dense": dense_encoder}
        self.encoding = encoding
        self._pipelines: dict[str, dict] = {}

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
        has_local = self.encoders[signal] is not None
        if self.encoding == "local" or (self.encoding == "auto" and not has_model):
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

    def located_encoder(self, signal: str, model_id: str):
        """The local query encoder of the index's `signal` model, from its ONNX export found by fingerprint."""
        from opensearch_kit.export.locate import onnx_export_of

        export = onnx_export_of(self.transport.ml, model_id, signal)
        return (local_sparse_encoder if signal == "sparse" else local_dense_encoder)(export)

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
        signals = signals_of(options, self.config)
        tokens = self.encoders["sparse"](text) if "sparse" in signals and self.uses_local("sparse") else None
        vector = self.encoders["dense"](text) if "dense" in signals and self.uses_local("dense") else None
        definitions = self.pipeline_definitions(required_pipelines(options, self.config))
        return build_search(
            text, options, self.config, sparse_tokens=tokens, dense_vector=vector, pipelines=definitions
        )

    def search(self, text: str, options: QueryOptions | None = None) -> SearchResult:
        """Run one query; the latency covers local encoding and the HTTP round trip (pipeline definitions are
        fetched once per searcher, outside it)."""
        options = options or QueryOptions()
        self.require_features(options)
        self.pipeline_definitions(required_pipelines(options, self.config))
        began = time.perf_counter()
        request = self.build(text, options)
        try:
            response = self.transport.request("POST", f"/{self.index}/_search", request.body, params=request.params)
        except ModelNotFound as e:
            used = {s: getattr(self.config, f"{s}_model_id") for s in ("sparse", "dense", "reranker")}
            named = ", ".join(f"{s} {m}" for s, m in used.items() if m)
            e.message = f"index {self.index} uses a model ML Commons no longer has ({named}): {e.reason}"
            e.fix = "deploy the model again and recreate the index, or search in bm25 mode"
            raise
        latency_ms = (time.perf_counter() - began) * 1000
        hits = [_hit(h, request.signals, self.config.chunks_field) for h in response["hits"]["hits"][: request.k]]
        return SearchResult(self.index, options, self.config, hits, latency_ms, int(response.get("took", 0)), request)


def _hit(raw: dict, signals: tuple[str, ...], chunks_field: str | None) -> Hit:
    source = dict(raw.get("_source") or {})
    chunks = source.pop(chunks_field, None) if chunks_field else None
    return Hit(raw["_id"], float(raw["_score"]), source, _signal_scores(raw, signals), _best_chunk(raw, chunks))


def _best_chunk(raw: dict, chunks: list[str] | None) -> Chunk | None:
    """The first signal's (sparse, then dense) inner hit: the best chunk of the nested match."""
    inner = raw.get("inner_hits") or {}
    for signal in ("sparse", "dense"):
        found = ((inner.get(signal) or {}).get("hits") or {}).get("hits") or []
        if found:
            offset = int(found[0]["_nested"]["offset"])
            text = chunks[offset] if chunks and offset < len(chunks) else ""
            return Chunk(signal, offset, text, float(found[0].get("_score") or 0.0))
    return None


def _signal_scores(raw: dict, signals: tuple[str, ...]) -> dict[str, float] | None:
    """Raw sub-query scores from a hybrid hit's explanation: its top level has one detail per sub-query."""
    explanation = raw.get("_explanation")
    if not signals or not explanation:
        return None
    details = explanation.get("details") or []
    if len(details) != len(signals):
        return None
    return {s: float(d["value"]) for s, d in zip(signals, details, strict=True)}
