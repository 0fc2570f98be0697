"""A node of another OpenSearch version for the version tests: started for the session on a free port in the
session's kit home (a temporary directory, see tests/conftest.py), or reused from OPENSEARCH_KIT_TEST_URL_2_19;
stopped afterwards."""

from __future__ import annotations

import os
import socket

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
def conn_219():
    """A Connection to an OpenSearch 2.19.1 node of this test session."""
    if os.environ.get(REUSE_ENV):
        yield Connection(os.environ[REUSE_ENV])
        return
    local = LocalCluster(free_port_pair())
    try:
        rec = local.start(version="2.19.1", heap="1g")
        yield Connection(rec.url)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def transport_219(conn_219) -> Transport:
    return conn_219.transport(timeout=300)
