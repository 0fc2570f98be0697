"""`ingest --engine ray`: Ray Data encodes with our local ONNX encoders in an actor pool (GPU when asked) and the
actors bulk-write; the driver keeps today's guarantees: it reads the corpus, rejects bad lines, skips what
`resume` finds, and records every batch's outcome, so read = indexed + rejected + skipped still holds. Documents
keep their deterministic _id: a batch Ray retries after a lost worker overwrites itself, never duplicates."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

from opensearch_kit.errors import KitError
from opensearch_kit.index.meta import IndexMeta
from opensearch_kit.ingest.bulk import BulkSender, finish, indexed_lines
from opensearch_kit.ingest.corpus import Corpus, Doc, Rejected
from opensearch_kit.ingest.encode import LocalEncoding
from opensearch_kit.ingest.report import IngestReport, Ledger
from opensearch_kit.ingest.run import _Run
from opensearch_kit.opensearch.connection import Connection
from opensearch_kit.progress import progress_bar


class _Outcomes:
    """The Ledger calls a worker's encoding and sending make, kept for the driver."""

    def __init__(self):
        self.indexed, self.rejected = 0, []

    def reject(self, item: Rejected) -> None:
        self.rejected.append(asdict(item))

    def done(self, indexed: int = 0, skipped: int = 0) -> None:
        self.indexed += indexed

    def retried(self) -> None:
        pass

    def over_length(self, count: int) -> None:
        pass


class EncodeAndIndex:
    """A Ray Data actor: the index's local encoders and a bulk sender; one output row per batch. Its encoders
    run on as many threads as the actor holds CPUs (ONNX Runtime's default, every core of the machine in each
    actor, oversubscribed 2 actors on 2 cores: 15 docs/s against 25 in-process)."""

    def __init__(self, conn: Connection, index: str, sparse_dir: str, dense_dir: str | None, max_retries: int):
        import ray

        transport = conn.transport(600)
        self.meta = IndexMeta.read(transport, index)
        threads = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
        dense = Path(dense_dir) if dense_dir else None
        self.encoding = LocalEncoding(transport, self.meta, Path(sparse_dir), dense, threads)
        self.transport, self.max_retries = transport, max_retries

    def __call__(self, batch: dict) -> dict:
        outcomes = _Outcomes()
        run = _Run(
            self.meta, outcomes, BulkSender(self.transport, "_none", outcomes, self.max_retries), self.encoding, None
        )
        docs = [Doc(**json.loads(x)) for x in batch["doc"]]
        actions = run.prepare(docs)
        if actions:
            run.sender.send(actions)
        return {"indexed": [outcomes.indexed], "rejected": [json.dumps(outcomes.rejected)]}


def ingest_ray(
    conn: Connection,
    index: str,
    source: Path,
    *,
    sparse_encoder: Path,
    dense_encoder: Path | None = None,
    ray_address: str | None = None,
    workers: int = 2,
    gpus_per_worker: float = 0,
    batch_size: int = 64,
    failure_file: Path | None = None,
    resume: bool = False,
    max_retries: int = 10,
    limit: int | None = None,
    progress: bool = True,
    id_field: str = "_id",
    text_field: str = "text",
    title_field: str | None = "title",
) -> IngestReport:
    """Like `ingest(mode="client")`, the encoding and bulk writes spread over `workers` Ray actors (on the Ray
    cluster at `ray_address` with the environment's RAY_AUTH_* settings, else on a local head on loopback with token
    authentication, started for the run and stopped after it, whatever the outcome)."""
    import ray

    from opensearch_kit.serve.ray_head import connect, disconnect, start_node

    transport = conn.transport(600)
    meta = IndexMeta.read(transport, index)
    report = IngestReport(index, str(source), "ray")
    report.encoder_check = LocalEncoding(transport, meta, Path(sparse_encoder), dense_encoder).verify()
    corpus = Corpus(Path(source), id_field, text_field, title_field, limit, dict(meta.typed_fields))
    existing = indexed_lines(transport, index, meta.fields.line) if resume else {}
    failure_path = Path(failure_file or f"{index}.failures.jsonl")
    head = None if ray_address else start_node(cpus=workers)
    began = time.monotonic()
    try:
        _quiet_ray_data()
        connect(ray_address or head.address, head)
        ray.data.DataContext.get_current().enable_progress_bars = False
        with (
            failure_path.open("w", encoding="utf-8") as failures,
            progress_bar(corpus.count(), unit="doc", desc=f"ingest {index} (ray)", enabled=progress) as bar,
        ):
            ledger = Ledger(report, failures, bar)
            waves: list[list[dict]] = []  # a document's wave: how many earlier lines had its id (the last wins)
            seen: dict[str, int] = {}
            for item in corpus:
                report.read += 1
                if isinstance(item, Rejected):
                    ledger.reject(item)
                elif existing.get(item.id, -1) >= item.line:
                    ledger.done(skipped=1)
                else:
                    if item.duplicate:
                        report.duplicates.append(item.id)
                    wave = seen[item.id] = seen.get(item.id, -1) + 1
                    waves += [[] for _ in range(wave + 1 - len(waves))]
                    waves[wave].append({"doc": json.dumps(asdict(item), ensure_ascii=False)})
            for rows in waves:
                _run_wave(rows, ledger, conn, index, sparse_encoder, dense_encoder, workers, gpus_per_worker,
                          batch_size, max_retries)  # fmt: skip
    finally:
        disconnect()
        if head:
            head.stop()
    report.seconds = round(time.monotonic() - began, 2)
    report.blank_lines = corpus.blank_lines
    report.docs_per_s = round(report.indexed / report.seconds, 1) if report.seconds else 0.0
    if report.rejected:
        report.failure_file = str(failure_path)
    else:
        failure_path.unlink()
    finish(transport, meta, report)
    if not report.count_ok:
        raise KitError(f"the count check failed:\n{report.summary()}", "report this as a bug in opensearch-kit")
    return report


def _run_wave(rows, ledger, conn, index, sparse_dir, dense_dir, workers, gpus, batch_size, max_retries) -> None:
    """Encode and index `rows` on the actor pool; record each batch's outcome as it arrives."""
    import ray

    # Ray Data restarts a lost actor and retries its batch by default (max_restarts -1, max_task_retries -1)
    dataset = ray.data.from_items(rows).map_batches(
        EncodeAndIndex,
        fn_constructor_kwargs={
            "conn": conn, "index": index, "sparse_dir": str(sparse_dir),
            "dense_dir": str(dense_dir) if dense_dir else None, "max_retries": max_retries,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        num_gpus=gpus or None,
    )  # fmt: skip
    for out in dataset.iter_rows():
        ledger.done(indexed=int(out["indexed"]))
        for rejected in json.loads(out["rejected"]):
            ledger.reject(Rejected(**rejected))


def _quiet_ray_data() -> None:
    """Before the driver joins Ray: Ray Data's console lines (each run's start, plan and end, "progress bars
    disabled") and the driver core worker's C++ log lines (each actor pool's "constructor arguments in the object
    store" notice) are not for users: the ingest's own bar reports progress, and failures arrive as exceptions.
    They show with --verbose (our logger at INFO) or the user's own RAY_BACKEND_LOG_LEVEL."""
    if not logging.getLogger("opensearch_kit").isEnabledFor(logging.INFO):
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        for name in ("ray.data._internal.execution.streaming_executor", "ray.data._internal.progress"):
            logging.getLogger(name).setLevel(logging.ERROR)
