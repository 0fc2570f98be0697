"""TLS and basic auth through the CLI as a user runs it, against two real endpoints: a TLS + basic-auth proxy in
front of the session's node (tests/tls_proxy.py: expired and misnamed certificates, mutual TLS) and a node running
the security plugin (`cluster start --security`: users and permissions). Each case runs with REQUESTS_CA_BUNDLE
unset and pointing at an unrelated bundle (certifi's), which requests would otherwise put in place of --ca-certs /
--insecure. No password shows in any output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import certifi
import pytest
from tls_proxy import TlsProxy

from opensearch_kit.cluster.certs import Pki
from opensearch_kit.cluster.local import LocalCluster
from opensearch_kit.cluster.security import Security

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "admin", "S3cret-pa55-word"
READER, READER_PASSWORD = "reader", "R3ader-pa55-word"
BUNDLES = {"no bundle": None, "unrelated bundle": certifi.where()}


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def servers(conn, pki):
    """TLS endpoints by name: "good", "expired", "other-host" (a certificate for another name), "mtls"."""
    proxies = {
        "good": TlsProxy(conn.url, pki.issue("node"), USER, PASSWORD),
        "expired": TlsProxy(conn.url, pki.issue("node-expired", expired=True), USER, PASSWORD),
        "other-host": TlsProxy(conn.url, pki.issue("node-elsewhere", ("elsewhere.example",)), USER, PASSWORD),
        "mtls": TlsProxy(conn.url, pki.issue("node-mtls"), USER, PASSWORD, client_ca=pki.ca_file),
    }
    yield proxies
    for proxy in proxies.values():
        proxy.close()


@pytest.fixture(params=list(BUNDLES), ids=list(BUNDLES))
def kit(request):
    """Run the CLI with REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE unset or set to an unrelated bundle; (rc, out, err)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    env = {k: v for k, v in env.items() if not k.startswith("OPENSEARCH_")}
    if BUNDLES[request.param]:
        env["REQUESTS_CA_BUNDLE"] = env["CURL_CA_BUNDLE"] = BUNDLES[request.param]
    env["PYTHONPATH"] = str(ROOT)

    def run(*args: str, extra_env: dict | None = None) -> tuple[int, str, str]:
        cli = [sys.executable, "-c", "from opensearch_kit.cli import run; run()", *args]
        proc = subprocess.run(cli, cwd=ROOT, env={**env, **(extra_env or {})}, capture_output=True, text=True)
        assert PASSWORD not in proc.stdout + proc.stderr and READER_PASSWORD not in proc.stdout + proc.stderr
        return proc.returncode, proc.stdout, proc.stderr

    return run


def status(kit, url: str, *options: str, password: str = PASSWORD, extra_env: dict | None = None):
    auth = ("--user", USER, "--password", password)
    return kit("--url", url, *auth, *options, "cluster", "status", "--json", extra_env=extra_env)


def test_default_verification_refuses_a_private_ca_and_says_how_to_trust_it(kit, servers):
    rc, out, err = status(kit, servers["good"].url())
    assert rc == 1 and out == ""
    assert "not signed by a trusted CA" in err and "--ca-certs PATH" in err and "--insecure" in err
    assert "start the local cluster" not in err


def test_ca_certs_flag_and_env_are_honoured(kit, servers, pki):
    rc, out, err = status(kit, servers["good"].url(), "--ca-certs", str(pki.ca_file))
    assert rc == 0, err
    assert json.loads(out)["health"]["number_of_nodes"] >= 1 and err == ""
    rc, out, err = status(kit, servers["good"].url(), extra_env={"OPENSEARCH_CA_CERTS": str(pki.ca_file)})
    assert rc == 0, err


def test_insecure_connects_with_one_warning_line(kit, servers):
    rc, out, err = status(kit, servers["good"].url(), "--insecure")
    assert rc == 0, err
    assert json.loads(out)["version"]
    warning = f"warning: --insecure: the TLS certificate of {servers['good'].url()} is not checked"
    assert err.strip().splitlines() == [warning]


def test_wrong_password_is_an_authentication_error(kit, servers, pki):
    rc, out, err = status(kit, servers["good"].url(), "--ca-certs", str(pki.ca_file), password="not-the-password")
    assert rc == 1
    assert "authentication failed" in err and "--password" in err
    assert "not-the-password" not in out + err


def test_expired_and_misnamed_certificates_are_explained(kit, servers, pki):
    ca = ("--ca-certs", str(pki.ca_file))
    rc, _, err = status(kit, servers["expired"].url(), *ca)
    assert rc == 1 and "has expired" in err, err
    rc, _, err = status(kit, servers["other-host"].url(), *ca)
    assert rc == 1 and "not issued for that host name" in err and "subjectAltName" in err, err
    rc, _, err = status(kit, servers["good"].url("127.0.0.1"), *ca)  # the certificate lists 127.0.0.1 too
    assert rc == 0, err


def test_client_certificate_for_mutual_tls(kit, servers, pki):
    client = pki.issue("kit-client", (), client=True)
    ca = ("--ca-certs", str(pki.ca_file))
    rc, _, err = status(kit, servers["mtls"].url(), *ca)
    assert rc == 1 and "client certificate" in err and "--client-cert" in err, err
    mine = ("--client-cert", str(client.cert), "--client-key", str(client.key))
    rc, out, err = status(kit, servers["mtls"].url(), *ca, *mine)
    assert rc == 0, err


def test_password_stays_hidden_in_verbose_logs_and_url_user_info(kit, servers, pki):
    """`kit` asserts that no output holds the password; here with library logs on and the password in the URL."""
    ca = ("--ca-certs", str(pki.ca_file))
    url = servers["good"].url().replace("https://", f"https://{USER}:{PASSWORD}@")
    rc, out, err = kit("--url", url, *ca, "-v", "cluster", "status", "--json")
    assert rc == 0, err
    assert json.loads(out)["url"] == servers["good"].url()
    rc, out, err = kit("--url", url.replace(PASSWORD, PASSWORD + "x"), *ca, "-v", "cluster", "status")
    assert rc == 1 and "authentication failed" in err
    assert PASSWORD + "x" not in out + err


@pytest.fixture(scope="module")
def secured(conn):
    """A node with the security plugin beside the session's (port + 3): (https URL, its CA file)."""
    local = LocalCluster((urlsplit(conn.url).port or 9200) + 3)
    local.stop()
    shutil.rmtree(local.dir, ignore_errors=True)  # the security index of an earlier run holds other passwords
    rec = local.start(heap="1g", security=Security(PASSWORD, {READER: READER_PASSWORD}))
    try:
        yield rec.url.replace("127.0.0.1", "localhost"), rec.ca_certs
    finally:
        local.stop()


def test_security_plugin_node_refuses_unverified_and_accepts_its_ca_or_insecure(kit, secured):
    url, ca = secured
    rc, out, err = status(kit, url)
    assert rc == 1 and "not signed by a trusted CA" in err and "--ca-certs PATH" in err, err
    rc, out, err = status(kit, url, "--ca-certs", ca)
    assert rc == 0, err
    assert "opensearch-security" in {p["component"] for p in json.loads(out)["plugins"]}
    rc, out, err = status(kit, url, "--insecure")
    assert rc == 0 and err.count("\n") == 1 and "--insecure" in err, err


def test_security_plugin_wrong_password_and_missing_permission(kit, secured):
    url, ca = secured
    rc, _, err = status(kit, url, "--ca-certs", ca, password="wrong-password")
    assert rc == 1 and "authentication failed" in err, err
    reader = ("--url", url, "--ca-certs", ca, "--user", READER, "--password", READER_PASSWORD)
    rc, out, err = kit(*reader, "cluster", "status", "--json")
    assert rc == 0, err
    rc, out, err = kit(*reader, "models", "list", "--json")
    assert rc == 1 and out == ""
    assert "permission denied" in err and "lacks cluster:admin/opensearch/ml/models/search" in err, err
