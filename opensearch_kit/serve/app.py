"""The Ray Serve application: one deployment per served export (replicas, dynamic batching of single texts across
requests) behind one HTTP ingress that speaks the routes of `handlers`. Imported only where Ray is installed."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from opensearch_kit.serve.encoders import encode_items, load_encoder
from opensearch_kit.serve.handlers import (
    BadRequest,
    ServedModel,
    choice_of,
    cohere_rerank,
    openai_embeddings,
    pick_model,
    query_of,
    tei_rerank,
    tei_sparse,
    texts_of,
    top_n_of,
)

ENCODE_BATCH = 32  # rows per ONNX run inside one dynamic batch


@serve.deployment(ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=256)
class Encoder:
    """One export's runtime encoder; single (input, option) items from concurrent requests batch together."""

    def __init__(self, model: dict, device: str, threads: int | None, max_batch: int):
        self.model = ServedModel(**model)
        self.encoder = load_encoder(self.model, device, threads)
        self.encode_one.set_max_batch_size(max_batch)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def encode_one(self, items: list[tuple[Any, str | None]]) -> list:
        return await asyncio.to_thread(encode_items, self.model.kind, self.encoder, items, ENCODE_BATCH)

    async def __call__(self, inputs: list, option: str | None = None) -> list:
        """One output per input, each input batched on its own with other requests' inputs."""
        return list(await asyncio.gather(*(self.encode_one((x, option)) for x in inputs)))


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1024)
class Ingress:
    """HTTP routes -> the model deployments; a 4xx with the reason for bad input."""

    def __init__(self, models: list[dict], *encoders):
        self.models = [ServedModel(**m) for m in models]
        self.encoders = dict(zip([m.name for m in self.models], encoders, strict=True))

    async def encode(self, kind: str, body: dict, inputs: list, option: str | None = None) -> tuple[str, list]:
        model = pick_model(self.models, kind, body.get("model"))
        return model.name, await self.encoders[model.name].remote(inputs, option)

    async def __call__(self, request: Request) -> JSONResponse:
        path = request.url.path.rstrip("/") or "/"
        try:
            if path in ("/", "/health"):
                return JSONResponse({"status": "ok", "models": [asdict(m) for m in self.models]})
            route = ROUTES.get(path)
            if route is None:
                raise BadRequest(f"no route {path}; routes: /health, {', '.join(ROUTES)}", 404)
            if request.method != "POST":
                raise BadRequest(f"{path} takes POST", 405)
            try:
                body = await request.json()
            except ValueError as e:
                raise BadRequest(f"the request body is not JSON ({e})") from e
            if not isinstance(body, dict):
                raise BadRequest("the request body must be a JSON object")
            return JSONResponse(await route(self, body))
        except BadRequest as e:
            return JSONResponse({"error": {"message": e.message, "code": e.status}}, status_code=e.status)


async def openai_route(app: Ingress, body: dict) -> dict:
    texts = texts_of(body, "input")
    option = choice_of(body, "input_type", ("passage", "query"))
    name, vectors = await app.encode("dense", body, texts, option)
    return openai_embeddings(name, vectors)


async def cohere_route(app: Ingress, body: dict) -> dict:
    query, documents = query_of(body), texts_of(body, "documents", single_ok=False)
    _, scores = await app.encode("reranker", body, [(query, d) for d in documents])
    return cohere_rerank(scores, top_n_of(body, len(documents)))


async def sparse_route(app: Ingress, body: dict) -> list:
    texts = texts_of(body, "input")
    _, weights = await app.encode("sparse", body, texts, choice_of(body, "format", ("word", "token_id")))
    return weights


async def tei_embed(app: Ingress, body: dict) -> list:
    return (await app.encode("dense", body, texts_of(body, "inputs")))[1]


async def tei_embed_sparse(app: Ingress, body: dict) -> list:
    return tei_sparse((await app.encode("sparse", body, texts_of(body, "inputs"), "token_id"))[1])


async def tei_rerank_route(app: Ingress, body: dict) -> list:
    query, texts = query_of(body), texts_of(body, "texts", single_ok=False)
    return tei_rerank((await app.encode("reranker", body, [(query, t) for t in texts]))[1])


ROUTES = {
    "/v1/embeddings": openai_route,
    "/v1/rerank": cohere_route,
    "/v1/sparse": sparse_route,
    "/embed": tei_embed,
    "/embed_sparse": tei_embed_sparse,
    "/rerank": tei_rerank_route,
}


def build_app(models: list[ServedModel], device: str, replicas: int, max_batch: int, threads: int | None):
    """The bound application: an Encoder deployment per model (`replicas` each, a GPU share with cuda)."""
    gpu = {"num_gpus": round(1 / max(1, len(models) * replicas), 3)} if device == "cuda" else {}
    encoders = [
        Encoder.options(
            name=f"encoder-{m.name}", num_replicas=replicas, ray_actor_options={"num_cpus": 0.5, **gpu}
        ).bind(asdict(m), device, threads, max_batch)
        for m in models
    ]
    return Ingress.bind([asdict(m) for m in models], *encoders)
