"""A search's typed results: hits with their per-signal scores, best chunk and highlight, and the page they form."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from opensearch_kit.search.query import IndexConfig, QueryOptions, SearchRequest


@dataclass(frozen=True)
class Hit:
    """One result. `signals` holds a hybrid query's raw sub-query scores, by signal name, when the request asked
    for explain (0.0 where a sub-query did not match); None otherwise."""

    id: str
    score: float
    source: dict
    signals: dict[str, float] | None = None
    chunk: Chunk | None = None  # chunked index: the best-matching chunk of a sparse / dense match
    highlight: str | None = None  # with highlight: the text field's passage best matching the query's words

    def to_dict(self) -> dict:
        record = {"id": self.id, "score": self.score, "source": self.source, "signals": self.signals}
        if self.chunk:
            record["chunk"] = asdict(self.chunk)
        if self.highlight is not None:
            record["highlight"] = self.highlight
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
    """Hits (at most k, from `options.offset` on), the documents matching in all (`total`; a lower bound unless
    `total_exact`), the wall time of the whole search (query encoding included), and the server's `took`."""

    index: str
    options: QueryOptions
    config: IndexConfig
    hits: list[Hit]
    latency_ms: float
    took_ms: int
    request: SearchRequest
    total: int = 0
    total_exact: bool = True

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "mode": self.options.label,
            "total": self.total,
            "total_exact": self.total_exact,
            "from": self.options.offset,
            "latency_ms": round(self.latency_ms, 1),
            "took_ms": self.took_ms,
            "hits": [hit.to_dict() for hit in self.hits],
        }

    def summary(self) -> str:
        """One line per hit: rank, score, id, per-signal scores (with explain) and the start of its text."""
        total = f"{self.total}{'' if self.total_exact else '+'}"
        shown_hits = f"{len(self.hits)} of {total} hit(s)"
        lines = [f"{self.options.label} on {self.index}: {shown_hits} in {self.latency_ms:.0f} ms"]
        for rank, hit in enumerate(self.hits, self.options.offset + 1):
            shown = [self.config.title_field, self.config.text_field, *hit.source]
            snippet = " | ".join(str(hit.source[f]) for f in dict.fromkeys(shown) if f in hit.source)
            signals = "  " + " ".join(f"{s}={v:.4g}" for s, v in hit.signals.items()) if hit.signals else ""
            lines.append(f"{rank:>3}. {hit.score:9.4f}  {hit.id}{signals}  {snippet[:80]}")
            if hit.chunk:
                c = hit.chunk
                lines.append(f"       best {c.signal} chunk #{c.offset} ({c.score:.4g}): {c.text[:80]}")
            if hit.highlight:
                lines.append(f"       {hit.highlight}")
        return "\n".join(lines)


def hit_of(raw: dict, signals: tuple[str, ...], config: IndexConfig) -> Hit:
    """The Hit of a raw search hit; `signals`: a hybrid query's sub-queries, in order, when it asked for explain."""
    source = dict(raw.get("_source") or {})
    chunks = source.pop(config.chunks_field, None) if config.chunks_field else None
    passages = (raw.get("highlight") or {}).get(config.text_field)
    return Hit(
        raw["_id"],
        float(raw["_score"]),
        source,
        _signal_scores(raw, signals),
        _best_chunk(raw, chunks),
        passages[0] if passages else None,
    )


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
