"""Shared fixtures: a real OpenSearch, reused when one answers at OPENSEARCH_URL, else started locally."""

from __future__ import annotations

import os

import pytest

from opensearch_kit.client import DEFAULT_URL, Connection
from opensearch_kit.local_cluster import LocalCluster, http_json


def _answers(url: str) -> bool:
    try:
        http_json(url, timeout=3)
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def conn() -> Connection:
    """Connection to a live cluster for the whole test session; a local one is stopped at the end."""
    url = os.environ.get("OPENSEARCH_URL", DEFAULT_URL)
    if _answers(url):
        yield Connection(url)
        return
    local = LocalCluster.for_url(url)
    local.start()
    try:
        yield Connection(url)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def client(conn: Connection):
    return conn.client()
