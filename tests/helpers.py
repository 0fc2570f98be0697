"""Helpers tests share: a deployed export for the length of a block, JSONL files, rerank searches, a SciFact
subset."""

from __future__ import annotations

import functools
import json
import uuid
from contextlib import contextmanager
from pathlib import Path

from references import DOCS

from opensearch_kit import datasets
from opensearch_kit.beir import read_qrels

# Public data sets through `opensearch_kit.datasets`: the mirror ($OPENSEARCH_KIT_DATASETS) first, else downloaded once.
SCIFACT = datasets.get("scifact", progress=False)
AUTORAG_KO = datasets.get("autorag-retrieval-ko", progress=False)


@contextmanager
def deployed(ml, artifact):
    """Register and deploy an export; delete the model afterwards."""
    model_id = ml.register_zip(artifact.zip_path, artifact.register_body, progress=False).model_id
    try:
        ml.deploy(model_id, timeout=300)
        yield model_id
    finally:
        ml.delete(model_id)


def force_memory_bounded(monkeypatch) -> None:
    """Make tiny models take the memory-bounded export big models take, their small weights stored fp16 too (so
    that an int8 export has MatMul weights to quantize)."""
    from opensearch_kit.export import pipeline, quantize

    monkeypatch.setattr(pipeline, "LEAN_ABOVE_BYTES", 0)
    monkeypatch.setattr(pipeline, "fp16_storage", functools.partial(quantize.fp16_storage, min_elements=256))


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return path


def rerank_order(client, model_id: str, query: str) -> list[tuple[int, float]]:
    """Index DOCS, search them through a `rerank` pipeline on the model; (doc index, score) in hit order."""
    index, pipeline = f"kit-test-rerank-{uuid.uuid4().hex[:8]}", f"kit-test-rerank-{uuid.uuid4().hex[:8]}"
    client.indices.create(index=index, body={"mappings": {"properties": {"text": {"type": "text"}}}})
    try:
        for i, doc in enumerate(DOCS):
            client.index(index=index, id=str(i), body={"text": doc})
        client.indices.refresh(index=index)
        processor = {"rerank": {"ml_opensearch": {"model_id": model_id}, "context": {"document_fields": ["text"]}}}
        client.transport.perform_request(
            "PUT", f"/_search/pipeline/{pipeline}", body={"response_processors": [processor]}
        )
        body = {
            "query": {"match_all": {}},
            "size": len(DOCS),
            "ext": {"rerank": {"query_context": {"query_text": query}}},
        }
        hits = client.transport.perform_request(
            "POST", f"/{index}/_search", body=body, params={"search_pipeline": pipeline}
        )["hits"]["hits"]
        return [(int(h["_id"]), h["_score"]) for h in hits]
    finally:
        client.transport.perform_request("DELETE", f"/_search/pipeline/{pipeline}", params={"ignore": 404})
        client.indices.delete(index=index, ignore_unavailable=True)


def scifact_subset(root: Path, queries: int = 10, distractors: int = 100, source: Path = SCIFACT) -> Path:
    """The first `queries` judged queries of `source` (SciFact), their gold documents and `distractors` other
    documents, BEIR layout."""
    qrels = dict(list(read_qrels(source / "qrels" / "test.tsv").items())[:queries])
    gold = {d for docs in qrels.values() for d in docs}
    lines = (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    chosen = [x for x in lines if json.loads(x)["_id"] in gold] + [x for x in lines if json.loads(x)["_id"] not in gold]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(chosen[: len(gold) + distractors]) + "\n", encoding="utf-8")
    wanted = [x for x in (source / "queries.jsonl").read_text("utf-8").splitlines() if json.loads(x)["_id"] in qrels]
    (root / "queries.jsonl").write_text("\n".join(wanted) + "\n", encoding="utf-8")
    rows = [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return root
