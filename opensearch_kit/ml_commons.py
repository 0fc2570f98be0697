"""ML Commons model lifecycle: model groups, chunked local-zip registration, deploy, predict, undeploy, delete."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

from opensearchpy import OpenSearch
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
    TransportError,
)
from tqdm import tqdm

from opensearch_kit.errors import KitError
from opensearch_kit.maven import file_digest

ML = "/_plugins/_ml"
CHUNK_SIZE = 10_000_000  # ML Commons rejects chunks over 10 MB (ModelHelper.CHUNK_SIZE)
MAX_UPLOAD_BYTES = 4 * 1024**3  # MLModelManager.MODEL_FILE_SIZE_LIMIT
log = logging.getLogger(__name__)


BREAKER_FIX = (
    "a circuit breaker tripped: free memory/disk or raise plugins.ml_commons.native_memory_threshold / "
    "jvm_heap_memory_threshold / disk_free_space_threshold"
)


def sha256_file(path: Path) -> str:
    """The model_content_hash_value ML Commons checks at deploy."""
    return file_digest(path, "sha256")


RETRY_STATUSES = {429, 500, 502, 503, 504}
REUSABLE_STATES = {"REGISTERED", "DEPLOYED", "DEPLOYING", "PARTIALLY_DEPLOYED", "UNDEPLOYED", "DEPLOY_FAILED"}


@dataclass
class Registration:
    """Where register_zip left a model: its id, whether an identical one was reused, and what was sent."""

    model_id: str
    reused: bool
    resumed: bool
    uploaded_bytes: int
    seconds: float


class MLCommons:
    """A thin, error-explaining client for the ML Commons REST API, with retry and backoff on transient faults."""

    def __init__(self, client: OpenSearch, retries: int = 4, backoff: float = 1.0):
        self.client = client
        self.retries = retries
        self.backoff = backoff

    def _call(self, method: str, path: str, body=None, params=None, retry: bool = False) -> dict:
        """One REST call; transient faults (cut connection, 429, 5xx) are retried with backoff when `retry`."""
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            try:
                return self.client.transport.perform_request(method, path, body=body, params=params)
            except (ConnectionError, ConnectionTimeout) as e:
                if attempt + 1 == attempts:
                    raise
                log.warning("%s %s: %s; retry %d/%d", method, path, type(e).__name__, attempt + 1, self.retries)
            except (AuthenticationException, AuthorizationException):
                raise
            except TransportError as e:
                if e.status_code not in RETRY_STATUSES or attempt + 1 == attempts:
                    raise explain(e) from e
                log.warning("%s %s: HTTP %s; retry %d/%d", method, path, e.status_code, attempt + 1, self.retries)
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def model_group(self, name: str) -> str:
        """Id of the model group called `name`, created when missing."""
        found = self._call("POST", f"{ML}/model_groups/_search", {"query": {"term": {"name.keyword": name}}, "size": 1})
        hits = found.get("hits", {}).get("hits", [])
        if hits:
            return hits[0]["_id"]
        created = self._call(
            "POST", f"{ML}/model_groups/_register", {"name": name, "description": "registered by opensearch-kit"}
        )
        return created["model_group_id"]

    def find_model(self, name: str, content_hash: str) -> dict | None:
        """The newest model called `name` whose zip has `content_hash`, if any."""
        query = {
            "bool": {
                "filter": [{"term": {"name.keyword": name}}, {"term": {"model_content_hash_value": content_hash}}],
                "must_not": {"exists": {"field": "chunk_number"}},
            }
        }
        body = {"size": 1, "query": query, "sort": [{"created_time": "desc"}], "_source": {"excludes": ["content"]}}
        try:
            hits = self._call("POST", f"{ML}/models/_search", body)["hits"]["hits"]
        except KitError:
            return None  # no model index yet
        return {"model_id": hits[0]["_id"], **hits[0]["_source"]} if hits else None

    def uploaded_chunks(self, model_id: str) -> set[int]:
        """Chunk numbers of `model_id` already stored in the cluster."""
        body = {"size": 10_000, "query": {"term": {"model_id": model_id}}, "_source": ["chunk_number"]}
        hits = self._call("POST", f"{ML}/models/_search", body)["hits"]["hits"]
        return {h["_source"]["chunk_number"] for h in hits if "chunk_number" in h["_source"]}

    def register_zip(
        self, zip_path: Path, meta: dict, chunk_size: int = CHUNK_SIZE, progress: bool = True
    ) -> Registration:
        """Register a local model zip through _register_meta + upload_chunk.

        `meta` holds name, model_format, function_name and, for dense models, model_config; the zip's sha256,
        size and chunk count are added here. A model with the same name and hash is reused (nothing uploaded);
        one left half-uploaded by an earlier run is resumed. A failed upload deletes the half-registered model.
        """
        began = time.monotonic()
        size = zip_path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise KitError(
                f"{zip_path} is {size / 1024**3:.2f} GiB; ML Commons accepts at most 4 GiB",
                "export in fp16 or int8, or use a smaller model",
            )
        content_hash = sha256_file(zip_path)
        total_chunks = max(1, math.ceil(size / chunk_size))
        existing = self.find_model(meta["name"], content_hash)
        state = existing.get("model_state") if existing else None
        if existing and state in REUSABLE_STATES:
            return Registration(existing["model_id"], True, False, 0, time.monotonic() - began)
        if existing and state == "REGISTERING" and existing.get("total_chunks") == total_chunks:
            model_id, done = existing["model_id"], self.uploaded_chunks(existing["model_id"])
        else:
            if existing:
                self.delete(existing["model_id"])
            body = {
                "name": meta["name"],
                "version": meta.get("version", "1.0.0"),
                "model_format": meta["model_format"],
                "function_name": meta["function_name"],
                **({"model_config": meta["model_config"]} if meta.get("model_config") else {}),
                "description": meta.get("description", ""),
                "model_group_id": meta.get("model_group_id") or self.model_group(meta["name"]),
                "model_content_hash_value": content_hash,
                "model_content_size_in_bytes": size,
                "total_chunks": total_chunks,
            }
            model_id, done = self._call("POST", f"{ML}/models/_register_meta", body)["model_id"], set()
        sent = self._upload(model_id, zip_path, total_chunks, chunk_size, done, progress)
        return Registration(model_id, False, bool(done), sent, time.monotonic() - began)

    def _upload(
        self, model_id: str, zip_path: Path, total: int, chunk_size: int, done: set[int], progress: bool
    ) -> int:
        """Send the chunks not in `done` (the last one always: it marks the model REGISTERED); bytes sent."""
        sent = 0
        n = 0
        try:
            with (
                zip_path.open("rb") as f,
                tqdm(
                    total=zip_path.stat().st_size,
                    unit="B",
                    unit_scale=True,
                    disable=not progress,
                    desc=f"upload {zip_path.name}",
                    leave=False,
                ) as bar,
            ):
                for n in range(total):
                    chunk = f.read(chunk_size)
                    if n not in done or n == total - 1:
                        self._call("POST", f"{ML}/models/{model_id}/upload_chunk/{n}", chunk, retry=True)
                        sent += len(chunk)
                    bar.update(len(chunk))
        except BaseException as e:
            error = self._abandon(model_id, f"upload of {zip_path.name} failed at chunk {n + 1}/{total}", e)
            if error is None:
                raise
            raise error from e
        return sent

    def _abandon(self, model_id: str, what: str, cause: BaseException) -> KitError | None:
        """Delete a half-registered model; the error to raise says whether that worked (None: re-raise `cause`)."""
        try:
            self.delete(model_id)
            left = "the half-registered model was deleted"
        except Exception:
            left = f"the half-registered model {model_id} is left; the same command again resumes its upload"
        if not isinstance(cause, Exception):
            return None
        fix = cause.fix if isinstance(cause, KitError) and cause.fix else "check the connection and run it again"
        reason = cause.message if isinstance(cause, KitError) else f"{type(cause).__name__}: {cause}"
        return KitError(f"{what} ({reason}); {left}", fix)

    def wait_task(self, task_id: str, timeout: float = 600) -> dict:
        """Poll a task until it completes; a KitError with the server's reason when it fails."""
        deadline = time.monotonic() + timeout
        while True:
            task = self._call("GET", f"{ML}/tasks/{task_id}", retry=True)
            if task["state"] == "COMPLETED":
                return task
            if task["state"] in ("FAILED", "COMPLETED_WITH_ERROR", "CANCELLED"):
                raise deploy_failure(task)
            if time.monotonic() > deadline:
                raise KitError(
                    f"task {task_id} still {task['state']} after {timeout:.0f}s",
                    "raise --timeout, or check the node logs",
                )
            time.sleep(1)

    def deploy(self, model_id: str, timeout: float = 600) -> bool:
        """Deploy a registered model and wait until it serves; False when it was already deployed."""
        if self.get(model_id).get("model_state") == "DEPLOYED":
            return False
        task = self._call("POST", f"{ML}/models/{model_id}/_deploy")
        self.wait_task(task["task_id"], timeout)
        return True

    def predict(self, model_id: str, body: dict) -> dict:
        return self._call("POST", f"{ML}/models/{model_id}/_predict", body, retry=True)

    def get(self, model_id: str) -> dict:
        try:
            return self._call("GET", f"{ML}/models/{model_id}")
        except KitError as e:
            if "404" in e.message or "Failed to find model" in e.message:
                raise KitError(
                    f"no model {model_id} in the cluster", "list models with: opensearch-kit models list"
                ) from e
            raise

    def undeploy(self, model_id: str) -> dict:
        return self._call("POST", f"{ML}/models/{model_id}/_undeploy")

    def delete(self, model_id: str) -> None:
        """Undeploy (if needed) and delete a model; a missing model is not an error."""
        try:
            self.client.transport.perform_request("POST", f"{ML}/models/{model_id}/_undeploy")
            self.client.transport.perform_request("DELETE", f"{ML}/models/{model_id}")
        except NotFoundError:
            pass

    def list_models(self, size: int = 1000) -> list[dict]:
        """Every model (not its chunks) with id, name, state, function, format, hash."""
        body = {
            "size": size,
            "query": {"bool": {"must_not": {"exists": {"field": "chunk_number"}}}},
            "sort": [{"created_time": "desc"}],
            "_source": {"excludes": ["content"]},
        }
        try:
            hits = self._call("POST", f"{ML}/models/_search", body)["hits"]["hits"]
        except KitError as e:
            if "index_not_found" in e.message or "404" in e.message:
                return []
            raise
        return [{"model_id": h["_id"], **h["_source"]} for h in hits]


def deploy_failure(task: dict) -> KitError:
    """Explain a failed ML task, quoting the node's reason."""
    error = task.get("error", "no reason given")
    fix = "see the node log"
    if "libtorch" in error.lower() or "unknown builtin op" in error.lower() or "schema" in error.lower():
        fix = "the server's libtorch (2.5.1) lacks an op the model uses: re-export with opensearch-kit export"
    elif "memory" in error.lower() or "circuit" in error.lower():
        fix = BREAKER_FIX
    return KitError(f"ML task {task.get('task_type', '')} failed: {error}", fix)


def explain(e: TransportError) -> KitError:
    """A KitError that names the fix for the ML Commons errors users hit most."""
    reason = str(e.info) if e.info else str(e.error)
    text = reason.lower()
    if "allow_registering_model_via_local_file" in text or "local file" in text:
        fix = "set plugins.ml_commons.allow_registering_model_via_local_file: true in the cluster settings"
    elif "no eligible node" in text or "only_run_on_ml_node" in text or "ml node" in text:
        fix = "add a node with the ml role, or set plugins.ml_commons.only_run_on_ml_node: false"
    elif "circuit" in text or "memory" in text or "disk" in text:
        fix = BREAKER_FIX
    else:
        fix = "see the server's reason above"
    return KitError(f"ML Commons error {e.status_code}: {reason[:2000]}", fix)
