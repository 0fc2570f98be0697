"""sparse_vector (SEISMIC) fields and token ids: neural-search keeps token ids in 16-bit shorts (its `sparse/`
code, issue #1926), so on such a server a query id of 32,768 or more fails with HTTP 500 and a document id is
folded onto another token. A probe on the live cluster tells whether it folds; a model whose vocabulary reaches
that limit is then refused for sparse_vector before anything is created."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from opensearch_kit.errors import ClusterError, KitError
from opensearch_kit.opensearch.transport import Transport

ID_LIMIT = 32768  # ids a signed 16-bit short holds
PROBE_ID = 2 * ID_LIMIT + 100  # folds onto token 100 (modulo 32768 or 65536)
FOLDED_ID = 100


def probe_id_folding(transport: Transport) -> bool:
    """Whether the cluster's sparse_vector fields fold token ids: a throwaway index whose segment is built as
    SEISMIC (approximate_threshold 1; below the threshold a segment is searched like rank_features, where ids
    survive) holds a document with token PROBE_ID; the id survives when a query for it finds that document and a
    query for FOLDED_ID does not."""
    index = f"opensearch-kit-probe-ids-{uuid.uuid4().hex[:8]}"
    method = {"name": "seismic", "parameters": {"approximate_threshold": 1}}
    body = {
        "settings": {"index": {"sparse": True, "number_of_shards": 1, "number_of_replicas": 0}},
        "mappings": {"properties": {"v": {"type": "sparse_vector", "method": method}}},
    }
    transport.request("PUT", f"/{index}", body)
    try:
        transport.request("PUT", f"/{index}/_doc/probe", {"v": {str(PROBE_ID): 1.0}})
        transport.request("PUT", f"/{index}/_doc/other", {"v": {"7": 1.0}})
        transport.request("POST", f"/{index}/_flush")
        transport.request("POST", f"/{index}/_refresh")
        return not (_finds(transport, index, PROBE_ID) and not _finds(transport, index, FOLDED_ID))
    finally:
        transport.request("DELETE", f"/{index}")


def _finds(transport: Transport, index: str, token: int) -> bool:
    query = {"neural_sparse": {"v": {"query_tokens": {str(token): 1.0}, "method_parameters": {"k": 2}}}}
    try:
        hits = transport.request("POST", f"/{index}/_search", {"query": query})["hits"]["hits"]
    except ClusterError:
        return False  # e.g. HTTP 500 negative_array_size_exception for a query id over 32,767
    return any(h["_id"] == "probe" for h in hits)


def export_vocab_size(export_dir: Path) -> int:
    """The vocabulary size of an exported sparse model: its tokenizer.json's, or the report's when larger."""
    from tokenizers import Tokenizer

    from opensearch_kit.artifact import Artifact

    artifact = Artifact.locate(Path(export_dir), "sparse")
    size = Tokenizer.from_file(str(artifact.tokenizer_file)).get_vocab_size()
    reported = (artifact.report.get("details") or {}).get("vocab_size") or 0
    return max(size, int(reported))


def model_vocab_size(transport: Transport, model: dict, export_dir: Path | None) -> int | None:
    """The sparse model's vocabulary size: from `export_dir`, the model's model_config.all_config, or its export
    found in the local cache by fingerprint; None when none of them tells."""
    if export_dir:
        return export_vocab_size(export_dir)
    config = (model.get("model_config") or {}).get("all_config")
    if config:
        size = (json.loads(config) if isinstance(config, str) else config).get("vocab_size")
        if size:
            return int(size)
    from opensearch_kit.export.identity import cached_export
    from opensearch_kit.opensearch.ml import fingerprint_of_group

    fp = fingerprint_of_group(transport.ml, model.get("model_group_id"))
    artifact = cached_export(fp) if fp else None
    return export_vocab_size(artifact.dir) if artifact else None


def check_sparse_vector(transport: Transport, model: dict, export_dir: Path | None) -> tuple[bool, int | None]:
    """(whether the server folds ids, the id limit of the field) for a sparse_vector field of `model`; a KitError
    naming --sparse-type rank_features when the model's vocabulary does not fit (or cannot be read) there."""
    folds = probe_id_folding(transport)
    if not folds:
        return False, None
    size = model_vocab_size(transport, model, export_dir)
    name = f"{model.get('name', '?')} ({model['model_id']})"
    if size is None:
        raise KitError(
            f"this server's sparse_vector (SEISMIC) keeps only token ids below {ID_LIMIT} and the vocabulary size "
            f"of sparse model {name} cannot be read",
            "use --sparse-type rank_features, or pass --sparse-encoder DIR (the model's export) to check it",
        )
    if size > ID_LIMIT:
        raise KitError(
            f"sparse model {name} has {size} token ids; this server's sparse_vector (SEISMIC) keeps only ids below "
            f"{ID_LIMIT}: higher ones fail at query time (HTTP 500) or score as other tokens (neural-search #1926)",
            "use --sparse-type rank_features",
        )
    return True, ID_LIMIT


def check_token_ids(weights: dict, limit: int | None, what: str) -> dict:
    """`weights` (token id -> weight) when every id is below `limit`; a KitError otherwise (never sent)."""
    if limit is not None:
        over = [t for t in weights if str(t).isdigit() and int(t) >= limit]
        if over:
            raise KitError(
                f"{what} has token id {over[0]}, which this index's sparse_vector field cannot hold (ids < {limit})",
                "recreate the index with --sparse-type rank_features",
            )
    return weights
