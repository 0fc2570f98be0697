"""Bulk-ingest a corpus into an opensearch-kit index, encoded by its ingest pipeline or by local ONNX encoders.

Nothing is lost silently: every line read is indexed, rejected (written to the failure file with its reason) or,
with `resume`, skipped because the index already holds it; the report checks read = indexed + rejected + skipped.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError
from opensearchpy.helpers import scan
from tqdm import tqdm

from opensearch_kit.corpus import Corpus, Doc, Rejected
from opensearch_kit.errors import KitError
from opensearch_kit.index import SERVING, check_model, index_meta, ingest_pipeline_body, reason, request
from opensearch_kit.prune import Prune

MODES = ("pipeline", "client")
MAX_BULK_BYTES = 10 * 1024 * 1024
BACKOFF_CAP = 30.0
PROBE = "OpenSearch neural sparse retrieval, 한국어 검색 probe"
DENSE_MIN_COSINE = 0.99  # a different model scores near 0; reduced-precision exports stay above
# A SPLADE head makes [batch, length, vocab] logits: small batches stay in cache and run fastest on CPU.
SPARSE_ENCODE_BATCH = 4


@dataclass
class IngestReport:
    """What an ingest did. `count_ok`: read = indexed + rejected + skipped."""

    index: str
    source: str
    mode: str
    read: int = 0
    indexed: int = 0
    rejected: int = 0
    skipped: int = 0
    blank_lines: int = 0
    duplicates: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    over_length: int | None = None
    max_length: int | None = None
    over_length_handling: str = "truncated"
    retries: int = 0
    encoder_check: str = "not applicable (pipeline mode)"
    failure_file: str | None = None
    seconds: float = 0.0
    docs_per_s: float = 0.0
    index_count: int | None = None

    @property
    def count_ok(self) -> bool:
        return self.read == self.indexed + self.rejected + self.skipped

    def to_dict(self) -> dict:
        return {**asdict(self), "count_ok": self.count_ok}

    def summary(self) -> str:
        """A few lines for people."""
        check = "OK" if self.count_ok else "MISMATCH"
        lines = [
            f"ingested {self.source} into {self.index} ({self.mode} mode): read {self.read} = indexed {self.indexed} "
            f"+ rejected {self.rejected} + skipped {self.skipped} (already indexed): {check}",
            f"{self.docs_per_s:.1f} docs/s over {self.seconds:.1f}s, {self.retries} retries; "
            f"the index holds {self.index_count} documents",
        ]
        if self.rejected:
            reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.reasons.items(), key=lambda kv: -kv[1]))
            lines.append(f"rejected: {reasons}; every one with its reason in {self.failure_file}")
        if self.duplicates:
            shown = ", ".join(self.duplicates[:10]) + (" ..." if len(self.duplicates) > 10 else "")
            lines.append(f"{len(self.duplicates)} duplicate id(s), the last line won: {shown}")
        if self.over_length is None:
            lines.append("texts over the model's max length: not counted (pass the sparse encoder's export dir)")
        elif self.over_length:
            lines.append(
                f"{self.over_length} text(s) longer than the model's {self.max_length} tokens "
                f"({self.over_length_handling})"
            )
        if self.blank_lines:
            lines.append(f"{self.blank_lines} blank line(s) ignored")
        if self.mode == "client":
            lines.append(f"local encoder vs cluster model: {self.encoder_check}")
        return "\n".join(lines)


def ingest(
    client: OpenSearch,
    index: str,
    source: Path,
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
    meta = index_meta(client, index)
    corpus = Corpus(Path(source), id_field, text_field, title_field, limit)
    report = IngestReport(index, str(source), mode)
    if meta["chunking"]:
        report.over_length_handling = "chunked"
    run = _Run(client, index, meta, mode, report, batch_size, workers, max_retries)
    run.load_encoders(sparse_encoder, dense_encoder)
    existing = indexed_lines(client, index, meta["fields"]["line"]) if resume else {}
    failure_path = Path(failure_file or f"{index}.failures.jsonl")
    with (
        failure_path.open("w", encoding="utf-8") as failures,
        tqdm(
            total=corpus.count(), unit="doc", desc=f"ingest {index} ({mode})", disable=not progress, smoothing=0.1
        ) as bar,
    ):
        run.failures, run.bar = failures, bar
        began = time.monotonic()
        run.feed(corpus, existing)
        report.seconds = round(time.monotonic() - began, 2)
    report.blank_lines = corpus.blank_lines
    report.docs_per_s = round(report.indexed / report.seconds, 1) if report.seconds else 0.0
    if report.rejected:
        report.failure_file = str(failure_path)
    else:
        failure_path.unlink()
    request(client, "POST", f"/{index}/_refresh")
    report.index_count = request(client, "GET", f"/{index}/_count")["count"]
    return report


def indexed_lines(client: OpenSearch, index: str, line_field: str) -> dict[str, int]:
    """{id: source line} of every document in `index`, once the bulk writes still running on it have finished."""
    wait_for_bulks(client, index)
    request(client, "POST", f"/{index}/_refresh")
    query = {"query": {"match_all": {}}, "_source": False, "docvalue_fields": [line_field]}
    lines = {}
    for hit in scan(client, index=index, query=query, size=5000, preserve_order=False):
        values = hit.get("fields", {}).get(line_field)
        lines[hit["_id"]] = int(values[0]) if values else 1 << 62  # not ours: never re-index it
    return lines


def wait_for_bulks(client: OpenSearch, index: str, timeout: float = 300) -> None:
    """Wait until no bulk request on `index` runs (a killed ingest's last requests may still be encoding)."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = request(client, "GET", "/_tasks", params={"actions": "indices:data/write/bulk*", "detailed": "true"})
        running = [
            t
            for node in tasks.get("nodes", {}).values()
            for t in node.get("tasks", {}).values()
            if index in bulk_indices(t.get("description", ""))
        ]
        if not running:
            return
        if time.monotonic() > deadline:
            raise KitError(f"bulk writes to {index} still running after {timeout:.0f}s", "wait, then resume again")
        time.sleep(1)


def bulk_indices(description: str) -> list[str]:
    """The indices a bulk task writes to, from its description "requests[N], indices[a, b]"."""
    found = re.search(r"indices\[([^\]]*)\]", description)
    return found[1].split(", ") if found else []


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.5, 1, 2, 4 ... seconds, at most 30 (10 retries ride out ~2 minutes,
    a node restart)."""
    return min(BACKOFF_CAP, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)


def category(text: str) -> str:
    """A rejection reason without its specifics, for the per-reason counts."""
    return text.split(":")[0]


class _Run:
    """One ingest: reads, batches, encodes (client mode) and sends bulks on a bounded thread pool."""

    def __init__(self, client, index, meta, mode, report, batch_size, workers, max_retries) -> None:
        self.client, self.index, self.meta, self.mode, self.report = client, index, meta, mode, report
        self.fields = meta["fields"]
        self.batch_size, self.workers, self.max_retries = batch_size, workers, max_retries
        self.prune = Prune(**meta["sparse"]["prune"]) if meta["sparse"]["prune"] else None
        self.pipeline = meta["pipelines"]["ingest"] if mode == "pipeline" else "_none"
        processors = ingest_pipeline_body(index, meta)["processors"]
        self.chunking = [p for p in processors if "text_chunking" in p]
        self.sparse = self.dense = None
        self.tokenizer = None  # a tokenizers.Tokenizer that counts texts over the model's max length
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(workers)
        self.futures: list[Future] = []
        self.failures: TextIO
        self.bar: tqdm

    # ---- set-up
    def load_encoders(self, sparse_dir: Path | None, dense_dir: Path | None) -> None:
        """Local encoders (client mode) or the tokenizer that counts over-length texts (pipeline mode)."""
        if self.mode == "pipeline":
            check_model(self.client, self.meta["sparse"]["model_id"], "sparse")
            if self.meta["dense"]:
                check_model(self.client, self.meta["dense"]["model_id"], "dense")
            if sparse_dir:
                from tokenizers import Tokenizer

                self.tokenizer = Tokenizer.from_file(str(Path(sparse_dir) / "tokenizer.json"))
        else:
            from opensearch_kit.sparse_encoder import SparseEncoder

            if not sparse_dir:
                raise KitError(
                    "client mode needs the sparse model's local ONNX export",
                    "pass --sparse-encoder DIR (opensearch-kit export sparse MODEL --format onnx --out DIR)",
                )
            self.sparse = SparseEncoder.from_dir(Path(sparse_dir))
            self.tokenizer = self.sparse.tokenizer
            if self.meta["dense"]:
                if not dense_dir:
                    raise KitError(
                        f"index {self.index} has a dense field: client mode needs the dense model's ONNX export",
                        "pass --dense-encoder DIR (opensearch-kit export dense MODEL --format onnx --out DIR)",
                    )
                from opensearch_kit.dense_encoder import DenseEncoder

                self.dense = DenseEncoder.from_dir(Path(dense_dir))
            self.report.encoder_check = self.verify_encoders()
        if self.tokenizer is not None:
            self.report.over_length = 0
            self.report.max_length = (self.tokenizer.truncation or {}).get("max_length")

    def verify_encoders(self) -> str:
        """Compare the local encoders with the index's deployed models on a probe text; refuse a mismatch."""
        from opensearch_kit.dense_export import cluster_embeddings
        from opensearch_kit.deploy import SPARSE_TOLERANCE, cluster_sparse_weights, compare_token_weights
        from opensearch_kit.ml_commons import MLCommons
        from opensearch_kit.parity import cosines

        ml = MLCommons(self.client)
        checked = []
        for kind in ("sparse", "dense"):
            if not self.meta[kind]:
                continue
            model_id = self.meta[kind]["model_id"]
            model = request(self.client, "GET", f"/_plugins/_ml/models/{model_id}")
            if model.get("model_state") not in SERVING:
                checked.append(f"{kind} not checked (model {model_id} is {model.get('model_state')})")
                continue
            if kind == "sparse":
                got = cluster_sparse_weights(ml, model_id, [PROBE])
                check = compare_token_weights(got, self.sparse.encode([PROBE]), SPARSE_TOLERANCE)
                same, figure = check["ok"], f"max |diff| {check['max_abs_diff']:.1e}"
            else:
                config = model.get("model_config") or {}
                prompted = config.get("query_prefix") or config.get("passage_prefix")
                got = cluster_embeddings(ml, model_id, [PROBE], "passage" if prompted else None)
                want = self.dense.embed([PROBE])
                cosine = float(cosines(want, got).min()) if len(got[0]) == want.shape[1] else 0.0
                same, figure = cosine >= DENSE_MIN_COSINE, f"cosine {cosine:.4f}"
            if not same:
                raise KitError(
                    f"the local {kind} encoder does not reproduce model {model_id} of index {self.index} ({figure})",
                    f"pass the ONNX export of the model deployed as {model_id}",
                )
            checked.append(f"{kind} matches {model_id} ({figure})")
        return "; ".join(checked)

    # ---- the read loop
    def feed(self, corpus: Corpus, existing: dict[str, int]) -> None:
        """Read every line; batch the documents to send; wait for the last bulk."""
        batch: list[Doc] = []
        size = 0
        with ThreadPoolExecutor(self.workers, thread_name_prefix="bulk") as self.pool:
            for item in corpus:
                self.report.read += 1
                if isinstance(item, Rejected):
                    self.reject(item)
                    continue
                if existing.get(item.id, -1) >= item.line:
                    self.done(skipped=1)
                    continue
                if item.duplicate:
                    # The earlier line with this id may be in flight: send everything before it first, so it wins.
                    self.report.duplicates.append(item.id)
                    self.submit(batch)
                    batch, size = [], 0
                    self.drain()
                batch.append(item)
                size += len(item.raw)
                if len(batch) >= self.batch_size or size >= MAX_BULK_BYTES // 2:
                    self.submit(batch)
                    batch, size = [], 0
            self.submit(batch)
            self.drain()

    def submit(self, docs: list[Doc]) -> None:
        if not docs:
            return
        actions = self.prepare(docs)
        if not actions:
            return
        self.slots.acquire()
        future = self.pool.submit(self.send, actions)
        future.add_done_callback(lambda _: self.slots.release())
        self.futures.append(future)
        self.futures = [f for f in self.futures if not f.done() or f.exception()]

    def drain(self) -> None:
        """Wait for every bulk in flight; a bug in a sender thread is raised here."""
        for future in self.futures:
            future.result()
        self.futures = []

    # ---- encoding
    def prepare(self, docs: list[Doc]) -> list[tuple[Doc, str]]:
        """(doc, bulk lines) per document, vectors included in client mode."""
        texts = [d.text for d in docs]
        if self.tokenizer is not None:
            over = sum(1 for e in self.tokenizer.encode_batch(texts) if e.overflowing)
            with self.lock:
                self.report.over_length += over
        sources = [self.source(d) for d in docs]
        if self.mode == "client":
            try:
                self.encode(texts, sources)
            except Exception as e:  # one bad text must not stop the run: encode one by one to find it
                if len(docs) == 1:
                    self.reject(Rejected(docs[0].line, docs[0].id, f"encoding failed: {e}", docs[0].raw, "encode"))
                    return []
                return [a for d in docs for a in self.prepare([d])]
        return [(d, self.bulk_lines(d, s)) for d, s in zip(docs, sources, strict=True)]

    def source(self, doc: Doc) -> dict[str, Any]:
        f = self.fields
        src: dict[str, Any] = {f["id"]: doc.id, f["text"]: doc.text, f["line"]: doc.line}
        if doc.title:
            src[f["title"]] = doc.title
        if doc.metadata:
            src[f["metadata"]] = doc.metadata
        return src

    def bulk_lines(self, doc: Doc, src: dict) -> str:
        action = json.dumps({"index": {"_index": self.index, "_id": doc.id}}, ensure_ascii=False)
        return f"{action}\n{json.dumps(src, ensure_ascii=False)}\n"

    def encode(self, texts: list[str], sources: list[dict]) -> None:
        """Add the vectors to `sources` as the ingest pipeline would (one per chunk when chunking)."""
        f = self.fields
        chunks = self.chunk(texts) if self.chunking else [[t] for t in texts]
        flat = [c for cs in chunks for c in cs]
        if self.meta["sparse"]["format"] == "TOKEN_ID":
            sparse = self.sparse.encode_ids(flat, SPARSE_ENCODE_BATCH)
        else:
            sparse = self.sparse.encode(flat, SPARSE_ENCODE_BATCH)
        if self.prune:
            sparse = [self.prune.apply(w) for w in sparse]
        dense = self.dense.embed(flat).tolist() if self.dense else None
        start = 0
        for src, cs in zip(sources, chunks, strict=True):
            part = slice(start, start + len(cs))
            start += len(cs)
            if self.meta["chunking"]:
                src[f["chunks"]] = cs
                src[f["sparse"]] = [{"sparse_encoding": w} for w in sparse[part]]
                if dense:
                    src[f["dense"]] = [{"knn": v} for v in dense[part]]
            else:
                src[f["sparse"]] = sparse[part][0]
                if dense:
                    src[f["dense"]] = dense[part][0]

    def chunk(self, texts: list[str]) -> list[list[str]]:
        """The cluster's own text_chunking of each text (its _simulate API, no model involved)."""
        text = self.fields["text"]
        body = {"pipeline": {"processors": self.chunking}, "docs": [{"_source": {text: t}} for t in texts]}
        out = request(self.client, "POST", "/_ingest/pipeline/_simulate", body)["docs"]
        for d in out:
            if "error" in d:
                raise KitError(f"text_chunking failed: {d['error'].get('reason')}")
        return [d["doc"]["_source"][self.fields["chunks"]] for d in out]

    # ---- sending
    def send(self, actions: list[tuple[Doc, str]]) -> None:
        """One bulk request with retries on 429/5xx and connection errors; a whole-request refusal is bisected so
        only the documents the cluster refuses are rejected."""
        pending = actions
        attempt = 0
        while pending:
            why = None
            try:
                resp = self.client.bulk(
                    body="".join(a for _, a in pending), params={"pipeline": self.pipeline, "request_timeout": 600}
                )
            except OSConnectionError as e:
                why = f"connection error: {e}"
            except TransportError as e:
                if e.status_code == 429 or (isinstance(e.status_code, int) and e.status_code >= 500):
                    why = f"HTTP {e.status_code}: {reason(e)}"
                elif len(pending) > 1:
                    half = len(pending) // 2
                    self.send(pending[:half])
                    self.send(pending[half:])
                    return
                else:
                    doc = pending[0][0]
                    self.reject(Rejected(doc.line, doc.id, reason(e), doc.raw, "index"))
                    return
            if why is None:
                retry, ok = [], 0
                for (doc, lines), item in zip(pending, resp["items"], strict=True):
                    result = next(iter(item.values()))
                    status = result.get("status", 500)
                    if status < 300:
                        ok += 1
                    elif status == 429 or status >= 500:
                        retry.append((doc, lines))
                        why = item_reason(result)
                    else:
                        self.reject(Rejected(doc.line, doc.id, item_reason(result), doc.raw, "index"))
                self.done(indexed=ok)
                pending = retry
            if pending:
                if attempt >= self.max_retries:
                    for doc, _ in pending:
                        self.reject(
                            Rejected(doc.line, doc.id, f"gave up after {attempt} retries: {why}", doc.raw, "index")
                        )
                    return
                time.sleep(backoff(attempt))
                attempt += 1
                with self.lock:
                    self.report.retries += 1

    # ---- accounting
    def reject(self, item: Rejected) -> None:
        with self.lock:
            self.report.rejected += 1
            key = category(item.reason)
            self.report.reasons[key] = self.report.reasons.get(key, 0) + 1
            self.failures.write(json.dumps(item.record(), ensure_ascii=False) + "\n")
            self.failures.flush()
            self.bar.update(1)
            self.bar.set_postfix(rejected=self.report.rejected, refresh=False)

    def done(self, indexed: int = 0, skipped: int = 0) -> None:
        with self.lock:
            self.report.indexed += indexed
            self.report.skipped += skipped
            self.bar.update(indexed + skipped)


def item_reason(result: dict) -> str:
    """`type: reason` of a bulk item error, with its cause."""
    error = result.get("error", {})
    if not isinstance(error, dict):
        return str(error)
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        text += f" (caused by {cause.get('type')}: {cause['reason']})"
    return text
