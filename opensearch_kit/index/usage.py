"""Which indexes use which models: an index made by opensearch-kit references a model in its `_meta` record and in
the ingest and search pipelines it names (a pipeline that runs a model holds its id)."""

from __future__ import annotations

from opensearch_kit.errors import KitError, NotFound
from opensearch_kit.index.meta import META_KEY, IndexMeta
from opensearch_kit.opensearch.transport import Transport


def model_users(transport: Transport) -> dict[str, list[str]]:
    """model id -> the sorted names of the indexes whose `_meta` or pipelines reference it."""
    try:
        mappings = transport.request("GET", "/_mapping")
    except NotFound:
        return {}
    pipelines = {**_pipelines(transport, "/_ingest/pipeline"), **_pipelines(transport, "/_search/pipeline")}
    users: dict[str, set[str]] = {}
    for index, body in mappings.items():
        record = (body.get("mappings") or {}).get("_meta", {}).get(META_KEY)
        if index.startswith(".") or not record:
            continue
        try:
            meta = IndexMeta.from_dict(record)
        except KitError:
            continue
        ids = set(meta.models().values())
        ids |= _ids_in([pipelines[name] for name in meta.pipelines.values() if name in pipelines])
        for model_id in ids:
            users.setdefault(model_id, set()).add(index)
    return {model_id: sorted(indexes) for model_id, indexes in users.items()}


def _pipelines(transport: Transport, path: str) -> dict[str, dict]:
    try:
        return transport.request("GET", path) or {}
    except NotFound:
        return {}


def _ids_in(node) -> set[str]:
    """Every model id a pipeline definition names: values of `model_id`, `default_model_id` and the per-field
    `neural_field_default_id` map."""
    if isinstance(node, list):
        return set().union(*(_ids_in(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found: set[str] = set()
    for key, value in node.items():
        if key.endswith("model_id") and isinstance(value, str):
            found.add(value)
        elif key == "neural_field_default_id" and isinstance(value, dict):
            found |= {v for v in value.values() if isinstance(v, str)}
        else:
            found |= _ids_in(value)
    return found
