"""The exceptions the toolkit raises; the CLI turns each into a readable message with its fix."""

from __future__ import annotations


class KitError(Exception):
    """A failure the user can act on: what went wrong, and the fix."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message


class Unreachable(KitError):
    """No answer from a cluster or model server: refused, cut or timed out (retrying may help)."""


class Timeout(Unreachable):
    """The cluster took the request but gave no answer within the client's read timeout: it may still be working
    on it (a slow call is not a lost connection, so callers that must not repeat work do not retry it)."""


class TlsError(KitError):
    """The TLS handshake failed for a cause retrying cannot fix: an untrusted, expired or misnamed server
    certificate, or a refused client certificate."""


class ClusterError(KitError):
    """The cluster answered with an HTTP error: its status, the error type and the server's reason."""

    def __init__(self, message: str, fix: str | None = None, *, status: int, reason: str, error_type: str = ""):
        super().__init__(message, fix)
        self.status = status
        self.reason = reason
        self.error_type = error_type

    @property
    def transient(self) -> bool:
        """Whether retrying may help (too many requests, server errors)."""
        return self.status == 429 or self.status >= 500


class AuthError(ClusterError):
    """401 (who you are) or 403 (what you may do)."""


class NotFound(ClusterError):
    """A 404 for something that is not one of the kinds below."""


class IndexNotFound(NotFound):
    """The index does not exist."""


class ModelNotFound(NotFound):
    """ML Commons has no model with that id (some APIs answer it with a 500: it is final all the same)."""

    @property
    def transient(self) -> bool:
        return False


class PipelineNotFound(NotFound):
    """No ingest or search pipeline of that name."""
