"""An index on remote models works as on local ones: 200 SciFact documents ingested in pipeline mode get the same
vectors (<= 1e-3) as in an index on the same models deployed in the cluster; hybrid and hybrid + remote rerank
searches answer."""

from __future__ import annotations

import numpy as np
from helpers import SCIFACT

from opensearch_kit.index import FIELDS, create_index
from opensearch_kit.ingest import ingest
from opensearch_kit.search import QueryOptions, Searcher

DOCS = 200


def stored(client, index: str) -> dict[str, dict]:
    hits = client.search(index=index, body={"size": DOCS, "query": {"match_all": {}}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def test_remote_index_ingests_like_the_local_one_and_searches(
    transport, client, remote_models, deployed_splade, deployed_minilm, fresh, tmp_path
):
    corpus = tmp_path / "scifact-200.jsonl"
    lines = (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:DOCS]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    remote, local = fresh("remote"), fresh("remote-local")
    create_index(
        transport, remote, remote_models["sparse"].model_id, dense_model=remote_models["dense"].model_id,
        reranker_model=remote_models["reranker"].model_id,
    )  # fmt: skip
    create_index(transport, local, deployed_splade[0], dense_model=deployed_minilm[0])
    for index in (remote, local):
        report = ingest(transport, index, corpus, mode="pipeline", progress=False, failure_file=tmp_path / "f.jsonl")
        assert report.indexed == DOCS and report.index_count == DOCS, report.summary()

    got, want = stored(client, remote), stored(client, local)
    assert got.keys() == want.keys() and len(got) == DOCS
    worst_sparse = worst_dense = 0.0
    for doc_id, source in got.items():
        a, b = source[FIELDS.sparse], want[doc_id][FIELDS.sparse]
        assert a.keys() == b.keys(), doc_id
        worst_sparse = max(worst_sparse, max(abs(a[k] - b[k]) for k in a))
        worst_dense = max(
            worst_dense, float(np.abs(np.subtract(source[FIELDS.dense], want[doc_id][FIELDS.dense])).max())
        )
    assert worst_sparse <= 1e-3 and worst_dense <= 1e-3, (worst_sparse, worst_dense)

    searcher = Searcher(transport, remote)
    query = "vitamin D deficiency and bone density"
    for spec in ("hybrid", "hybrid+rerank"):
        result = searcher.search(query, QueryOptions.parse(spec, k=5))
        assert len(result.hits) == 5, spec
