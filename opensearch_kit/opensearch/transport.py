"""The one request path to a cluster. Every call the toolkit makes goes through `Transport.request` (a REST path)
or `Transport.call` (an opensearch-py API such as `client.plugins.ml.get_model`); failures come back as the
errors of `opensearch_kit.errors`, carrying the HTTP status and the server's innermost reason."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

from opensearch_kit.errors import (
    AuthError,
    ClusterError,
    IndexNotFound,
    KitError,
    ModelNotFound,
    NotFound,
    PipelineNotFound,
    Timeout,
    TlsError,
    Unreachable,
)
from opensearch_kit.opensearch.tls import certificate_failure

if TYPE_CHECKING:
    from opensearch_kit.opensearch.ml import MLCommons

T = TypeVar("T")
log = logging.getLogger("opensearch_kit")
MISSING_MODEL = re.compile(r"failed to find model|model (?:not found|.*does not exist)", re.I)
MISSING_PERMISSION = re.compile(r"no permissions for \[([^\]]+)\]")
MISSING_PIPELINE = re.compile(r"pipeline.*(?:not found|missing|does not exist|is not defined)", re.I)


class Transport:
    """A cluster to talk to: an opensearch-py client and its URL, with retry and backoff for transient faults
    (cut connections, timeouts, 429 and 5xx) on the calls that ask for it."""

    def __init__(self, client: OpenSearch, url: str = "", *, retries: int = 4, backoff: float = 1.0):
        self.client = client
        self.url = url or _client_url(client)
        self.retries = retries
        self.backoff = backoff

    @classmethod
    def of(cls, target: Transport | OpenSearch) -> Transport:
        """`target` itself, or a Transport around a plain opensearch-py client."""
        return target if isinstance(target, Transport) else cls(target)

    @property
    def ml(self) -> MLCommons:
        """The ML Commons namespace on this cluster."""
        from opensearch_kit.opensearch.ml import MLCommons

        return MLCommons(self)

    def request(self, method: str, path: str, body: Any = None, *, params: dict | None = None, retry: bool = False):
        """One REST call; its decoded JSON answer."""
        return self.call(
            lambda: self.client.transport.perform_request(method, path, body=body, params=params),
            f"{method} {path}",
            retry=retry,
        )

    def call(self, fn: Callable[[], T], what: str, *, retry: bool = False) -> T:
        """Run an opensearch-py call; with `retry`, transient faults are retried with exponential backoff."""
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            try:
                return fn()
            except ConnectionTimeout as e:
                error = Timeout(
                    f"{what}: no answer from {self.url} within the read timeout ({e.info or e})",
                    "the cluster is busy or the call is slow: wait and run it again, or raise the timeout",
                )
            except OSConnectionError as e:
                error: KitError = self.unreachable(e)
            except TransportError as e:
                error = translate(e, what, self.url)
            transient = isinstance(error, Unreachable) or (isinstance(error, ClusterError) and error.transient)
            if not transient or attempt + 1 == attempts:
                raise error
            log.warning("%s: %s; retry %d/%d", what, error.message, attempt + 1, self.retries)
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def unreachable(self, e: OSConnectionError) -> Unreachable | TlsError:
        """No answer: a TLS failure explained by its cause, else an `Unreachable` (which retrying may fix)."""
        if tls := certificate_failure(e, self.url):
            return tls
        cause = type(e.info).__name__ if e.info else str(e)
        return Unreachable(
            f"cannot reach OpenSearch at {self.url} ({cause})",
            "start the local cluster with `opensearch-kit cluster start`, or pass --url / set OPENSEARCH_URL",
        )

    def exists(self, path: str) -> bool:
        """Whether GET `path` finds something (an index, a pipeline, a model)."""
        try:
            self.request("GET", path)
            return True
        except NotFound:
            return False

    def scroll(self, index: str, body: dict, size: int = 5000) -> Iterator[dict]:
        """Every hit of a search, page by page through the scroll API; the scroll is cleared at the end."""
        page = self.request("POST", f"/{index}/_search", {**body, "size": size}, params={"scroll": "2m"})
        scroll_id = page.get("_scroll_id")
        try:
            while page["hits"]["hits"]:
                yield from page["hits"]["hits"]
                page = self.request("POST", "/_search/scroll", {"scroll": "2m", "scroll_id": scroll_id})
                scroll_id = page.get("_scroll_id", scroll_id)
        finally:
            if scroll_id:
                with contextlib.suppress(KitError):
                    self.request("DELETE", "/_search/scroll", {"scroll_id": scroll_id})


def _client_url(client: OpenSearch) -> str:
    try:
        host = client.transport.hosts[0]
    except (AttributeError, IndexError, TypeError):
        return "the cluster"
    scheme = "https" if host.get("use_ssl") or host.get("scheme") == "https" else "http"
    return f"{scheme}://{host.get('host', 'localhost')}:{host.get('port', 9200)}"


def reason_of(e: TransportError) -> tuple[str, str]:
    """(error type, the server's reason with its causes: the root cause's, then each `caused_by` below it)."""
    info = e.info if isinstance(e.info, dict) else {}
    err = info.get("error", e.error)
    if not isinstance(err, dict):
        return "", str(err if err not in (None, "") else e.info or e)
    root = (err.get("root_cause") or [err])[0]
    reasons, node = [root.get("reason") or err.get("reason")], err.get("caused_by")
    while isinstance(node, dict):
        reasons.append(node.get("reason"))
        node = node.get("caused_by")
    text = "; caused by: ".join(dict.fromkeys(r for r in reasons if r)) or str(err)
    return str(root.get("type") or err.get("type") or ""), text


def translate(e: TransportError, what: str, url: str) -> ClusterError:
    """The ClusterError (or a subclass naming what is missing) for an HTTP error answer."""
    status = e.status_code if isinstance(e.status_code, int) else 0
    error_type, reason = reason_of(e)
    short = reason[:2000]
    kwargs = {"status": status, "reason": reason, "error_type": error_type}
    if status == 401:
        return AuthError(f"authentication failed at {url}: {short}", "check --user / --password (or env)", **kwargs)
    if status == 403:
        if missing := MISSING_PERMISSION.search(reason):
            return AuthError(
                f"permission denied at {url}: the user lacks {missing[1]} ({what})",
                f"use a user whose roles grant {missing[1]}, or ask an admin to map one to you",
                **kwargs,
            )
        return AuthError(
            f"permission denied at {url}: {short}", "use a user whose roles grant this permission", **kwargs
        )
    if error_type == "index_not_found_exception":
        index = _index_of(e) or "?"
        return IndexNotFound(f"no index {index}", "check the name with GET _cat/indices", **kwargs)
    if MISSING_MODEL.search(reason):
        return ModelNotFound(
            f"a model is missing: {short} ({what})", "list models: opensearch-kit models list", **kwargs
        )
    if MISSING_PIPELINE.search(reason) or (status == 404 and "/pipeline/" in what):
        return PipelineNotFound(f"no pipeline at {what}: {short}", "check the pipeline name", **kwargs)
    if status == 404:
        return NotFound(f"{what}: not found ({short})", "check the name or id", **kwargs)
    return ClusterError(f"{what} failed ({status}): {error_type + ': ' if error_type else ''}{short}", None, **kwargs)


def _index_of(e: TransportError) -> str | None:
    info = e.info if isinstance(e.info, dict) else {}
    err = info.get("error")
    if isinstance(err, dict):
        root = (err.get("root_cause") or [err])[0]
        return root.get("index") or err.get("index")
    return None
