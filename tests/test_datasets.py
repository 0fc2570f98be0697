"""`datasets get`: the mirror first, then the cache, then a checksummed download — tested against a loopback HTTP
server serving BEIR-format zips (good, corrupt, wrong checksum, missing)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from opensearch_kit.beir import read_qrels
from opensearch_kit.datasets import DatasetSource, RemoteFile, get, unzip_beir
from opensearch_kit.errors import KitError


def beir_zip(name: str) -> bytes:
    """A small BEIR zip: `<name>/corpus.jsonl`, `queries.jsonl`, `qrels/test.tsv`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            f"{name}/corpus.jsonl", "".join(json.dumps({"_id": f"d{i}", "text": f"doc {i}"}) + "\n" for i in range(3))
        )
        z.writestr(f"{name}/queries.jsonl", json.dumps({"_id": "q1", "text": "doc one"}) + "\n")
        z.writestr(f"{name}/qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return buf.getvalue()


class Server:
    """Files from a folder over loopback HTTP, counting the requests."""

    def __init__(self, root: Path):
        self.requests: list[str] = []
        seen = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    good = beir_zip("tiny")
    (root / "tiny.zip").write_bytes(good)
    (root / "corrupt.zip").write_bytes(good[: len(good) // 2])
    server = Server(root)
    md5 = hashlib.md5(good).hexdigest()
    corrupt_md5 = hashlib.md5(good[: len(good) // 2]).hexdigest()
    sources = {
        s.name: s
        for s in (
            DatasetSource("tiny", (RemoteFile(f"{server.url}/tiny.zip", f"md5:{md5}"),), unzip_beir),
            DatasetSource("corrupt", (RemoteFile(f"{server.url}/corrupt.zip", f"md5:{corrupt_md5}"),), unzip_beir),
            DatasetSource("tampered", (RemoteFile(f"{server.url}/tiny.zip", "md5:" + "0" * 32),), unzip_beir),
            DatasetSource("gone", (RemoteFile(f"{server.url}/gone.zip", f"md5:{md5}"),), unzip_beir),
        )
    }
    yield server, sources
    server.close()


def test_download_checks_unpacks_and_caches(served, tmp_path):
    server, sources = served
    path = get("tiny", directory=tmp_path / "cache", sources=sources, mirror=tmp_path / "empty-mirror", progress=False)
    assert path == tmp_path / "cache" / "tiny"
    assert read_qrels(path / "qrels" / "test.tsv") == {"q1": {"d1": 1}}
    assert len((path / "corpus.jsonl").read_text().splitlines()) == 3
    assert get("tiny", directory=tmp_path / "cache", sources=sources, progress=False) == path
    assert server.requests == ["/tiny.zip"]  # the second call is served from the cache
    assert not list((tmp_path / "cache" / ".downloads").iterdir())  # the zip is not kept once unpacked


def test_a_corrupt_zip_is_refused_and_leaves_nothing(served, tmp_path):
    _, sources = served
    with pytest.raises(KitError, match="not a valid zip"):
        get("corrupt", directory=tmp_path / "cache", sources=sources, progress=False)
    assert not (tmp_path / "cache" / "corrupt").exists()


def test_a_checksum_mismatch_is_refused_naming_both_ways(served, tmp_path):
    _, sources = served
    with pytest.raises(KitError) as e:
        get("tampered", directory=tmp_path / "cache", sources=sources, progress=False)
    assert "md5" in e.value.message and "0" * 32 in e.value.message
    assert "OPENSEARCH_KIT_DATASETS" in e.value.fix and "internet" in e.value.fix
    assert not (tmp_path / "cache" / "tampered").exists()
    assert not list((tmp_path / "cache" / ".downloads").iterdir())


def test_not_found_names_the_mirror_and_the_download(served, tmp_path):
    _, sources = served
    with pytest.raises(KitError) as e:
        get("gone", directory=tmp_path / "cache", sources=sources, progress=False)
    assert "HTTP 404" in e.value.message
    assert "OPENSEARCH_KIT_DATASETS" in e.value.fix and "internet" in e.value.fix


def test_the_mirror_is_read_first(served, tmp_path, monkeypatch):
    server, sources = served
    mirror = tmp_path / "mirror"
    with zipfile.ZipFile(io.BytesIO(beir_zip("tiny"))) as z:
        z.extractall(mirror)
    monkeypatch.setenv("OPENSEARCH_KIT_DATASETS", str(mirror))
    assert get("tiny", directory=tmp_path / "cache", sources=sources, progress=False) == mirror / "tiny"
    assert server.requests == []


def test_the_cli_names_both_ways_for_an_unreachable_data_set(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "OPENSEARCH_KIT_CACHE": str(tmp_path), "HTTPS_PROXY": "http://127.0.0.1:9"}
    cli = [sys.executable, "-c", "from opensearch_kit.cli import run; run()", "datasets", "get", "scifact"]
    out = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "cannot download data set scifact" in out.stderr and "OPENSEARCH_KIT_DATASETS/scifact" in out.stderr
