"""What the server answers, without Ray: the exports it serves, request validation (a `BadRequest` with the
reason for a 4xx) and the response bodies of every route, computed with the torch-free runtime encoders.

Routes (one connector shape fits our server, vLLM, TEI and the hosted APIs):
- `POST /v1/embeddings` (OpenAI): {model?, input, input_type?: query|passage} -> {object, data: [{index, embedding}]}
- `POST /v1/rerank` (Cohere): {model?, query, documents, top_n?} -> {results: [{index, relevance_score}]}
- `POST /v1/sparse`: {model?, input, format?: word|token_id} -> the bare list [{token: weight}, ...] that
  ML Commons' remote sparse path reads as is
- TEI: `POST /embed` {inputs} -> [[float]], `POST /embed_sparse` {inputs} -> [[{index, value}]],
  `POST /rerank` {query, texts} -> [{index, score}] (best first); `GET /health`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opensearch_kit.artifact import Artifact
from opensearch_kit.errors import KitError

SERVED_KINDS = ("sparse", "dense", "reranker")
MAX_TEXTS = 512  # per request
MAX_CHARS = 50_000  # per text: the tokenizer truncates, but a request this large is a mistake


class BadRequest(KitError):
    """A request the server refuses with a 4xx and this reason."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ServedModel:
    """One export the server serves: its name (what `model` picks), kind and directory."""

    name: str
    kind: str
    dir: str

    @classmethod
    def of(cls, export_dir: str | Path) -> ServedModel:
        """The ONNX export in `export_dir` (a KitError when it is not one the server can serve)."""
        artifact = Artifact.locate(Path(export_dir))
        if artifact.kind not in SERVED_KINDS:
            raise KitError(f"{export_dir} is a {artifact.kind} export", f"serve {', '.join(SERVED_KINDS)} exports")
        artifact.onnx_file()  # a KitError naming the export to run when it is not ONNX
        return cls(artifact.register_body["name"], artifact.kind, str(artifact.dir.resolve()))


def pick_model(models: list[ServedModel], kind: str, name: str | None) -> ServedModel:
    """The `kind` model called `name`, or the only `kind` model when no name is given."""
    of_kind = [m for m in models if m.kind == kind]
    if name is not None:
        found = [m for m in of_kind if m.name == name]
        if not found:
            raise BadRequest(f"no {kind} model {name!r}; served: {', '.join(m.name for m in of_kind) or 'none'}", 404)
        return found[0]
    if len(of_kind) != 1:
        served = ", ".join(m.name for m in of_kind)
        raise BadRequest(f"{len(of_kind)} {kind} models are served ({served or 'none'}): name one with 'model'")
    return of_kind[0]


def texts_of(body: dict, key: str, *, single_ok: bool = True) -> list[str]:
    """The non-empty list of strings at `body[key]` (a single string too, when `single_ok`)."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    if key not in body:
        raise BadRequest(f"missing field {key!r}")
    value = body[key]
    if single_ok and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise BadRequest(f"{key!r} must be a non-empty list of strings")
    if not all(isinstance(t, str) for t in value):
        raise BadRequest(f"{key!r} must hold only strings")
    if len(value) > MAX_TEXTS:
        raise BadRequest(f"{len(value)} texts in {key!r}: at most {MAX_TEXTS} per request", 413)
    long = [i for i, t in enumerate(value) if len(t) > MAX_CHARS]
    if long:
        raise BadRequest(f"text {long[0]} of {key!r} is over {MAX_CHARS} characters", 413)
    return value


def query_of(body: dict) -> str:
    query = body.get("query")
    if not isinstance(query, str) or not query:
        raise BadRequest("'query' must be a non-empty string")
    if len(query) > MAX_CHARS:
        raise BadRequest(f"'query' is over {MAX_CHARS} characters", 413)
    return query


def choice_of(body: dict, key: str, allowed: tuple[str, ...]) -> str:
    value = body.get(key) or allowed[0]
    if value not in allowed:
        raise BadRequest(f"{key!r} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def openai_embeddings(name: str, vectors: list[list[float]]) -> dict:
    return {
        "object": "list",
        "model": name,
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
    }


def cohere_rerank(scores: list[float], top_n: int | None) -> dict:
    """{results: [{index, relevance_score}]}, best first, the top `top_n`. Scores are float32 rounded to 7
    decimals: ML Commons' JSON path reads longer decimals as BigDecimal, which its Cohere post-process rejects."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[: top_n or len(scores)]
    return {"results": [{"index": i, "relevance_score": round(float(scores[i]), 7)} for i in order]}


def tei_rerank(scores: list[float]) -> list[dict]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return [{"index": i, "score": float(scores[i])} for i in order]


def tei_sparse(by_id: list[dict[str, float]]) -> list[list[dict]]:
    return [[{"index": int(k), "value": v} for k, v in row.items()] for row in by_id]


def top_n_of(body: dict, documents: int) -> int | None:
    top_n = body.get("top_n")
    if top_n is not None and (not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < 1):
        raise BadRequest("'top_n' must be a positive integer")
    return min(top_n, documents) if top_n else None
