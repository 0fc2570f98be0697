"""Filters: OpenSearch query clauses every hit must pass, given as JSON clauses or a `--where` shorthand, and where
each retrieval mode puts them so the engine itself filters (never a post-filter of the top k).

Shorthand: `lang=ko`, `lang!=ko`, `year>=2020` (also >, <, <=), `tag in a,b`. A name that is not one of the index's
own or typed fields is looked up in its `metadata` flat_object (exact values; ranges there compare as strings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from opensearch_kit.errors import KitError

Filter = dict | str  # an OpenSearch query clause, or a `--where` shorthand
RANGES = {">=": "gte", ">": "gt", "<=": "lte", "<": "lt"}
_IN = re.compile(r"^\s*([\w.\-]+)\s+in\s+(.+?)\s*$", re.I)
_OP = re.compile(r"^\s*([\w.\-]+)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$")
WHERE_FIX = "write NAME=VALUE, NAME!=VALUE, NAME>=VALUE (>, <, <=) or 'NAME in A,B', e.g. --where 'year>=2020'"


def parse_filter(spec: str) -> dict:
    """`--filter JSON`: one OpenSearch query clause, e.g. {"term": {"lang": "ko"}}."""
    try:
        clause = json.loads(spec)
    except json.JSONDecodeError as e:
        fix = 'write one query clause, e.g. {"term": {"lang": "ko"}}'
        raise KitError(f"--filter {spec!r} is not JSON ({e})", fix) from e
    if not isinstance(clause, dict) or len(clause) != 1:
        raise KitError(f"--filter {spec!r} is not one query clause", 'write an object with one key, e.g. {"term": ...}')
    return clause


def where_clause(spec: str, known: Iterable[str] = (), metadata: str | None = "metadata") -> dict:
    """The query clause of a `--where` shorthand; `known` names the index's top-level fields (others are looked up
    under the `metadata` flat_object)."""
    found = _IN.match(spec)
    if found:
        name, values = found[1], [v.strip() for v in found[2].split(",") if v.strip()]
        if not values:
            raise KitError(f"--where {spec!r} lists no value", WHERE_FIX)
        return {"terms": {_path(name, known, metadata): values}}
    found = _OP.match(spec)
    if not found or not found[3]:
        raise KitError(f"cannot read --where {spec!r}", WHERE_FIX)
    name, op, value = found[1], found[2], found[3].strip("'\"")
    path = _path(name, known, metadata)
    if op == "=":
        return {"term": {path: value}}
    if op == "!=":
        return {"bool": {"must_not": [{"term": {path: value}}]}}
    return {"range": {path: {RANGES[op]: value}}}


def combined(filters: Iterable[Filter], known: Iterable[str] = (), metadata: str | None = "metadata") -> dict | None:
    """One clause all `filters` must pass (None without any): shorthand strings resolved, several joined by a
    bool filter."""
    known = tuple(known)
    clauses = [where_clause(f, known, metadata) if isinstance(f, str) else dict(f) for f in filters]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"bool": {"filter": clauses}}


def bool_filtered(query: dict, clause: dict | None) -> dict:
    """`query` scored as before, on the documents that pass `clause` (bool must + filter: a filter adds no score)."""
    return query if clause is None else {"bool": {"must": [query], "filter": [clause]}}


def inner_filtered(query: dict, clause: dict | None, depth: int) -> dict:
    """A knn / neural / SEISMIC neural_sparse query with `clause` as the engine's own filter: Lucene HNSW searches
    only the passing documents (k hits whenever k pass), SEISMIC takes it in `method_parameters`, with its `k` set
    to `depth` (its default, 10, would cut deeper pages)."""
    kind, body = next(iter(query.items()))
    if clause is None and kind != "neural_sparse":
        return query
    params = dict(next(iter(body.values())))
    if kind == "neural_sparse":
        method = dict(params.get("method_parameters") or {})
        method.setdefault("k", depth)
        params["method_parameters"] = method if clause is None else {**method, "filter": clause}
    else:
        params["filter"] = clause
    return {kind: {next(iter(body)): params}}


def _path(name: str, known: Iterable[str], metadata: str | None) -> str:
    if name in known or not metadata or name.startswith(f"{metadata}."):
        return name
    return f"{metadata}.{name}"
