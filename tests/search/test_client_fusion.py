"""Client-side hybrid fusion against the server's, on the live cluster: a SciFact subset on two shards with the
in-cluster sparse and dense models. For every query and fusion (the index's min-max pipeline, --weights, RRF,
l2 + geometric mean, z-score), sub-queries in another order, a filter and a second page, `Searcher(fusion="client")`
returns the documents and float32 scores the hybrid query returns (documents tied at the cut may swap): the bm25
sub-query in an _msearch sent while the others are encoded, the rest in a second one."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from helpers import scifact_subset

from opensearch_kit.errors import KitError
from opensearch_kit.index import create_index, delete_index
from opensearch_kit.ingest import ingest
from opensearch_kit.search import QueryOptions, Searcher
from opensearch_kit.search.fusion import FusionPoint
from opensearch_kit.tune import frozen_searcher
from opensearch_kit.tune.run import CLOSE

INDEX = "test-client-fusion"
FUSIONS = {
    "l2-geometric": FusionPoint("l2", "geometric_mean", (0.5, 0.2, 0.3)),
    "z-score": FusionPoint("z_score", "arithmetic_mean"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = scifact_subset(tmp_path_factory.mktemp("scifact-fusion"), queries=8, distractors=150)
    docs = [json.loads(line) for line in (root / "corpus.jsonl").read_text().splitlines()]
    for i, doc in enumerate(docs):
        doc["text"], doc["year"] = doc["text"][:600], 2000 + i % 25
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [json.loads(line)["text"] for line in (root / "queries.jsonl").read_text().splitlines()]
    return root, queries


@pytest.fixture(scope="module")
def searchers(transport, corpus, deployed_splade, deployed_minilm):
    """(client, server) searchers of a two-shard index, sharing one frozen query encoding; extra pipelines."""
    delete_index(transport, INDEX, missing_ok=True)
    models = {"dense_model": deployed_minilm[0], "shards": 2, "fields": {"year": "integer"}}
    create_index(transport, INDEX, deployed_splade[0], **models)
    assert ingest(transport, INDEX, corpus[0], progress=False).rejected == 0
    for name, point in FUSIONS.items():
        transport.request("PUT", f"/_search/pipeline/{INDEX}-{name}", point.pipeline())
    frozen = frozen_searcher(Searcher(transport, INDEX))
    client, server = (
        Searcher(transport, INDEX, config=frozen.config, fusion=where, encoding="local", **encoders(frozen))
        for where in ("client", "server")
    )
    yield client, server
    delete_index(transport, INDEX)
    for name in FUSIONS:
        transport.request("DELETE", f"/_search/pipeline/{INDEX}-{name}")


def encoders(searcher: Searcher) -> dict:
    return {"sparse_encoder": searcher.encoders["sparse"], "dense_encoder": searcher.encoders["dense"]}


def assert_same_hits(client, server, label) -> None:
    """The same documents with the same float32 scores, within a few ulps (tune's CLOSE: l2 and geometric means
    round their last bit differently in Java), best first. Documents tied at the cut may differ."""
    scores = [s for _, s in client]
    assert scores == sorted(scores, reverse=True), label
    cut = min(s for _, s in server) if server else 0.0
    kept = [{d: s for d, s in run if s - cut > CLOSE} for run in (client, server)]
    assert kept[0].keys() == kept[1].keys(), label
    assert all(abs(kept[0][d] - s) <= CLOSE for d, s in kept[1].items()), label
    assert len(client) == len(server), label


def hits(result) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in result.hits]


@pytest.mark.parametrize(
    "spec, pipeline, extra",
    [
        ("hybrid", None, {}),
        ("hybrid", None, {"weights": (0.6, 0.1, 0.3)}),
        ("hybrid", None, {"hybrid": ("dense", "sparse", "bm25"), "weights": (0.6, 0.1, 0.3)}),  # bm25 sent first
        ("hybrid+rrf", None, {}),
        ("hybrid", "l2-geometric", {}),
        ("hybrid", "z-score", {"hybrid": ("bm25", "dense")}),
        ("hybrid", None, {"filter": ("year>=2017",), "k": 7}),
        ("hybrid", None, {"offset": 10, "k": 10}),
    ],
)
def test_client_fusion_returns_the_hybrid_querys_hits(searchers, corpus, spec, pipeline, extra):
    client, server = searchers
    if pipeline:
        config = replace(client.config, pipelines={**client.config.pipelines, "hybrid": f"{INDEX}-{pipeline}"})
        client = Searcher(client.transport, INDEX, config=config, fusion="client", encoding="local", **encoders(client))
        server = Searcher(server.transport, INDEX, config=config, fusion="server", encoding="local", **encoders(server))
    options = QueryOptions.parse(spec, **{"k": 10, **extra})
    for text in corpus[1]:
        fused, served = client.search(text, options), server.search(text, options)
        assert fused.hits and len({h.id for h in fused.hits}) == len(fused.hits)
        assert_same_hits(hits(fused), hits(served), (spec, pipeline, extra, text))
        sources = {h.id: h.source for h in served.hits}
        assert all(h.source == sources[h.id] for h in fused.hits if h.id in sources)
        assert fused.total <= served.total and not fused.total_exact


def test_auto_fuses_client_side_only_where_it_can(searchers):
    client, _ = searchers
    auto = Searcher(client.transport, INDEX, config=client.config, encoding="local", **encoders(client))
    assert auto.fuses_here(QueryOptions(mode="hybrid"))
    assert not auto.fuses_here(QueryOptions(mode="hybrid", explain=True))
    assert not auto.fuses_here(QueryOptions.parse("hybrid+rerank"))
    assert not auto.fuses_here(QueryOptions(mode="sparse"))
    with pytest.raises(KitError, match="cannot be fused client-side: explain") as refused:
        client.search("cells", QueryOptions(mode="hybrid", explain=True))
    assert refused.value.fix == "use --fusion server or auto"
