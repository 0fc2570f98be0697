"""Connect to an OpenSearch cluster with the user's connection options."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from opensearchpy import OpenSearch, RequestsHttpConnection

from opensearch_kit.errors import KitError
from opensearch_kit.opensearch.tls import PinnedSession, trust_setting

if TYPE_CHECKING:
    from opensearch_kit.opensearch.transport import Transport

DEFAULT_URL = "http://localhost:9200"


@dataclass(frozen=True)
class Connection:
    """How to reach a cluster. Credentials come from flags, env or the URL's user info (moved out of `url`, so
    the URL can be shown) and are never printed. TLS: `ca_certs` > `insecure` > the environment's CA bundle >
    the system default, whatever REQUESTS_CA_BUNDLE says; `client_cert` (+ `client_key`) for mutual TLS."""

    url: str = DEFAULT_URL
    user: str | None = None
    password: str | None = None
    ca_certs: str | None = None
    insecure: bool = False
    client_cert: str | None = None
    client_key: str | None = None
    aws_sigv4: bool = False
    aws_region: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.username is None and parts.password is None:
            return
        host = parts.netloc.rpartition("@")[2]
        object.__setattr__(self, "url", urlunsplit(parts._replace(netloc=host)))
        object.__setattr__(self, "user", self.user or unquote(parts.username or ""))
        object.__setattr__(self, "password", self.password or unquote(parts.password or ""))

    def __repr__(self) -> str:
        return f"Connection(url={self.url!r}, user={self.user!r}, insecure={self.insecure})"

    @property
    def verifies(self) -> bool:
        """Whether server certificates are checked (not with `insecure` and no CA bundle)."""
        return trust_setting(self.ca_certs, self.insecure) is not False

    def transport(self, timeout: float = 60, pool_size: int = 10) -> Transport:
        """The one request path to this cluster (see `Transport`)."""
        from opensearch_kit.opensearch.transport import Transport

        return Transport(self.client(timeout, pool_size), self.url)

    def client(self, timeout: float = 60, pool_size: int = 10) -> OpenSearch:
        """An opensearch-py client on `PinnedConnection`s that keep up to `pool_size` connections open (size it
        to the threads that share the client)."""
        kwargs: dict[str, Any] = {
            "hosts": [self.url],
            "timeout": timeout,
            "connection_class": PinnedConnection,
            "verify": trust_setting(self.ca_certs, self.insecure),
            "client_cert": self.client_cert,
            "client_key": self.client_key,
            "pool_maxsize": pool_size,
        }
        if self.aws_sigv4:
            kwargs["http_auth"] = _sigv4_auth(self.aws_region)
        elif self.user:
            kwargs["http_auth"] = (self.user, self.password or "")
        return OpenSearch(**kwargs)


class PinnedConnection(RequestsHttpConnection):
    """opensearch-py's requests connection with the trust it is given (`verify`: a CA bundle path, False or
    True) pinned: the environment's CA variables cannot replace it. Without verification urllib3's per-request
    warning is silenced (the CLI warns once)."""

    def __init__(self, *args: Any, verify: str | bool = True, **kwargs: Any):
        checks = verify is not False
        super().__init__(*args, verify_certs=checks, ssl_show_warn=checks, **kwargs)
        self.session = PinnedSession.adopt(self.session)
        self.session.verify = verify


def _sigv4_auth(region: str | None):
    try:
        import boto3
        from opensearchpy import RequestsAWSV4SignerAuth
    except ImportError as e:
        raise KitError("AWS SigV4 needs boto3", "pip install boto3") from e
    session = boto3.Session()
    credentials = session.get_credentials()
    region = region or session.region_name or os.environ.get("AWS_REGION")
    if credentials is None or not region:
        raise KitError("no AWS credentials or region for SigV4", "configure the AWS CLI or set AWS_REGION")
    return RequestsAWSV4SignerAuth(credentials, region, "es")
