"""ML Commons on one cluster: model groups, chunked local-zip registration, deploy, predict, undeploy, delete.

Calls go through opensearch-py's `client.plugins.ml` where it has them, always via `Transport.call`, so errors
carry the status and the server's reason; the ML Commons failures users hit most get a fix naming the setting.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from opensearch_kit.errors import ClusterError, KitError, ModelNotFound, NotFound
from opensearch_kit.files import file_digest
from opensearch_kit.opensearch.features import features, model_config_for
from opensearch_kit.opensearch.heap import breaker_refusal, heap_limit, in_flight, wait_for_heap
from opensearch_kit.progress import progress_bar

if TYPE_CHECKING:
    from opensearch_kit.opensearch.transport import Transport

log = logging.getLogger("opensearch_kit")
# A restarted node's models answer this until they are deployed again (`MLCommons.restore`).
MODEL_WARMING = re.compile(r"model not ready yet", re.I)
CHUNK_SIZE = 10_000_000  # ML Commons rejects chunks over 10 MB (ModelHelper.CHUNK_SIZE)
MAX_UPLOAD_BYTES = 4 * 1024**3  # MLModelManager.MODEL_FILE_SIZE_LIMIT
REUSABLE_STATES = {"REGISTERED", "DEPLOYED", "DEPLOYING", "PARTIALLY_DEPLOYED", "UNDEPLOYED", "DEPLOY_FAILED"}
SERVING = ("DEPLOYED", "PARTIALLY_DEPLOYED")
DUPLICATE_DEPLOY = "duplicate deploy model task"  # MLModelCacheHelper.initModelState: a deploy runs on the node
BIG_MODEL_HEAP = "a model over 1 GB wants a node heap of 4 GB or more (opensearch-kit cluster start --heap 4g)"
BREAKER_FIX = (
    "a circuit breaker tripped: free memory/disk or raise plugins.ml_commons.native_memory_threshold / "
    "jvm_heap_memory_threshold / disk_free_space_threshold"
)


@dataclass
class Registration:
    """Where register_zip left a model: its id, whether an identical one was reused, and what was sent."""

    model_id: str
    reused: bool
    resumed: bool
    uploaded_bytes: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


class MLCommons:
    """The ML Commons REST API of one cluster, with retry and backoff on transient faults."""

    def __init__(self, transport: Transport):
        self.transport = transport
        self.api = transport.client.plugins.ml

    def _call(self, fn, what: str, retry: bool = False):
        try:
            return self.transport.call(fn, what, retry=retry)
        except ClusterError as e:
            raise explain(e) from e

    def find_group(self, name: str) -> str | None:
        """Id of the model group called `name`, if there is one."""
        query = {"query": {"term": {"name.keyword": name}}, "size": 1}
        try:
            hits = self._call(lambda: self.api.search_model_group(body=query), "search model groups")["hits"]["hits"]
        except NotFound:
            return None  # no model group index yet
        return hits[0]["_id"] if hits else None

    def model_group(self, name: str, description: str = "registered by opensearch-kit") -> str:
        """Id of the model group called `name`, created when missing."""
        found = self.find_group(name)
        if found:
            return found
        body = {"name": name, "description": description}
        return self._call(lambda: self.api.register_model_group(body=body), "register model group")["model_group_id"]

    def search(self, query: dict, size: int = 1000) -> list[dict]:
        """Models (not their chunks) matching `query`, newest first, each with its `model_id`."""
        body = {
            "size": size,
            "query": {"bool": {"filter": [query], "must_not": {"exists": {"field": "chunk_number"}}}},
            "sort": [{"created_time": "desc"}],
            "_source": {"excludes": ["content"]},
        }
        try:
            hits = self._call(lambda: self.api.search_models(body=body), "search models")["hits"]["hits"]
        except NotFound:
            return []  # no model index yet
        return [{"model_id": h["_id"], **h["_source"]} for h in hits]

    def find_model(self, name: str, content_hash: str) -> dict | None:
        """The newest model called `name` whose zip has `content_hash`, if any."""
        query = {
            "bool": {"filter": [{"term": {"name.keyword": name}}, {"term": {"model_content_hash_value": content_hash}}]}
        }
        found = self.search(query, size=1)
        return found[0] if found else None

    def find_fingerprint(self, fingerprint: str) -> dict | None:
        """The newest reusable model registered from an export with `fingerprint`, if any. Such a model sits in
        the model group `fingerprint_group(fingerprint)` (ML Commons keeps no other free field of a local sparse
        model: the last upload_chunk drops the description, and a model_config breaks its deploy)."""
        group = self.find_group(fingerprint_group(fingerprint))
        if group is None:
            return None
        found = self.search({"term": {"model_group_id": group}}, size=10)
        found = [m for m in found if m.get("model_state") in REUSABLE_STATES]
        return found[0] if found else None

    def list_models(self) -> list[dict]:
        """Every model (not its chunks) with id, name, state, function, format, hash."""
        return self.search({"match_all": {}})

    def uploaded_chunks(self, model_id: str) -> set[int]:
        """Chunk numbers of `model_id` already stored in the cluster."""
        body = {"size": 10_000, "query": {"term": {"model_id": model_id}}, "_source": ["chunk_number"]}
        hits = self._call(lambda: self.api.search_models(body=body), "search model chunks")["hits"]["hits"]
        return {h["_source"]["chunk_number"] for h in hits if "chunk_number" in h["_source"]}

    def register_zip(
        self, zip_path: Path, meta: dict, *, chunk_size: int = CHUNK_SIZE, progress: bool = True
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
        config = model_config_for(features(self.transport), meta)  # refuses what the cluster cannot serve
        content_hash = file_digest(zip_path, "sha256")
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
                **({"model_config": config} if config else {}),
                "description": meta.get("description", ""),
                "model_group_id": meta.get("model_group_id") or self.group_for(meta),
                "model_content_hash_value": content_hash,
                "model_content_size_in_bytes": size,
                "total_chunks": total_chunks,
            }
            model_id = self._call(lambda: self.api.register_model_meta(body=body), "register model")["model_id"]
            done = set()
        sent = self._upload(model_id, zip_path, total_chunks, chunk_size, done, progress)
        return Registration(model_id, False, bool(done), sent, time.monotonic() - began)

    def group_for(self, meta: dict) -> str:
        """The model group a registration goes to: its export fingerprint's, else one named after the model."""
        if meta.get("fingerprint"):
            fp = meta["fingerprint"]
            return self.model_group(fingerprint_group(fp), f"opensearch-kit exports with fingerprint {fp}")
        return self.model_group(meta["name"])

    def _upload(
        self, model_id: str, zip_path: Path, total: int, chunk_size: int, done: set[int], progress: bool
    ) -> int:
        """Send the chunks not in `done`, `in_flight` at a time, then the last one (always, once every other
        chunk is stored: it marks the model REGISTERED); bytes sent. The first failure stops the upload once the
        chunks in flight have landed."""
        size = zip_path.stat().st_size
        todo = [n for n in range(total - 1) if n not in done]
        workers = in_flight(self.transport)
        pending: dict[Future[int], int] = {}
        sent = 0
        at = todo[0] if todo else total - 1  # the chunk a failure is reported at

        def length(n: int) -> int:
            return min(chunk_size, size - n * chunk_size)

        def send(n: int) -> int:
            wait_for_heap(self.transport)
            body = os.pread(fd, chunk_size, n * chunk_size)
            self._call(
                lambda: self.api.upload_chunk(model_id=model_id, chunk_number=n, body=body),
                f"upload chunk {n}",
                retry=True,
            )
            return len(body)

        def settle(futures) -> None:
            nonlocal at, sent
            for future in futures:
                at = pending.pop(future)
                sent += future.result()
                bar.update(length(at))

        try:
            with (
                progress_bar(size, unit="B", unit_scale=True, enabled=progress, desc=f"upload {zip_path.name}") as bar,
                zip_path.open("rb") as f,
            ):
                fd = f.fileno()
                bar.update(sum(length(n) for n in done if n != total - 1))
                with ThreadPoolExecutor(workers, thread_name_prefix="upload") as pool:  # its exit awaits them all
                    for n in todo:
                        while len(pending) >= workers:
                            settle(wait(pending, return_when=FIRST_COMPLETED).done)
                        pending[pool.submit(send, n)] = n
                    settle(list(pending))
                at = total - 1
                sent += send(at)
                bar.update(length(at))
        except ModelNotFound as e:
            raise KitError(
                f"model {model_id} was deleted while uploading {zip_path.name} (chunk {at + 1}/{total} refused)",
                "run the same command again to register and upload it anew",
            ) from e
        except BaseException as e:
            refused = isinstance(e, ClusterError) and e.status == 429  # a breaker still refusing after the retries
            cause = breaker_refusal(e, heap_limit(self.transport), size) if refused else e
            error = self._abandon(model_id, f"upload of {zip_path.name} failed at chunk {at + 1}/{total}", cause)
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

    def wait_task(self, task_id: str, timeout: float = 600, tick=None) -> dict:
        """Poll a task until it completes (`tick(seconds)` after each wait); a KitError with the server's reason
        when it fails."""
        deadline = time.monotonic() + timeout
        while True:
            task = self._call(lambda: self.api.get_task(task_id=task_id), f"task {task_id}", retry=True)
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
            if tick:
                tick(1)

    def deploy(self, model_id: str, timeout: float | None = None, progress: bool = False) -> bool:
        """Deploy a registered model and wait until it serves (`timeout`: by default `deploy_timeout` of its size);
        False when a node already served it (True when it came to serve during the call, whoever deployed it).
        After a node restart a model's record may say DEPLOYED (or DEPLOY_FAILED) while no node holds it: it is
        deployed again, and one ML Commons is redeploying itself (DEPLOYING) is waited for; both say so on stderr."""
        model = self.get(model_id)
        deadline = time.monotonic() + (timeout or deploy_timeout(int(model.get("model_content_size_in_bytes") or 0)))
        about = f"model {model_id} ({model.get('name', '?')})"
        waited = model.get("model_state") == "DEPLOYING"
        if waited:
            log.warning("waiting for %s: ML Commons is deploying it", about)
            model = self.settled(model_id, deadline)
        if self.loaded(model_id):
            self.settled(model_id, deadline)  # ML Commons may be deploying a model a node already holds again
            return waited
        if model.get("model_state") in (*SERVING, "DEPLOYING", "DEPLOY_FAILED"):
            log.warning("%s is %s but no node holds it (a restarted node?): deploying it again", about,
                        model.get("model_state"))  # fmt: skip
        try:
            with progress_bar(None, desc=f"deploy {model.get('name', model_id)}", unit="s", enabled=progress) as bar:
                self.deploy_task(model_id, deadline, bar.update)
        except KitError:
            # a deploy beside ours (ML Commons' own) may have won the race: its task, or the model record (409)
            self.settled(model_id, deadline)
            if not self.loaded(model_id):
                raise
        self.settled(model_id, deadline)  # the model's record says DEPLOYED a moment after its task completes
        return True

    def deploy_task(self, model_id: str, deadline: float, tick) -> None:
        """Run a deploy task to its end. While another deploy of the model runs on a node (ML Commons' own
        redeploy after a restart, which leaves the record as it was: the task fails "Duplicate deploy model task"),
        wait for that one to load it, asking again every 10 s, until `deadline`."""
        while True:
            try:
                task = self._call(lambda: self.api.deploy_model(model_id=model_id), f"deploy {model_id}")
                self.wait_task(task["task_id"], max(1.0, deadline - time.monotonic()), tick=tick)
                return
            except KitError as e:
                if DUPLICATE_DEPLOY not in e.message.lower() or time.monotonic() > deadline:
                    raise
            log.info("model %s: a deploy of it is running on a node already; waiting for that one", model_id)
            ask_again = min(deadline, time.monotonic() + 10)
            while time.monotonic() < ask_again:
                if self.loaded(model_id):
                    return
                time.sleep(1)
                tick(1)

    def settled(self, model_id: str, deadline: float | None = None) -> dict:
        """The model's record once it no longer says DEPLOYING (or at `deadline`, a `time.monotonic()` value: by
        default `deploy_timeout` of its size from now)."""
        model = self.get(model_id)
        if deadline is None:
            deadline = time.monotonic() + deploy_timeout(int(model.get("model_content_size_in_bytes") or 0))
        while model.get("model_state") == "DEPLOYING" and time.monotonic() < deadline:
            time.sleep(0.5)
            model = self.get(model_id)
        return model

    def restore(self, model_id: str, timeout: float | None = None) -> bool:
        """Have a model that served before a node restart serve again (`deploy`); False when it serves, or was
        never deployed or deliberately undeployed (REGISTERED, UNDEPLOYED: left as they are)."""
        if self.get(model_id).get("model_state") in ("REGISTERED", "UNDEPLOYED"):
            return False
        return self.deploy(model_id, timeout)

    def loaded(self, model_id: str) -> bool:
        """Whether a node holds the model in memory, ready to predict (ML Commons' profile of every node)."""
        profile = self.transport.request("GET", f"/_plugins/_ml/profile/models/{model_id}")
        nodes = profile.get("nodes", {}).values()
        return any(n.get("models", {}).get(model_id, {}).get("model_state") == "DEPLOYED" for n in nodes)

    def register_remote(self, body: dict) -> str:
        """Register a model on a connector (function_name "remote"); its id."""
        return self._call(lambda: self.api.register_model(body=body), "register remote model")["model_id"]

    def predict(self, model_id: str, body: dict, function: str | None = None, timeout: float | None = None) -> dict:
        """_predict; `function` (text_embedding, sparse_encoding, ...) says how to read `body`, which a remote
        model needs (without it ML Commons reads a remote model's body as connector parameters); `timeout`: the
        read timeout of this call (the client's by default). Never retried: a slow answer is no transient fault,
        and each retry would queue one more inference on the node."""
        extra = {"request_timeout": timeout} if timeout else {}
        if function:
            call = lambda: self.api.predict(algorithm_name=function, model_id=model_id, body=body, **extra)  # noqa: E731
        else:
            call = lambda: self.api.predict_model(model_id=model_id, body=body, **extra)  # noqa: E731
        return self._call(call, f"predict {model_id}")

    def get(self, model_id: str) -> dict:
        """The model's record; ModelNotFound when ML Commons has none with this id."""
        try:
            return self._call(lambda: self.api.get_model(model_id=model_id), f"get model {model_id}")
        except NotFound as e:
            raise ModelNotFound(
                f"no model {model_id} in the cluster",
                "list models with: opensearch-kit models list",
                status=e.status,
                reason=e.reason,
                error_type=e.error_type,
            ) from e

    def undeploy(self, model_id: str) -> dict:
        return self._call(lambda: self.api.undeploy_model(model_id=model_id), f"undeploy {model_id}")

    def delete(self, model_id: str) -> None:
        """Undeploy (if needed) and delete a model; a missing model is not an error."""
        try:
            self.transport.call(lambda: self.api.undeploy_model(model_id=model_id), f"undeploy {model_id}")
            self.transport.call(lambda: self.api.delete_model(model_id=model_id), f"delete {model_id}")
        except NotFound:
            pass


def deploy_timeout(size_bytes: int) -> float:
    """Seconds a deploy may take: 600, plus 300 per GB past the first (a 3.4 GB model gets 1,320 s): the node
    unzips, reads and loads every byte, on a CPU other work shares."""
    return 600 + 300 * max(0.0, size_bytes / 1e9 - 1)


def fingerprint_group(fingerprint: str) -> str:
    """The name of the model group holding the models registered from exports with `fingerprint`."""
    return f"opensearch-kit-{fingerprint}"


def fingerprint_of_group(ml: MLCommons, group_id: str | None) -> str | None:
    """The export fingerprint a model group stands for (`fingerprint_group`), if it is such a group."""
    if not group_id:
        return None
    try:
        name = ml.transport.request("GET", f"/_plugins/_ml/model_groups/{group_id}").get("name", "")
    except NotFound:
        return None
    prefix = fingerprint_group("")
    return name[len(prefix) :] if name.startswith(prefix) else None


def deploy_failure(task: dict) -> KitError:
    """Explain a failed ML task, quoting the node's reason."""
    error = task.get("error", "no reason given")
    fix = "see the node log"
    if "libtorch" in error.lower() or "unknown builtin op" in error.lower() or "schema" in error.lower():
        fix = "the server's libtorch (2.5.1) lacks an op the model uses: re-export with opensearch-kit export"
    elif "memory" in error.lower() or "circuit" in error.lower():
        fix = BREAKER_FIX
    return KitError(f"ML task {task.get('task_type', '')} failed: {error}", fix)


def explain(e: ClusterError) -> ClusterError:
    """`e` with a fix that names the setting for the ML Commons errors users hit most."""
    text = e.reason.lower()
    if "allow_registering_model_via_local_file" in text or "local file" in text:
        e.fix = "set plugins.ml_commons.allow_registering_model_via_local_file: true in the cluster settings"
    elif "no eligible node" in text or "only_run_on_ml_node" in text or "ml node" in text:
        e.fix = "add a node with the ml role, or set plugins.ml_commons.only_run_on_ml_node: false"
    elif "circuit" in text or "memory" in text or "disk" in text:
        e.fix = f"{BREAKER_FIX}; {BIG_MODEL_HEAP}"
    elif "trusted connector endpoint" in text:
        e.fix = "add the server's URL to plugins.ml_commons.trusted_connector_endpoints_regex (or --allow-endpoint)"
    elif "private ip" in text:
        e.fix = "set plugins.ml_commons.connector.private_ip_enabled: true (or --allow-endpoint)"
    return e


def model_function(model: dict) -> str | None:
    """What a model computes: its algorithm, or for a remote model (algorithm REMOTE) its model_config.model_type."""
    algorithm = model.get("algorithm")
    if algorithm == "REMOTE":
        return ((model.get("model_config") or {}).get("model_type") or "").upper() or None
    return algorithm
