"""In-cluster checks: the deployed model predicts the export's sample texts and must return the outputs the export
recorded (its report's `expected`), within the bounds the report sets for its precision."""

from __future__ import annotations

import numpy as np

from opensearch_kit.artifact import Artifact
from opensearch_kit.errors import KitError
from opensearch_kit.opensearch.ml import MLCommons
from opensearch_kit.verify.compare import compare_token_weights, cosines
from opensearch_kit.verify.samples import PROBE

LOCAL_MIN_COSINE = 0.99  # a local dense encoder of another model scores near 0; reduced-precision exports stay above


def cluster_sparse_weights(
    ml: MLCommons, model_id: str, texts: list[str], function: str = "sparse_encoding"
) -> list[dict[str, float]]:
    """{token: weight} per text from a SPARSE_ENCODING / SPARSE_TOKENIZE model's _predict (local or remote: the
    responses of every result, in order)."""
    results = ml.predict(model_id, {"text_docs": texts}, function)["inference_results"]
    return [w for r in results for o in r["output"] for w in o["dataAsMap"]["response"]]


def cluster_embeddings(ml: MLCommons, model_id: str, texts: list[str], content_type: str | None = None) -> list:
    """sentence_embedding per text from a TEXT_EMBEDDING model's _predict (`content_type` query / passage for
    models registered with a prefix). Local models answer one result per text, remote ones one per batch."""
    body: dict = {"text_docs": texts, "return_number": True, "target_response": ["sentence_embedding"]}
    if content_type:
        body["parameters"] = {"content_type": content_type}
    results = ml.predict(model_id, body, "text_embedding")["inference_results"]
    return [o["data"] for r in results for o in r["output"]]


def cluster_scores(ml: MLCommons, model_id: str, query: str, docs: list[str]) -> list[float]:
    """One score per document from a TEXT_SIMILARITY model's _predict."""
    results = ml.predict(model_id, {"query_text": query, "text_docs": docs}, "text_similarity")["inference_results"]
    return [o["data"][0] for r in results for o in r["output"]]


def check_in_cluster(ml: MLCommons, model_id: str, artifact: Artifact) -> dict:
    """Predict the export's sample texts through the deployed model and compare with its recorded outputs."""
    report = artifact.report
    if "expected" not in report:
        raise KitError(f"{artifact.report_path} records no expected outputs", "re-export with this opensearch-kit")
    check = {"sparse": _sparse, "sparse-tokenizer": _sparse, "dense": _dense, "reranker": _reranker}[artifact.kind]
    return check(ml, model_id, report)


def _sparse(ml: MLCommons, model_id: str, report: dict) -> dict:
    """Same non-zero tokens, weights within the report's bound (1e-3 for fp32)."""
    expected = report["expected"]
    function = "sparse_tokenize" if report["kind"] == "sparse-tokenizer" else "sparse_encoding"
    got = cluster_sparse_weights(ml, model_id, expected["texts"], function)
    return compare_token_weights(got, expected["weights"], report["cluster_bounds"]["max_abs_diff"])


def _dense(ml: MLCommons, model_id: str, report: dict) -> dict:
    """Cosine to the recorded embeddings at least the report's bound (0.9999 for fp32), for passages and, when the
    model has a query prompt, queries (the server adds the prompts itself)."""
    expected = report["expected"]
    asymmetric = bool(report["query_prompt"] or report["passage_prompt"])
    got = cluster_embeddings(ml, model_id, expected["texts"], "passage" if asymmetric else None)
    want = expected["passage_vectors"]
    if expected["query_vectors"]:
        got += cluster_embeddings(ml, model_id, expected["texts"], "query")
        want = want + expected["query_vectors"]
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


def _reranker(ml: MLCommons, model_id: str, report: dict) -> dict:
    """|score diff| within the report's bound (1e-3 for fp32) on every sample pair, one _predict per query."""
    pairs = report["expected"]["pairs"]
    by_query: dict[str, list[int]] = {}
    for i, (query, _) in enumerate(pairs):
        by_query.setdefault(query, []).append(i)
    got = np.zeros(len(pairs))
    for query, rows in by_query.items():
        got[rows] = cluster_scores(ml, model_id, query, [pairs[i][1] for i in rows])
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
