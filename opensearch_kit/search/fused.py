"""The wire side of client-side hybrid fusion (`Searcher(fusion="client")`): _msearch lines holding sub-queries
alone on every shard, and the fused ranking from their answers. The fusion itself, as neural-search computes it, is
`search.fusion` (numpy: imported when a search is fused)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping

from opensearchpy.exceptions import TransportError

from opensearch_kit.opensearch.features import Features
from opensearch_kit.opensearch.transport import Transport, translate
from opensearch_kit.search.query import HYBRID_PROCESSORS, IndexConfig, QueryOptions, SearchRequest


def blocker(
    options: QueryOptions, config: IndexConfig, cluster: Features, pipelines: Callable[[], Mapping]
) -> str | None:
    """Why a hybrid search with `options` on an index of `config` must be fused on the server, or None;
    `pipelines()` gives the definitions of the search pipelines it needs (asked last)."""
    if options.rerank:
        return "the rerank runs in the server's search pipeline"
    if options.explain:
        return "explain reports the server's per-sub-query scores"
    if config.sparse_nested or config.dense_nested:
        return "a chunked index's best chunks come from the hybrid query's inner hits"
    if importlib.util.find_spec("numpy") is None:
        return "numpy is not installed (it comes with the export, ray and eval extras)"
    if not cluster.has("client_fusion"):
        return f"the cluster runs OpenSearch {cluster.version_text}; client-side fusion is checked on 3.x only"
    for name, definition in pipelines().items():
        sections = [section for section in definition.values() if isinstance(section, list)]
        kinds = [kind for section in sections for processor in section for kind in processor]
        if kinds not in ([k] for k in HYBRID_PROCESSORS):
            return f"search pipeline {name!r} has processors besides its fusion ({', '.join(kinds)})"
    return None


def msearch_lines(index: str, shards: int, requests: list[SearchRequest]) -> list[dict]:
    """_msearch header and body lines: each request once per shard (`preference`), in order. A body names the
    pipeline its request passes by name (`_none` for a lone sub-query, so that an index's default search pipeline
    leaves it alone); an inline one stays as it is."""
    lines: list[dict] = []
    for request in requests:
        body = {**request.body, "search_pipeline": request.pipeline} if request.pipeline else request.body
        for shard in range(shards):
            header = {"index": index} | ({"preference": f"_shards:{shard}"} if shards > 1 else {})
            lines += [header, body]
    return lines


def msearch(transport: Transport, lines: list[dict]) -> list[dict]:
    """POST an _msearch; each search's answer, in order. A failed search raises what a lone search raises."""
    answer = transport.call(lambda: transport.client.msearch(body=lines), "POST /_msearch")
    for response in answer["responses"]:
        if "error" in response:
            status, error = response.get("status", 500), response["error"]
            failure = TransportError(status, error.get("type"), {"error": error, "status": status})
            raise translate(failure, "POST /_msearch", transport.url)
    return answer["responses"]


def fused_ranking(
    answers: list[dict], signals: tuple[str, ...], shards: int, pipeline: Mapping, depth: int
) -> tuple[list[tuple[dict, float]], int]:
    """The top `depth` (raw hit, fused score) pairs from the answers of `msearch_lines` (each signal's shards in
    turn), fused as the hybrid `pipeline` definition does, ties by doc id descending; and a lower bound of the
    matching documents (the most one sub-query matched)."""
    import numpy as np

    from opensearch_kit.search.fusion import FusionPoint, QueryHits, fuse, top_k

    responses = iter(answers)
    lists: list[list] = [[] for _ in range(shards)]
    raw_hits: dict[str, dict] = {}
    total = 0
    for _ in signals:
        matched = 0
        for shard in range(shards):
            response = next(responses)
            found = response["hits"]["hits"][:depth]
            lists[shard].append(([h["_id"] for h in found], np.array([h["_score"] for h in found], np.float32)))
            raw_hits.update({h["_id"]: h for h in found if h["_id"] not in raw_hits})
            matched += int((response["hits"].get("total") or {}).get("value", len(found)))
        total = max(total, matched)
    hits = QueryHits(signals, lists)
    ranked = top_k(hits.doc_ids, fuse(hits, FusionPoint.from_pipeline(pipeline)), depth)
    return [(raw_hits[doc], score) for doc, score in ranked.items()], total
