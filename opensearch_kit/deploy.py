"""`opensearch-kit deploy`: export when given a model, register once, deploy, and prove the cluster's output."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from opensearchpy import OpenSearch

from opensearch_kit.artifact import KINDS, Artifact, default_name
from opensearch_kit.errors import KitError
from opensearch_kit.opensearch.transport import Transport
from opensearch_kit.verify.cluster import check_in_cluster


@dataclass
class DeployResult:
    """Where a deploy left a model, what it cost, and the in-cluster parity check (None when skipped)."""

    model_id: str
    name: str
    kind: str
    zip: str
    exported: bool
    reused: bool
    resumed: bool
    uploaded_bytes: int
    upload_seconds: float
    deploy_seconds: float
    deployed_now: bool
    cluster_parity: dict | None = None

    def to_dict(self) -> dict:
        record = asdict(self)
        if self.cluster_parity is None:
            record.pop("cluster_parity")
        return record

    def summary(self) -> str:
        how = (
            "already registered, nothing uploaded"
            if self.reused
            else f"uploaded {self.uploaded_bytes / 1e6:.1f} MB in {self.upload_seconds}s"
        )
        lines = [f"{self.model_id}  {self.name} ({self.kind}): {how}, deploy {self.deploy_seconds}s"]
        if self.cluster_parity:
            p = self.cluster_parity
            detail = f"min cosine {p['min_cosine']:.6f}" if "min_cosine" in p else f"max|diff| {p['max_abs_diff']:.2e}"
            items = f"{p['pairs']} pairs" if "pairs" in p else f"{p['texts']} texts"
            lines.append(f"in-cluster parity: {'OK' if p['ok'] else 'FAILED'} ({detail} on {items})")
        return "\n".join(lines)


def deploy(
    cluster: Transport | OpenSearch,
    source: str | Path,
    *,
    kind: str | None = None,
    out_dir: Path | None = None,
    timeout: float = 600,
    check: bool = True,
    progress: bool = True,
    **export_options,
) -> DeployResult:
    """Deploy `source`: an export (its zip or folder, from `opensearch-kit export`), or a model (a local folder or
    hub id), which is exported first as `kind` into `out_dir` (default ./exports/<name>) with `export_options`
    (format, name, idf, trust_remote_code, ...). See `deploy_artifact` for the rest."""
    if Artifact.is_export(source):
        artifact = Artifact.locate(Path(source))
        if kind and artifact.kind != kind:
            raise KitError(f"{source} is a {artifact.kind} export, not {kind}", f"pass --kind {artifact.kind}")
        exported = False
    else:
        from opensearch_kit.export import export_model

        if kind not in KINDS:
            raise KitError(f"deploying a model needs its kind, not {kind!r}", f"pass --kind ({' | '.join(KINDS)})")
        name = export_options.get("name") or default_name(str(source))
        out = Path(out_dir) if out_dir else Path("exports") / name
        artifact = export_model(kind, str(source), out, **export_options)
        exported = True
    return deploy_artifact(cluster, artifact, timeout=timeout, check=check, progress=progress, exported=exported)


def deploy_artifact(
    cluster: Transport | OpenSearch,
    artifact: Artifact,
    *,
    timeout: float = 600,
    check: bool = True,
    progress: bool = True,
    exported: bool = False,
) -> DeployResult:
    """Register (reusing an identical model), deploy, and run the in-cluster parity check: the cluster predicts
    the export's sample texts and must return what the export recorded; a KitError when it does not."""
    ml = Transport.of(cluster).ml
    registration = ml.register_zip(artifact.zip_path, artifact.register_body, progress=progress)
    began = time.monotonic()
    deployed_now = ml.deploy(registration.model_id, timeout)
    result = DeployResult(
        model_id=registration.model_id,
        name=artifact.register_body["name"],
        kind=artifact.kind,
        zip=str(artifact.zip_path),
        exported=exported,
        reused=registration.reused,
        resumed=registration.resumed,
        uploaded_bytes=registration.uploaded_bytes,
        upload_seconds=round(registration.seconds, 2),
        deploy_seconds=round(time.monotonic() - began, 2),
        deployed_now=deployed_now,
    )
    if check:
        result.cluster_parity = check_in_cluster(ml, registration.model_id, artifact)
        if not result.cluster_parity["ok"]:
            raise KitError(
                f"the cluster's output differs from the original model: {result.cluster_parity}",
                f"model {registration.model_id} stays deployed for inspection; "
                "re-export with opensearch-kit export, or delete it with opensearch-kit models delete",
            )
    return result
