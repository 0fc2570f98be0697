"""Serve exports over HTTP on Ray Serve (OpenAI / Cohere / TEI / sparse routes, dynamic batching), for ML Commons
remote models through connectors. Needs the `ray` extra; nothing here imports Ray until a server starts."""

from opensearch_kit.serve.server import ServerRecord, ServerStopped, server_status, start_server, stop_server

__all__ = ["ServerRecord", "ServerStopped", "server_status", "start_server", "stop_server"]
