"""ML Commons model lifecycle: model groups, chunked local-zip registration, deploy, predict, undeploy, delete."""

from __future__ import annotations

import math
import time
from pathlib import Path

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, TransportError
from tqdm import tqdm

from opensearch_kit.errors import KitError
from opensearch_kit.maven import file_digest

ML = "/_plugins/_ml"
CHUNK_SIZE = 10_000_000  # ML Commons rejects chunks over 10 MB (ModelHelper.CHUNK_SIZE)
MAX_UPLOAD_BYTES = 4 * 1024**3  # MLModelManager.MODEL_FILE_SIZE_LIMIT


BREAKER_FIX = (
    "a circuit breaker tripped: free memory/disk or raise plugins.ml_commons.native_memory_threshold / "
    "jvm_heap_memory_threshold / disk_free_space_threshold"
)


def sha256_file(path: Path) -> str:
    """The model_content_hash_value ML Commons checks at deploy."""
    return file_digest(path, "sha256")


class MLCommons:
    """A thin, error-explaining client for the ML Commons REST API."""

    def __init__(self, client: OpenSearch):
        self.client = client

    def _call(self, method: str, path: str, body=None, params=None) -> dict:
        try:
            return self.client.transport.perform_request(method, path, body=body, params=params)
        except TransportError as e:
            raise explain(e) from e

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

    def register_zip(self, zip_path: Path, meta: dict, chunk_size: int = CHUNK_SIZE, progress: bool = True) -> str:
        """Register a local model zip through _register_meta + upload_chunk; the new model id.

        `meta` holds name, model_format, function_name and, for dense models, model_config. The zip's sha256,
        size and chunk count are added here. A failed upload deletes the half-registered model.
        """
        size = zip_path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise KitError(
                f"{zip_path} is {size / 1024**3:.2f} GiB; ML Commons accepts at most 4 GiB",
                "export in fp16 or int8, or use a smaller model",
            )
        body = {
            "name": meta["name"],
            "version": meta.get("version", "1.0.0"),
            "model_format": meta["model_format"],
            "function_name": meta["function_name"],
            **({"model_config": meta["model_config"]} if meta.get("model_config") else {}),
            "description": meta.get("description", ""),
            "model_group_id": meta.get("model_group_id") or self.model_group(meta["name"]),
            "model_content_hash_value": sha256_file(zip_path),
            "model_content_size_in_bytes": size,
            "total_chunks": max(1, math.ceil(size / chunk_size)),
        }
        model_id = self._call("POST", f"{ML}/models/_register_meta", body)["model_id"]
        try:
            with (
                zip_path.open("rb") as f,
                tqdm(
                    total=size,
                    unit="B",
                    unit_scale=True,
                    disable=not progress,
                    desc=f"upload {zip_path.name}",
                    leave=False,
                ) as bar,
            ):
                for n in range(body["total_chunks"]):
                    chunk = f.read(chunk_size)
                    self._call("POST", f"{ML}/models/{model_id}/upload_chunk/{n}", chunk)
                    bar.update(len(chunk))
        except BaseException:
            self.delete(model_id)
            raise
        return model_id

    def wait_task(self, task_id: str, timeout: float = 600) -> dict:
        """Poll a task until it completes; a KitError with the server's reason when it fails."""
        deadline = time.monotonic() + timeout
        while True:
            task = self._call("GET", f"{ML}/tasks/{task_id}")
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

    def deploy(self, model_id: str, timeout: float = 600) -> dict:
        """Deploy a registered model on the cluster's nodes and wait until it serves."""
        task = self._call("POST", f"{ML}/models/{model_id}/_deploy")
        return self.wait_task(task["task_id"], timeout)

    def predict(self, model_id: str, body: dict) -> dict:
        return self._call("POST", f"{ML}/models/{model_id}/_predict", body)

    def get(self, model_id: str) -> dict:
        return self._call("GET", f"{ML}/models/{model_id}")

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
        body = {"size": size, "query": {"bool": {"must_not": {"exists": {"field": "chunk_number"}}}}}
        hits = self._call("POST", f"{ML}/models/_search", body)["hits"]["hits"]
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
