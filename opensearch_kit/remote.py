"""`opensearch-kit deploy --remote`: an ML Commons connector to a model server (ours, vLLM, TEI, a hosted API),
the remote model registered and deployed on it with the model_config neural search needs, and the same
in-cluster parity check as for local models against a reference export.

Credentials go only into the connector's `credential` (ML Commons encrypts it); records and summaries never
hold them. Re-running with the same server, kind and API reuses the connector and the model.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from opensearchpy import OpenSearch

from opensearch_kit.artifact import FUNCTION_NAMES, Artifact
from opensearch_kit.errors import KitError, NotFound
from opensearch_kit.opensearch.transport import Transport
from opensearch_kit.verify.cluster import check_in_cluster

APIS = ("opensearch-kit", "openai", "cohere", "tei")
REMOTE_KINDS = ("sparse", "dense", "reranker")
TRUSTED_REGEX = "plugins.ml_commons.trusted_connector_endpoints_regex"
PRIVATE_IP = "plugins.ml_commons.connector.private_ip_enabled"
STEP_SIZE = 32  # texts per remote call (parameters.input_docs_processed_step_size)
TEXTS = "${parameters.input}"

# (kind, api) -> (default route, request body template, pre_process_function, post_process_function)
SHAPES: dict[tuple[str, str], tuple[str, dict, str, str | None]] = {
    ("dense", "openai"): (
        "/v1/embeddings", {"input": TEXTS},
        "connector.pre_process.openai.embedding", "connector.post_process.openai.embedding",
    ),
    ("dense", "tei"): (
        "/embed", {"inputs": TEXTS},
        "connector.pre_process.default.embedding", "connector.post_process.default.embedding",
    ),
    # the bare [{token: weight}] list needs no post-process: ML Commons wraps it as dataAsMap.response
    ("sparse", "opensearch-kit"): ("/v1/sparse", {"input": TEXTS}, "connector.pre_process.default.embedding", None),
    ("reranker", "cohere"): (
        "/v1/rerank",
        {"query": "${parameters.query}", "documents": "${parameters.documents}", "top_n": "${parameters.top_n}"},
        "connector.pre_process.cohere.rerank", "connector.post_process.cohere.rerank",
    ),
}  # fmt: skip
SHAPES[("dense", "opensearch-kit")] = SHAPES[("dense", "openai")]
SHAPES[("reranker", "opensearch-kit")] = SHAPES[("reranker", "cohere")]
UNQUOTED = ("${parameters.input}", "${parameters.documents}", "${parameters.top_n}")  # JSON values, not strings


@dataclass
class RemoteDeployResult:
    """Where a remote deploy left the model: its id, its connector, whether both were reused, the parity check."""

    model_id: str
    connector_id: str
    name: str
    kind: str
    api: str
    endpoint: str
    reused: bool
    deploy_seconds: float
    settings_changed: dict
    cluster_parity: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        how = "already registered" if self.reused else f"registered, deployed in {self.deploy_seconds}s"
        lines = [f"{self.model_id}  {self.name} ({self.kind}, remote {self.api} at {self.endpoint}): {how}"]
        if self.settings_changed:
            lines.append("cluster settings set: " + ", ".join(f"{k}={v}" for k, v in self.settings_changed.items()))
        if self.cluster_parity:
            p = self.cluster_parity
            detail = f"min cosine {p['min_cosine']:.6f}" if "min_cosine" in p else f"max|diff| {p['max_abs_diff']:.2e}"
            lines.append(f"in-cluster parity: {'OK' if p['ok'] else 'FAILED'} ({detail})")
        return "\n".join(lines)


def endpoint_of(url: str, kind: str, api: str) -> str:
    """`url` itself when it names a route, else the server's base URL plus the API's route for `kind`."""
    if (kind, api) not in SHAPES:
        served = ", ".join(a for k, a in SHAPES if k == kind)
        raise KitError(f"no {api} connector shape for {kind} models", f"use --api {served}")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise KitError(f"{url!r} is not an http(s) URL", "pass the server's URL, e.g. http://127.0.0.1:8000")
    return url if parsed.path not in ("", "/") else url.rstrip("/") + SHAPES[(kind, api)][0]


def connector_body(
    name: str, endpoint: str, kind: str, api: str, remote_model: str | None, credential_env: str | None
) -> dict:
    """The connector: one predict action in the API's shape; the key (or a placeholder: ML Commons requires a
    non-empty credential) only in `credential`, referenced from the Authorization header."""
    _, template, pre, post = SHAPES[(kind, api)]
    body = dict(template)
    if remote_model:
        body["model"] = remote_model
    request_body = json.dumps(body)
    for placeholder in UNQUOTED:
        request_body = request_body.replace(f'"{placeholder}"', placeholder)
    action = {
        "action_type": "predict",
        "method": "POST",
        "url": endpoint,
        "headers": {"Content-Type": "application/json"},
        "request_body": request_body,
        "pre_process_function": pre,
    }
    if post:
        action["post_process_function"] = post
    key = "none"
    if credential_env:
        key = os.environ.get(credential_env, "")
        if not key:
            raise KitError(f"environment variable {credential_env} is empty", f"export {credential_env}=<the API key>")
        action["headers"]["Authorization"] = "Bearer ${credential.api_key}"
    parameters = {"input_docs_processed_step_size": STEP_SIZE} if kind != "reranker" else {}
    return {
        "name": name,
        "description": "",  # set to the identity hash
        "version": 1,
        "protocol": "http",
        "parameters": parameters,
        "credential": {"api_key": key},
        "actions": [action],
    }


def identity(body: dict, credential_env: str | None) -> str:
    """A hash of the connector without its key: the same server, shape and key variable give the same one."""
    public = {k: v for k, v in body.items() if k not in ("credential", "description")}
    text = json.dumps({"connector": public, "credential_env": credential_env}, sort_keys=True)
    return "opensearch-kit:" + hashlib.sha256(text.encode()).hexdigest()[:24]


def model_config(kind: str, reference: Artifact | None) -> dict:
    """What neural, neural_sparse and the rerank processor read: model_type, and for dense models the dimension,
    space type and framework (from the reference export's register body)."""
    config: dict = {"model_type": FUNCTION_NAMES[kind]}
    if kind == "dense":
        if reference is None:
            raise KitError("a remote dense model needs its dimension", "pass --reference with the model's export")
        local = reference.register_body.get("model_config") or {}
        config.update(
            embedding_dimension=local["embedding_dimension"],
            framework_type=local.get("framework_type", "SENTENCE_TRANSFORMERS"),
            additional_config={"space_type": (local.get("additional_config") or {}).get("space_type", "cosinesimil")},
        )
    return config


def endpoint_settings(transport: Transport, endpoint: str, allow: bool) -> dict:
    """Make sure the cluster may call `endpoint`: with `allow`, add it to the trusted regexes (and allow private
    IPs for a private host); else a KitError naming the setting to add. The settings changed."""
    flat = {"include_defaults": "true", "flat_settings": "true"}
    current = transport.request("GET", "/_cluster/settings", params=flat)
    merged = {**current.get("defaults", {}), **current.get("persistent", {}), **current.get("transient", {})}
    patterns = merged.get(TRUSTED_REGEX) or []
    patterns = [patterns] if isinstance(patterns, str) else patterns
    host = urlparse(endpoint).hostname
    private = _is_private(host)
    changed: dict = {}
    if not any(_matches(p, endpoint) for p in patterns):
        pattern = f"^{urlparse(endpoint).scheme}://{host.replace('.', chr(92) + '.')}(:[0-9]+)?/.*$"
        if not allow:
            raise KitError(
                f"the cluster does not trust connector endpoint {endpoint} ({TRUSTED_REGEX}: {patterns})",
                f'add "{pattern}" to {TRUSTED_REGEX} (cluster settings), or pass --allow-endpoint',
            )
        changed[TRUSTED_REGEX] = [*patterns, pattern]
    if private and str(merged.get(PRIVATE_IP, "false")).lower() != "true":
        if not allow:
            raise KitError(
                f"{endpoint} is a private address and {PRIVATE_IP} is false",
                f"set {PRIVATE_IP}: true (cluster settings), or pass --allow-endpoint",
            )
        changed[PRIVATE_IP] = True
    if changed:
        transport.request("PUT", "/_cluster/settings", {"persistent": changed})
    return changed


def _matches(pattern: str, endpoint: str) -> bool:
    import re

    try:
        return re.fullmatch(pattern, endpoint) is not None or re.match(pattern, endpoint) is not None
    except re.error:
        return False


def _is_private(host: str) -> bool:
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return False
    return address.is_private or address.is_loopback


def deploy_remote(
    cluster: Transport | OpenSearch,
    url: str,
    kind: str,
    *,
    api: str = "opensearch-kit",
    remote_model: str | None = None,
    reference: str | Path | None = None,
    credential_env: str | None = None,
    allow_endpoint: bool = False,
    name: str | None = None,
    timeout: float = 300,
    check: bool = True,
) -> RemoteDeployResult:
    """Connector + remote model for the `kind` model served at `url`, deployed and (with a `reference` export)
    checked in the cluster like a local deploy; a KitError when the outputs differ."""
    if kind not in REMOTE_KINDS:
        raise KitError(f"remote models are {', '.join(REMOTE_KINDS)}, not {kind!r}", "pass --kind")
    transport = Transport.of(cluster)
    ml = transport.ml
    artifact = Artifact.locate(Path(reference), kind) if reference else None
    endpoint = endpoint_of(url, kind, api)
    changed = endpoint_settings(transport, endpoint, allow_endpoint)
    model_name = name or remote_model or (artifact.register_body["name"] if artifact else f"remote-{kind}")
    body = connector_body(f"opensearch-kit {model_name}", endpoint, kind, api, remote_model, credential_env)
    body["description"] = identity(body, credential_env)
    began = time.monotonic()
    model = _find_model(ml, model_name, body["description"])
    reused = model is not None
    if model is None:
        connector_id = _connector(transport, body)
        register = {
            "name": model_name,
            "function_name": "remote",
            "model_group_id": ml.model_group(model_name),
            "description": body["description"],
            "connector_id": connector_id,
            "model_config": model_config(kind, artifact),
        }
        model_id = ml.register_remote(register)
    else:
        model_id, connector_id = model["model_id"], model["connector_id"]
    ml.deploy(model_id, timeout)
    result = RemoteDeployResult(
        model_id, connector_id, model_name, kind, api, endpoint, reused, round(time.monotonic() - began, 2), changed
    )
    if check and artifact is not None:
        result.cluster_parity = check_in_cluster(ml, model_id, artifact)
        if not result.cluster_parity["ok"]:
            raise KitError(
                f"the remote model's output in the cluster differs from the reference: {result.cluster_parity}",
                f"model {model_id} stays deployed for inspection; check that {url} serves {artifact.dir}",
            )
    return result


def _find_model(ml, name: str, marker: str) -> dict | None:
    """The newest usable remote model called `name` on a connector with this identity."""
    query = {"bool": {"filter": [{"term": {"name.keyword": name}}, {"term": {"algorithm": "REMOTE"}}]}}
    for model in ml.search(query, size=20):
        if model.get("description") == marker and model.get("model_state") not in ("DEPLOY_FAILED",):
            return model
    return None


def _connector(transport: Transport, body: dict) -> str:
    """The id of a connector with this identity, created when missing."""
    query = {"size": 1, "query": {"term": {"description.keyword": body["description"]}}}
    try:
        hits = transport.request("POST", "/_plugins/_ml/connectors/_search", query)["hits"]["hits"]
    except NotFound:
        hits = []
    if hits:
        return hits[0]["_id"]
    return transport.request("POST", "/_plugins/_ml/connectors/_create", body)["connector_id"]
