"""Connect to an OpenSearch cluster with the user's connection options."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opensearch_kit.errors import KitError

if TYPE_CHECKING:
    from opensearch_kit.opensearch.transport import Transport

DEFAULT_URL = "http://localhost:9200"


@dataclass(frozen=True)
class Connection:
    """How to reach a cluster. Credentials come from flags or env only and are never printed."""

    url: str = DEFAULT_URL
    user: str | None = None
    password: str | None = None
    ca_certs: str | None = None
    insecure: bool = False
    aws_sigv4: bool = False
    aws_region: str | None = None

    def __repr__(self) -> str:
        return f"Connection(url={self.url!r}, user={self.user!r}, insecure={self.insecure})"

    def transport(self, timeout: float = 60) -> Transport:
        """The one request path to this cluster (see `Transport`)."""
        from opensearch_kit.opensearch.transport import Transport

        return Transport(self.client(timeout), self.url)

    def client(self, timeout: float = 60):
        """An opensearch-py client; TLS certificates are verified unless `insecure` was asked for."""
        from opensearchpy import OpenSearch, RequestsHttpConnection

        kwargs: dict = {
            "hosts": [self.url],
            "timeout": timeout,
            "verify_certs": not self.insecure,
            "ssl_show_warn": not self.insecure,
            "connection_class": RequestsHttpConnection,
        }
        if self.ca_certs:
            kwargs["ca_certs"] = self.ca_certs
        if self.aws_sigv4:
            kwargs["http_auth"] = _sigv4_auth(self.aws_region)
        elif self.user:
            kwargs["http_auth"] = (self.user, self.password or "")
        return OpenSearch(**kwargs)


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
