"""`opensearch-kit deploy`: export when given a model, register once, deploy, and prove the cluster's output."""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from opensearch_kit.errors import KitError
from opensearch_kit.ml_commons import MLCommons

KINDS = ("sparse", "sparse-tokenizer", "dense", "reranker")
SPARSE_TOLERANCE = 1e-3


@dataclass
class Artifact:
    """An exported model zip with its register body (`<name>.json`) and export report (`<name>.parity.json`)."""

    zip_path: Path
    meta: dict

    @property
    def export_dir(self) -> Path:
        return self.zip_path.parent

    @property
    def report_path(self) -> Path:
        return self.zip_path.with_suffix(".parity.json")

    @classmethod
    def locate(cls, source: Path) -> Artifact:
        """`source` is a zip, or a directory holding exactly one, with the register body beside it."""
        zips = sorted(source.glob("*.zip")) if source.is_dir() else [source]
        if len(zips) != 1:
            raise KitError(f"{source} holds {len(zips)} model zips", "pass the .zip to deploy")
        register = zips[0].with_suffix(".json")
        if not register.is_file():
            raise KitError(f"no register body {register.name} beside {zips[0]}", "re-run opensearch-kit export")
        return cls(zips[0], json.loads(register.read_text()))


def is_artifact(source: str) -> bool:
    path = Path(source)
    return path.suffix == ".zip" or (path.is_dir() and any(path.glob("*.zip")))


def export_model(kind: str, model: str, fmt: str, out_dir: Path, name: str | None, **options) -> Artifact:
    """Export `model` (a local path or hub id) as `kind`; the written artifact."""
    trust = options.get("trust_remote_code", False)
    if kind == "sparse":
        from opensearch_kit.sparse_export import export_sparse

        zip_path = export_sparse(model, fmt, out_dir, name, trust_remote_code=trust).zip_path
    elif kind == "sparse-tokenizer":
        from opensearch_kit.artifact import default_name
        from opensearch_kit.sparse_tokenizer import export_sparse_tokenizer

        if not options.get("idf"):
            raise KitError("a sparse-tokenizer needs IDF weights", "add --idf idf.json|corpus.jsonl|BEIR_DIR")
        zip_path, _ = export_sparse_tokenizer(
            model, options["idf"], out_dir, name or f"{default_name(model)}-tokenizer"
        )
    elif kind == "dense":
        from opensearch_kit.dense_export import export_dense

        zip_path = export_dense(model, fmt, out_dir, name, trust_remote_code=trust).zip_path
    elif kind == "reranker":
        from opensearch_kit.rerank_export import export_reranker

        zip_path = export_reranker(model, fmt, out_dir, name, trust_remote_code=trust).zip_path
    else:
        raise KitError(f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)}")
    return Artifact.locate(zip_path)


def deploy_artifact(
    ml: MLCommons, artifact: Artifact, kind: str, timeout: float = 600, check: bool = True, progress: bool = True
) -> dict:
    """Register (reusing an identical model), deploy, and run the in-cluster parity check; a record for scripts."""
    registration = ml.register_zip(artifact.zip_path, artifact.meta, progress=progress)
    began = time.monotonic()
    deployed_now = ml.deploy(registration.model_id, timeout)
    record = {
        "model_id": registration.model_id,
        "name": artifact.meta["name"],
        "kind": kind,
        "zip": str(artifact.zip_path),
        "reused": registration.reused,
        "resumed": registration.resumed,
        "uploaded_bytes": registration.uploaded_bytes,
        "upload_seconds": round(registration.seconds, 2),
        "deploy_seconds": round(time.monotonic() - began, 2),
        "deployed_now": deployed_now,
    }
    if check:
        record["cluster_parity"] = check_in_cluster(ml, registration.model_id, artifact, kind)
        if not record["cluster_parity"]["ok"]:
            raise KitError(
                f"the cluster's output differs from the original model: {record['cluster_parity']}",
                f"model {registration.model_id} stays deployed for inspection; "
                "re-export with opensearch-kit export, or delete it with opensearch-kit models delete",
            )
    return record


def check_in_cluster(ml: MLCommons, model_id: str, artifact: Artifact, kind: str) -> dict:
    """Predict the export's sample texts through the cluster and compare with the original model's output."""
    if kind == "sparse":
        return check_sparse_in_cluster(ml, model_id, artifact.report_path)
    if kind == "sparse-tokenizer":
        return check_sparse_tokenizer_in_cluster(ml, model_id, artifact.zip_path)
    if kind == "dense":
        from opensearch_kit.dense_export import check_dense_in_cluster

        return check_dense_in_cluster(ml, model_id, artifact.export_dir)
    from opensearch_kit.rerank_export import check_reranker_in_cluster

    return check_reranker_in_cluster(ml, model_id, artifact.export_dir)


def cluster_sparse_weights(ml: MLCommons, model_id: str, texts: list[str]) -> list[dict[str, float]]:
    """{token: weight} per text from a SPARSE_ENCODING / SPARSE_TOKENIZE model's _predict."""
    results = ml.predict(model_id, {"text_docs": texts})["inference_results"]
    return [r["output"][0]["dataAsMap"]["response"][0] for r in results]


def compare_token_weights(got: list[dict[str, float]], want: list[dict[str, float]], tol: float) -> dict:
    """Same non-zero tokens (a token one side lacks may weigh at most `tol`), weights within `tol`."""
    max_diff, mismatched = 0.0, []
    for g, w in zip(got, want, strict=True):
        for token in g.keys() | w.keys():
            diff = abs(g.get(token, 0.0) - w.get(token, 0.0))
            max_diff = max(max_diff, diff)
            if (token in g) != (token in w) and diff > tol:
                mismatched.append(token)
    return {
        "texts": len(want),
        "max_abs_diff": max_diff,
        "token_mismatch": mismatched[:20],
        "tolerance": tol,
        "ok": max_diff <= tol and not mismatched,
    }


def check_sparse_in_cluster(ml: MLCommons, model_id: str, report_path: Path) -> dict:
    """The cluster against the original model's weights recorded at export."""
    if not report_path.is_file():
        raise KitError(f"no export report {report_path}", "re-export with opensearch-kit export, or pass --no-check")
    reference = json.loads(report_path.read_text()).get("reference")
    if not reference:
        raise KitError(f"{report_path} has no reference weights", "re-export with this version of opensearch-kit")
    got = cluster_sparse_weights(ml, model_id, reference["texts"])
    return compare_token_weights(got, reference["weights"], SPARSE_TOLERANCE)


def check_sparse_tokenizer_in_cluster(ml: MLCommons, model_id: str, zip_path: Path) -> dict:
    """Each query token must come back with its IDF weight (1.0 when the IDF file lacks it)."""
    from tokenizers import Tokenizer

    from opensearch_kit.parity import SAMPLE_TEXTS

    with zipfile.ZipFile(zip_path) as zf:
        tokenizer = Tokenizer.from_str(zf.read("tokenizer.json").decode())
        idf = json.loads(zf.read("idf.json"))
    texts = SAMPLE_TEXTS[:4]
    want = []
    for encoding in tokenizer.encode_batch(texts):
        tokens = {tokenizer.decode([i], skip_special_tokens=True) for i in encoding.ids}
        want.append({t: float(idf.get(t, 1.0)) for t in tokens if t})
    return compare_token_weights(cluster_sparse_weights(ml, model_id, texts), want, 1e-6)
