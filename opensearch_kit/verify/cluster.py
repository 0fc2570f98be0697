"""In-cluster checks: the deployed model predicts the export's sample texts and must return the outputs the export
recorded (its report's `expected`), within the bounds the report sets for its precision."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from opensearch_kit.artifact import Artifact
from opensearch_kit.errors import KitError, Timeout
from opensearch_kit.opensearch.ml import MLCommons
from opensearch_kit.verify.compare import compare_token_weights, cosines
from opensearch_kit.verify.samples import PROBE

LOCAL_MIN_COSINE = 0.99  # a local dense encoder of another model scores near 0; reduced-precision exports stay above
T = TypeVar("T")


def check_budget(model_bytes: int) -> float:
    """Seconds the in-cluster check may take: 120, plus 60 per GB of model (a 3.4 GB model gets 324 s)."""
    return 120 + 60 * model_bytes / 1e9


class PredictClock:
    """Runs the in-cluster check's predictions one at a time against a time budget. A slow answer is no transient
    fault: nothing is retried, and when the next call would pass the budget (or one call gets no answer within
    what is left of it) the check stops with the measured per-call time and the ways to serve such a model."""

    def __init__(self, model_id: str, budget: float):
        self.model_id = model_id
        self.budget = budget
        self.times: list[float] = []
        self.began = time.monotonic()

    def timed(self, predict: Callable[[float], T], total: int) -> T:
        """`predict(timeout)`'s answer, timed; `total`: the passages of the whole check."""
        spent = time.monotonic() - self.began
        if self.times and spent + max(self.times) > self.budget:
            raise self.too_slow(f"{len(self.times)} of {total} passages took {spent:.0f} s")
        started = time.monotonic()
        try:
            answer = predict(max(1.0, self.budget - spent))
        except Timeout as e:
            waited = time.monotonic() - started
            raise self.too_slow(f"one passage got no answer within {waited:.0f} s") from e
        self.times.append(time.monotonic() - started)
        return answer

    def each(self, items: list, predict: Callable[[Any, float], T], size: Callable[[Any], int]) -> list[T]:
        """`predict(item, timeout)` for every item, timed, the largest by `size` first: it bounds what any item
        takes, so a model too slow for the budget is known after one call, not after the short ones. The answers
        in item order."""
        answers: dict[int, T] = {}
        for i in sorted(range(len(items)), key=lambda i: -size(items[i])):
            answers[i] = self.timed(lambda timeout, item=items[i]: predict(item, timeout), len(items))
        return [answers[i] for i in range(len(items))]

    def too_slow(self, what: str) -> KitError:
        per = f"{max(self.times):.1f} s per passage (slowest), " if self.times else ""
        return KitError(
            f"in-cluster check stopped after {self.budget:.0f} s: {what}; {per}ML Commons runs a local model on "
            f"the data node's CPU, one thread per call, and this model is too slow there for search or ingest",
            f"model {self.model_id} stays deployed; serve it with `opensearch-kit serve start` (batched, every core,"
            " or --device cuda) and register that with `opensearch-kit deploy --remote URL`; or skip the check "
            "with --no-check",
        )


def cluster_sparse_weights(
    ml: MLCommons, model_id: str, texts: list[str], function: str = "sparse_encoding", timeout: float | None = None
) -> list[dict[str, float]]:
    """{token: weight} per text from a SPARSE_ENCODING / SPARSE_TOKENIZE model's _predict (local or remote: the
    responses of every result, in order)."""
    results = ml.predict(model_id, {"text_docs": texts}, function, timeout)["inference_results"]
    return [w for r in results for o in r["output"] for w in o["dataAsMap"]["response"]]


def cluster_embeddings(
    ml: MLCommons, model_id: str, texts: list[str], content_type: str | None = None, timeout: float | None = None
) -> list:
    """sentence_embedding per text from a TEXT_EMBEDDING model's _predict (`content_type` query / passage for
    models registered with a prefix). Local models answer one result per text, remote ones one per batch."""
    body: dict = {"text_docs": texts, "return_number": True, "target_response": ["sentence_embedding"]}
    if content_type:
        body["parameters"] = {"content_type": content_type}
    results = ml.predict(model_id, body, "text_embedding", timeout)["inference_results"]
    return [o["data"] for r in results for o in r["output"]]


def cluster_scores(ml: MLCommons, model_id: str, query: str, docs: list[str], timeout: float | None = None) -> list:
    """One score per document from a TEXT_SIMILARITY model's _predict."""
    body = {"query_text": query, "text_docs": docs}
    results = ml.predict(model_id, body, "text_similarity", timeout)["inference_results"]
    return [o["data"][0] for r in results for o in r["output"]]


def check_in_cluster(ml: MLCommons, model_id: str, artifact: Artifact, budget: float | None = None) -> dict:
    """Predict the export's sample texts through the deployed model, one at a time within `budget` seconds (by
    default `check_budget` of the zip's size), and compare with its recorded outputs."""
    report = artifact.report
    if "expected" not in report:
        raise KitError(f"{artifact.report_path} records no expected outputs", "re-export with this opensearch-kit")
    check = {"sparse": _sparse, "sparse-tokenizer": _sparse, "dense": _dense, "reranker": _reranker}[artifact.kind]
    budget = budget or check_budget(artifact.zip_path.stat().st_size if artifact.zip_path.exists() else 0)
    return check(ml, model_id, report, budget)


def _sparse(ml: MLCommons, model_id: str, report: dict, budget: float) -> dict:
    """Same non-zero tokens, weights within the report's bound (1e-3 for fp32)."""
    expected = report["expected"]
    function = "sparse_tokenize" if report["kind"] == "sparse-tokenizer" else "sparse_encoding"
    clock = PredictClock(model_id, budget)
    answers = clock.each(
        expected["texts"], lambda text, t: cluster_sparse_weights(ml, model_id, [text], function, t), len
    )
    got = [w for weights in answers for w in weights]
    return compare_token_weights(got, expected["weights"], report["cluster_bounds"]["max_abs_diff"])


def _dense(ml: MLCommons, model_id: str, report: dict, budget: float) -> dict:
    """Cosine to the recorded embeddings at least the report's bound (0.9999 for fp32), for passages and, when the
    model has a query prompt, queries (the server adds the prompts itself)."""
    expected = report["expected"]
    asymmetric = bool(report["query_prompt"] or report["passage_prompt"])
    calls = [(text, "passage" if asymmetric else None) for text in expected["texts"]]
    want = expected["passage_vectors"]
    if expected["query_vectors"]:
        calls += [(text, "query") for text in expected["texts"]]
        want = want + expected["query_vectors"]
    clock = PredictClock(model_id, budget)
    answers = clock.each(
        calls, lambda call, t: cluster_embeddings(ml, model_id, [call[0]], call[1], t), lambda c: len(c[0])
    )
    got = [v for vectors in answers for v in vectors]
    cos = cosines(np.asarray(want), np.asarray(got))
    required = report["cluster_bounds"]["min_cosine"]
    return {
        "texts": len(want),
        "queries": len(expected["query_vectors"]),
        "min_cosine": float(cos.min()),
        "max_abs_diff": float(np.abs(np.asarray(want) - np.asarray(got)).max()),
        "min_cosine_required": required,
        "ok": bool(cos.min() >= required),
    }


def _reranker(ml: MLCommons, model_id: str, report: dict, budget: float) -> dict:
    """|score diff| within the report's bound (1e-3 for fp32) on every sample pair, one _predict per pair."""
    pairs = report["expected"]["pairs"]
    clock = PredictClock(model_id, budget)
    answers = clock.each(
        pairs, lambda pair, t: cluster_scores(ml, model_id, pair[0], [pair[1]], t), lambda p: len(p[0]) + len(p[1])
    )
    got = np.array([scores[0] for scores in answers])
    diff = float(np.abs(got - np.asarray(report["expected"]["scores"])).max())
    tolerance = report["cluster_bounds"]["max_abs_diff"]
    return {"pairs": len(got), "max_abs_diff": diff, "tolerance": tolerance, "ok": diff <= tolerance}


def check_local_encoder(ml: MLCommons, model_id: str, kind: str, encoder, model: dict) -> tuple[bool, str]:
    """Whether a local sparse or dense encoder reproduces a deployed model on a probe text, and the figure."""
    if kind == "sparse":
        check = compare_token_weights(cluster_sparse_weights(ml, model_id, [PROBE]), encoder.encode([PROBE]), 1e-3)
        return check["ok"], f"max |diff| {check['max_abs_diff']:.1e}"
    config = model.get("model_config") or {}
    prompted = config.get("query_prefix") or config.get("passage_prefix")
    got = cluster_embeddings(ml, model_id, [PROBE], "passage" if prompted else None)
    want = encoder.embed([PROBE])
    cosine = float(cosines(want, got).min()) if len(got[0]) == want.shape[1] else 0.0
    return cosine >= LOCAL_MIN_COSINE, f"cosine {cosine:.4f}"
