"""A node of another OpenSearch version for the version tests: started for the session on a free port in the
session's kit home (a temporary directory, see tests/conftest.py), or reused from OPENSEARCH_KIT_TEST_URL_2_19;
stopped afterwards."""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from opensearch_kit.cluster import LocalCluster
from opensearch_kit.cluster.local import TRANSPORT_OFFSET
from opensearch_kit.opensearch import Connection, Transport

REUSE_ENV = "OPENSEARCH_KIT_TEST_URL_2_19"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port_pair() -> int:
    """An HTTP port p, free together with its transport port p + TRANSPORT_OFFSET."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + TRANSPORT_OFFSET < 65536 and _bindable(port + TRANSPORT_OFFSET):
            return port
    raise RuntimeError("no free pair of ports on 127.0.0.1")


@pytest.fixture(scope="session")
def starting_219():
    """The URL of an OpenSearch 2.19.1 node of this session, as a Future: the node assembles and starts in the
    background while the tests export their models."""
    with ThreadPoolExecutor(1) as pool:
        if os.environ.get(REUSE_ENV):
            yield pool.submit(os.environ.get, REUSE_ENV)
            return
        local = LocalCluster(free_port_pair())
        future = pool.submit(lambda: local.start(version="2.19.1", heap="1g").url)
        try:
            yield future
        finally:
            future.exception()  # wait for the start to end before stopping what it started
            local.stop()


@pytest.fixture(scope="session")
def transport_219(starting_219) -> Transport:
    return Connection(starting_219.result()).transport(timeout=300)
