"""Bulk-ingest a corpus into an opensearch-kit index, encoded by its ingest pipeline or by local ONNX encoders.

Nothing is lost silently: every line read is indexed, rejected (written to the failure file with its reason) or,
with `resume`, skipped because the index already holds it; the run ends with the check
read = indexed + rejected + skipped, and a failed check is an error.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opensearchpy import OpenSearch

from opensearch_kit.errors import KitError
from opensearch_kit.index.meta import IndexMeta
from opensearch_kit.ingest.bulk import Action, BulkSender, indexed_lines
from opensearch_kit.ingest.corpus import Corpus, Doc, Rejected
from opensearch_kit.ingest.encode import LocalEncoding, check_pipeline_models, length_tokenizer
from opensearch_kit.ingest.report import IngestReport, Ledger
from opensearch_kit.opensearch.transport import Transport
from opensearch_kit.progress import progress_bar

MODES = ("pipeline", "client")
MAX_BULK_BYTES = 10 * 1024 * 1024
# Batches read ahead of the encoder: reading, encoding and bulk requests overlap, with bounded memory.
ENCODE_AHEAD = 2


def ingest(
    cluster: Transport | OpenSearch,
    index: str,
    source: Path,
    *,
    mode: str = "pipeline",
    sparse_encoder: Path | None = None,
    dense_encoder: Path | None = None,
    id_field: str = "_id",
    text_field: str = "text",
    title_field: str | None = "title",
    batch_size: int = 64,
    workers: int = 2,
    failure_file: Path | None = None,
    resume: bool = False,
    max_retries: int = 10,
    limit: int | None = None,
    progress: bool = True,
) -> IngestReport:
    """Index the documents of a JSONL file or BEIR directory into `index` (made by `create_index`).

    mode "pipeline": the index's ingest pipeline encodes in the cluster; `sparse_encoder` (an ONNX export dir),
    if given, only counts texts over the model's max length. mode "client": the local ONNX encoders in
    `sparse_encoder` (and `dense_encoder` for an index with a dense model) compute the vectors, checked first
    against the deployed models. Rejected lines go to `failure_file` (default `<index>.failures.jsonl`).
    """
    if mode not in MODES:
        raise KitError(f"unknown mode {mode!r}", f"use one of {', '.join(MODES)}")
    transport = Transport.of(cluster)
    meta = IndexMeta.read(transport, index)
    corpus = Corpus(Path(source), id_field, text_field, title_field, limit, dict(meta.typed_fields))
    report = IngestReport(index, str(source), mode)
    if meta.chunking:
        report.over_length_handling = "chunked"
    if mode == "client":
        encoding = LocalEncoding(transport, meta, sparse_encoder, dense_encoder)
        report.encoder_check = encoding.verify()
        tokenizer = encoding.tokenizer
    else:
        check_pipeline_models(transport, meta)
        encoding, tokenizer = None, length_tokenizer(sparse_encoder)
    if tokenizer is not None:
        report.over_length = 0
        report.max_length = (tokenizer.truncation or {}).get("max_length")
    existing = indexed_lines(transport, index, meta.fields.line) if resume else {}
    failure_path = Path(failure_file or f"{index}.failures.jsonl")
    with (
        failure_path.open("w", encoding="utf-8") as failures,
        progress_bar(corpus.count(), unit="doc", desc=f"ingest {index} ({mode})", enabled=progress) as bar,
    ):
        ledger = Ledger(report, failures, bar)
        pipeline = meta.pipelines["ingest"] if mode == "pipeline" else "_none"
        run = _Run(meta, ledger, BulkSender(transport, pipeline, ledger, max_retries), encoding, tokenizer)
        began = time.monotonic()
        run.feed(corpus, existing, batch_size, workers)
        report.seconds = round(time.monotonic() - began, 2)
    report.blank_lines = corpus.blank_lines
    report.docs_per_s = round(report.indexed / report.seconds, 1) if report.seconds else 0.0
    if report.rejected:
        report.failure_file = str(failure_path)
    else:
        failure_path.unlink()
    transport.request("POST", f"/{index}/_refresh")
    report.index_count = transport.request("GET", f"/{index}/_count")["count"]
    if not report.count_ok:
        raise KitError(f"the count check failed:\n{report.summary()}", "report this as a bug in opensearch-kit")
    return report


class _Run:
    """One ingest's stages, overlapping: the read loop batches the documents (caller's thread); one encoder
    thread counts over-length texts and encodes (client mode); a bounded pool sends the bulks."""

    def __init__(self, meta: IndexMeta, ledger: Ledger, sender: BulkSender, encoding: LocalEncoding | None, tokenizer):
        self.meta, self.ledger, self.sender, self.encoding, self.tokenizer = meta, ledger, sender, encoding, tokenizer
        self.encodes: list[Future] = []  # added by the read loop
        self.bulks: list[Future] = []  # added by the encoder thread

    def feed(self, corpus: Corpus, existing: dict[str, int], batch_size: int, workers: int) -> None:
        """Read every line; batch the documents to send; wait for the last bulk."""
        report = self.ledger.report
        batch: list[Doc] = []
        size = 0
        self.encode_slots, self.bulk_slots = threading.Semaphore(ENCODE_AHEAD), threading.Semaphore(workers)
        with (
            ThreadPoolExecutor(1, thread_name_prefix="encode") as self.encoder,
            ThreadPoolExecutor(workers, thread_name_prefix="bulk") as self.pool,
        ):
            for item in corpus:
                report.read += 1
                if isinstance(item, Rejected):
                    self.ledger.reject(item)
                    continue
                if existing.get(item.id, -1) >= item.line:
                    self.ledger.done(skipped=1)
                    continue
                if item.duplicate:
                    # The earlier line with this id may be in flight: send everything before it first, so it wins.
                    report.duplicates.append(item.id)
                    self.submit(batch)
                    batch, size = [], 0
                    self.drain()
                batch.append(item)
                size += len(item.raw)
                if len(batch) >= batch_size or size >= MAX_BULK_BYTES // 2:
                    self.submit(batch)
                    batch, size = [], 0
            self.submit(batch)
            self.drain()

    def submit(self, docs: list[Doc]) -> None:
        """Hand a batch to the encoder thread (waiting while ENCODE_AHEAD batches are queued)."""
        if not docs:
            return
        self.raise_failure()
        self.encode_slots.acquire()
        self.encodes.append(self.encoder.submit(self.encode_and_send, docs))
        self.encodes = [f for f in self.encodes if not f.done() or f.exception()]

    def encode_and_send(self, docs: list[Doc]) -> None:
        """On the encoder thread: count over-length texts, encode, queue the bulk."""
        try:
            if self.tokenizer is not None:
                over = self.tokenizer.encode_batch([d.text for d in docs])
                self.ledger.over_length(sum(1 for e in over if e.overflowing))
            actions = self.prepare(docs)
        finally:
            self.encode_slots.release()
        if not actions:
            return
        self.bulk_slots.acquire()
        future = self.pool.submit(self.sender.send, actions)
        future.add_done_callback(lambda _: self.bulk_slots.release())
        self.bulks.append(future)
        self.bulks = [f for f in self.bulks if not f.done() or f.exception()]

    def raise_failure(self) -> None:
        """Stop reading once a batch or bulk has failed for good (the cluster gone through every retry)."""
        for future in (*self.encodes, *self.bulks):
            if future.done() and future.exception():
                raise future.exception()

    def drain(self) -> None:
        """Wait for every batch being encoded, then every bulk in flight; a bug in a worker is raised here."""
        for future in self.encodes:
            future.result()
        self.encodes = []
        for future in self.bulks:
            future.result()
        self.bulks = []

    def prepare(self, docs: list[Doc]) -> list[Action]:
        """(doc, bulk lines) per document, vectors included in client mode."""
        texts = [d.text for d in docs]
        sources = [self.source(d) for d in docs]
        if self.encoding is not None:
            try:
                self.encoding.encode(texts, sources)
            except Exception as e:  # one bad text must not stop the run: encode one by one to find it
                if len(docs) == 1:
                    doc = docs[0]
                    self.ledger.reject(Rejected(doc.line, doc.id, f"encoding failed: {e}", doc.raw, "encode"))
                    return []
                return [a for d in docs for a in self.prepare([d])]
        return [(d, self.bulk_lines(d, s)) for d, s in zip(docs, sources, strict=True)]

    def source(self, doc: Doc) -> dict[str, Any]:
        f = self.meta.fields
        src: dict[str, Any] = {f.id: doc.id, f.text: doc.text, f.line: doc.line}
        if doc.title:
            src[f.title] = doc.title
        if doc.metadata:
            src[f.metadata] = doc.metadata
        src.update(doc.fields)
        return src

    def bulk_lines(self, doc: Doc, src: dict) -> str:
        action = json.dumps({"index": {"_index": self.meta.index, "_id": doc.id}}, ensure_ascii=False)
        return f"{action}\n{json.dumps(src, ensure_ascii=False)}\n"
