"""A real TLS + basic-auth endpoint in front of the local node (what nginx does in front of a cluster), serving a
certificate of `opensearch_kit.cluster.certs.Pki`."""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from opensearch_kit.cluster.certs import Pem


class TlsProxy:
    """https://localhost:<port> -> `target` (a plain http node), serving `server` and asking for basic auth as
    `user`/`password`; with `client_ca`, also for a client certificate that CA signed."""

    def __init__(self, target: str, server: Pem, user: str, password: str, client_ca: Path | None = None):
        target_parts = urlsplit(target)
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(server.cert, server.key)
        if client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)

        class Relay(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Authorization") != expected:
                    return self.answer(401, b"Unauthorized", "text/plain", {"WWW-Authenticate": 'Basic realm="test"'})
                upstream = http.client.HTTPConnection(target_parts.hostname, target_parts.port, timeout=600)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "host")}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                resp = upstream.getresponse()
                payload = resp.read()
                upstream.close()
                self.answer(resp.status, payload, resp.getheader("Content-Type", "application/json"))

            def answer(self, status: int, payload: bytes, content_type: str, extra: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = relay

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
