"""TLS that does what the user said: which certificates to trust, client certificates, and certificate failures
explained by their cause.

requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace a session's `verify` on every request, so a CA bundle or
`--insecure` given by the user would be ignored on most corporate machines. `PinnedSession` keeps the session's
own choice; `trust_setting` makes that choice (for every HTTP client of a cluster or model server): the user's CA
bundle, else no verification if asked for, else the environment's bundle, else the system default.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterator

import requests

from opensearch_kit.errors import TlsError

ENV_BUNDLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
# OpenSSL X509 verify codes (x509_vfy.h)
UNTRUSTED_CODES = {2, 18, 19, 20, 21}
EXPIRED_CODES = {9, 10}  # not yet valid, expired
HOSTNAME_CODES = {62, 64}  # hostname mismatch, IP address mismatch
TRUST_FIX = "pass the cluster's CA bundle with --ca-certs PATH (env OPENSEARCH_CA_CERTS), or --insecure to skip checks"


def trust_setting(ca_certs: str | None, insecure: bool) -> str | bool:
    """requests' `verify`: the user's CA bundle > no verification (`insecure`) > the environment's bundle > True
    (the system default)."""
    if ca_certs:
        return ca_certs
    if insecure:
        return False
    for name in ENV_BUNDLES:
        if os.environ.get(name):
            return os.environ[name]
    return True


class PinnedSession(requests.Session):
    """A requests session whose `verify` and `cert` are never replaced by the environment's CA variables."""

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = self.verify if verify is None else verify
        settings["cert"] = self.cert if cert is None else cert
        return settings

    @classmethod
    def adopt(cls, session: requests.Session) -> PinnedSession:
        """A PinnedSession with `session`'s state (headers, auth, adapters, verify, cert)."""
        pinned = cls()
        pinned.close()
        pinned.__dict__.update(session.__dict__)
        return pinned


def certificate_failure(error: BaseException, url: str) -> TlsError | None:
    """The TLS failure behind `error` (however deeply requests/urllib3 wrapped it), explained with its fix;
    None if `error` is not a TLS failure."""
    causes = list(_chain(error))
    verify = next((c for c in causes if isinstance(c, ssl.SSLCertVerificationError)), None)
    text = " ".join(str(c) for c in causes)
    code = getattr(verify, "verify_code", None)
    detail = getattr(verify, "verify_message", None) or ""
    if code in EXPIRED_CODES or re.search(r"certificate (has )?expired|not yet valid", text, re.I):
        return TlsError(
            f"the TLS certificate of {url} has expired or is not yet valid ({detail or 'expired'})",
            "renew the server's certificate (or check this machine's clock); --insecure skips the check",
        )
    if code in HOSTNAME_CODES or re.search(r"hostname mismatch|doesn't match|IP address mismatch", text, re.I):
        return TlsError(
            f"the TLS certificate of {url} is not issued for that host name ({detail or 'hostname mismatch'})",
            "connect with a host name the certificate lists (see its subjectAltName), or --insecure to skip checks",
        )
    if code in UNTRUSTED_CODES or verify is not None or re.search(r"self[- ]signed|local issuer", text, re.I):
        return TlsError(
            f"the TLS certificate of {url} is not signed by a trusted CA ({detail or 'untrusted issuer'})", TRUST_FIX
        )
    if re.search(r"certificate required|alert (bad|unknown) certificate", text, re.I):
        return TlsError(
            f"{url} asks for a client certificate and refused the one sent (if any)",
            "pass --client-cert PATH and --client-key PATH of a certificate the cluster trusts",
        )
    if re.search(r"EOF occurred in violation of protocol|UNEXPECTED_EOF", text, re.I):
        return TlsError(
            f"{url} closed the connection during the TLS handshake: it may ask for a client certificate",
            "pass --client-cert PATH and --client-key PATH of a certificate the cluster trusts",
        )
    if re.search(r"wrong version number|record layer failure|packet length too long", text, re.I):
        return TlsError(f"{url} does not speak TLS", "use an http:// URL for this server")
    return None


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """`error` and every exception it wraps: causes, contexts, urllib3's `reason`, exceptions among `args`."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        linked = [e.__cause__, e.__context__, getattr(e, "reason", None), *getattr(e, "args", ())]
        todo += [x for x in linked if isinstance(x, BaseException)]
