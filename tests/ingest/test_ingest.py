"""Ingestion against the real cluster: both modes agree, bad input is accounted for, kill + resume, retries, Korean."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flaky_proxy import FlakyProxy
from helpers import AUTORAG_KO, SCIFACT

from opensearch_kit.index import FIELDS, create_index
from opensearch_kit.index.meta import IndexMeta
from opensearch_kit.ingest import ingest
from opensearch_kit.ingest.bulk import ClusterLost, finish
from opensearch_kit.ingest.report import IngestReport
from opensearch_kit.opensearch import Connection
from opensearch_kit.opensearch.transport import Transport

ROOT = Path(__file__).resolve().parents[2]


def jsonl(docs: list[dict]) -> bytes:
    return b"".join(json.dumps(d, ensure_ascii=False).encode() + b"\n" for d in docs)


def sources(client, index: str, ids: list[str]) -> dict[str, dict]:
    docs = client.mget(index=index, body={"ids": ids})["docs"]
    return {d["_id"]: d["_source"] for d in docs if d.get("found")}


def test_scifact_subset_both_modes_hold_the_same_sparse_vectors(client, deployed_splade, fresh):
    model_id, export_dir = deployed_splade
    vectors = {}
    for mode in ("pipeline", "client"):
        index = fresh(f"scifact-{mode}")
        create_index(client, index, model_id)
        report = ingest(client, index, SCIFACT, mode=mode, sparse_encoder=export_dir, limit=100, progress=False)
        assert (report.read, report.indexed, report.rejected, report.index_count) == (100, 100, 0, 100)
        assert report.over_length > 0 and report.max_length == 512  # SciFact has abstracts past 512 tokens
        ids = [json.loads(line)["_id"] for line in (SCIFACT / "corpus.jsonl").open().readlines()[:100]]
        vectors[mode] = {i: s[FIELDS.sparse] for i, s in sources(client, index, ids).items()}
    assert report.encoder_check.startswith(f"sparse matches {model_id} (max |diff|")
    assert vectors["pipeline"].keys() == vectors["client"].keys() and len(vectors["client"]) == 100
    for doc_id, p in vectors["pipeline"].items():
        c = vectors["client"][doc_id]
        assert p.keys() == c.keys(), doc_id
        assert max(abs(p[k] - c[k]) for k in p) <= 1e-3, doc_id


def test_a_cluster_lost_after_the_last_bulk_names_resume(client, transport, deployed_splade, fresh):
    """Every document acknowledged, then the node gone before the refresh and the count (a node killed as an
    ingest of small batches ends): the run stops naming --resume, which sends nothing again and checks the count,
    not with a bare "cannot reach"."""
    model_id, _ = deployed_splade
    index = fresh("lost-at-finish")
    create_index(client, index, model_id)
    meta = IndexMeta.read(transport, index)
    target = urlsplit(transport.url)
    proxy = FlakyProxy((target.hostname, target.port), cut_after=0, cuts=None)  # the link is gone for good
    gone = Transport(proxy_client := Connection(proxy.url).client(), proxy.url, retries=2, backoff=0.1)
    with pytest.raises(ClusterLost, match="lost the cluster after the last bulk, before the count check") as err:
        finish(gone, meta, IngestReport(index, "docs.jsonl", "client"))
    assert "--resume" in err.value.fix
    # the refresh, tried three times by the kit, each time with opensearch-py's own tries
    assert proxy.cut_count == 3 * (proxy_client.transport.max_retries + 1)


GOOD = [
    {"_id": f"g{i}", "title": f"title {i}", "text": f"good document number {i} about sparse search"} for i in range(9)
]
LONG_ID = "x" * 600


def planted_file(path: Path) -> dict[int, str]:
    """A JSONL file mixing good documents with bad lines; {line number: expected reason} of the bad ones."""
    lines: list[tuple[bytes, str | None]] = [
        (jsonl(GOOD[:1]), None),
        (b'{"_id": "bad-json", "text": "unterminated\n', "malformed JSON"),
        (jsonl([{"_id": "no-text", "title": "a title only"}]), "missing or empty text field 'text'"),
        (jsonl([{"_id": "empty-text", "text": "   "}]), "missing or empty text field 'text'"),
        (jsonl(GOOD[1:2]), None),
        ('{"_id": "latin1", "text": "caf\xe9 au lait"}\n'.encode("latin-1"), "invalid UTF-8"),
        (b'["a", "list"]\n', "not a JSON object but a list"),
        (jsonl([{"text": "a text without its id"}]), "missing or empty id field '_id'"),
        (b"   \n", None),  # blank: counted apart, not a document
        (jsonl([{"_id": "number-text", "text": 42}]), "text field 'text' must be a string, not int"),
        (jsonl(GOOD[2:4]), None),
        (jsonl([{"_id": LONG_ID, "text": "an id over 512 bytes"}]), "action_request_validation_exception"),
        (jsonl(GOOD[4:5]), None),
        (jsonl([{"_id": "immense", "text": "fine text", "note": "y" * 40000}]), "illegal_argument_exception"),
        (jsonl([{**GOOD[5], "text": "the first version of g5"}]), None),
        (jsonl(GOOD[6:7]), None),
        (jsonl([{**GOOD[5], "text": "the last version of g5 wins"}]), None),
        (jsonl([{"_id": "g-long", "text": "overlong " * 2000}]), None),
        (jsonl(GOOD[7:9]), None),
    ]
    path.write_bytes(b"".join(raw for raw, _ in lines))
    expected, number = {}, 0
    for raw, why in lines:
        for _ in raw.splitlines():
            number += 1
        if why:
            expected[number] = why
    return expected


@pytest.mark.parametrize("mode", ["pipeline", "client"])
def test_planted_bad_lines_are_all_accounted_for(client, deployed_splade, fresh, tmp_path, mode):
    model_id, export_dir = deployed_splade
    index = fresh(f"bad-{mode}")
    create_index(client, index, model_id)
    expected = planted_file(tmp_path / "planted.jsonl")
    failures = tmp_path / "failures.jsonl"
    report = ingest(
        client, index, tmp_path / "planted.jsonl", mode=mode, sparse_encoder=export_dir, batch_size=4,
        failure_file=failures, progress=False,
    )  # fmt: skip
    good_lines = 8 + 2 + 1  # g0-g8 but g5, g5 twice, g-long: 10 distinct ids
    assert (report.read, report.indexed, report.rejected, report.skipped) == (
        good_lines + len(expected),
        good_lines,
        len(expected),
        0,
    )
    assert report.count_ok and report.blank_lines == 1
    assert report.duplicates == ["g5"] and report.over_length == 1 and report.index_count == 10
    records = [json.loads(line) for line in failures.read_text(encoding="utf-8").splitlines()]
    assert {r["line"]: r["reason"] for r in records}.keys() == expected.keys()
    for r in records:
        assert r["reason"].startswith(expected[r["line"]]), r
    by_line = {r["line"]: r for r in records}
    latin1 = next(n for n, why in expected.items() if why == "invalid UTF-8")
    assert "caf\\xe9" in by_line[latin1]["raw"] and by_line[latin1]["stage"] == "read"
    assert {by_line[n]["stage"] for n, why in expected.items() if why.endswith("exception")} == {"index"}
    assert sources(client, index, ["g5"])["g5"][FIELDS.text] == "title 5\nthe last version of g5 wins"


class FaultProxy(ThreadingHTTPServer):
    """A real HTTP hop in front of the real cluster that answers the first bulk requests with `faults` statuses."""

    def __init__(self, target: str, faults: list[int]):
        self.target, self.faults, self.bulks = urlsplit(target), list(faults), 0
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ProxyHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def relay(self) -> None:
        server: FaultProxy = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if "/_bulk" in self.path:
            server.bulks += 1
            if server.faults:
                status = server.faults.pop(0)
                payload = json.dumps({"error": {"type": "injected", "reason": f"fault {status}"}, "status": status})
                return self.answer(status, payload.encode(), "application/json")
        conn = http.client.HTTPConnection(server.target.hostname, server.target.port, timeout=600)
        conn.request(self.command, self.path, body or None, {"Content-Type": self.headers.get("Content-Type", "")})
        resp = conn.getresponse()
        self.answer(resp.status, resp.read(), resp.getheader("Content-Type", "application/json"))

    def answer(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = relay


def test_bulk_retries_429_and_5xx_with_backoff(conn, client, deployed_splade, fresh, tmp_path):
    model_id, _ = deployed_splade
    index = fresh("retry")
    create_index(client, index, model_id)
    (tmp_path / "docs.jsonl").write_bytes(jsonl(GOOD))
    proxy = FaultProxy(conn.url, [429, 500, 429])
    try:
        report = ingest(Connection(proxy.url).client(), index, tmp_path / "docs.jsonl", batch_size=100, progress=False)
    finally:
        proxy.shutdown()
    assert report.retries == 3 and proxy.bulks == 4
    assert (report.indexed, report.rejected, report.index_count) == (9, 0, 9)


def test_killed_ingest_resumes_with_every_document_indexed_once(conn, client, deployed_splade, fresh, tmp_path):
    model_id, _ = deployed_splade
    index = fresh("resume")
    create_index(client, index, model_id)
    lines = (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:300]
    short = [{**json.loads(line), "text": json.loads(line)["text"][:120] or "empty abstract"} for line in lines]
    source = tmp_path / "short.jsonl"
    source.write_bytes(jsonl(short))
    cli = [sys.executable, "-c", "from opensearch_kit.cli import run; run()", "--url", conn.url, "ingest", index]
    args = [str(source), "--batch-size", "5", "--workers", "1", "--failures", str(tmp_path / "f.jsonl"), "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([*cli, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while client.count(index=index)["count"] < 30:
        assert first.poll() is None and time.monotonic() < deadline, "the first run ended before it was killed"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    client.indices.refresh(index=index)
    assert 30 <= client.count(index=index)["count"] < 300

    resumed = subprocess.run([*cli, *args, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["count_ok"] and report["read"] == 300 and report["rejected"] == 0
    assert report["skipped"] >= 30 and report["indexed"] == 300 - report["skipped"]
    assert report["index_count"] == 300
    hits = client.search(index=index, body={"size": 300, "version": True, "_source": False})["hits"]["hits"]
    assert len(hits) == 300 and {h["_version"] for h in hits} == {1}  # none was indexed twice


def test_korean_corpus_with_nori_finds_gold_pages(client, deployed_splade, fresh, tmp_path):
    model_id, export_dir = deployed_splade
    base = AUTORAG_KO
    queries = {q["_id"]: q["text"] for q in map(json.loads, (base / "queries.jsonl").open(encoding="utf-8"))}
    qrels = [line.split("\t")[:2] for line in (base / "qrels/test.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    qrels = qrels[:12]
    gold = {doc for _, doc in qrels}
    corpus = [json.loads(line) for line in (base / "corpus.jsonl").open(encoding="utf-8")]
    subset = [d for d in corpus if d["_id"] in gold] + [d for d in corpus if d["_id"] not in gold][::15]
    (tmp_path / "ko.jsonl").write_bytes(jsonl(subset))

    index = fresh("korean")
    create_index(client, index, model_id, language="ko")
    report = ingest(client, index, tmp_path / "ko.jsonl", mode="client", sparse_encoder=export_dir, progress=False)
    assert report.count_ok and report.indexed == len(subset) == report.index_count
    tokens = client.indices.analyze(index=index, body={"field": FIELDS.text, "text": "손해배상청구소송"})["tokens"]
    assert [t["token"] for t in tokens] == ["손해", "배상", "청구", "소송"]  # nori splits the compound
    for query_id, doc_id in qrels:
        body = {"query": {"match": {FIELDS.text: queries[query_id]}}, "size": 3}
        top = [h["_id"] for h in client.search(index=index, body=body)["hits"]["hits"]]
        assert top[0] == doc_id, (queries[query_id], top)
