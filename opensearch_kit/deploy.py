"""`opensearch-kit deploy`: export when given a model, register once, deploy, and prove the cluster's output."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from opensearchpy import OpenSearch

from opensearch_kit.artifact import KINDS, Artifact
from opensearch_kit.errors import KitError
from opensearch_kit.export.identity import cached_export, export_dir, fingerprint, model_name
from opensearch_kit.index.usage import model_users
from opensearch_kit.opensearch.ml import SERVING, MLCommons
from opensearch_kit.opensearch.transport import Transport
from opensearch_kit.verify.cluster import check_in_cluster

LIMIT_SETTING = "plugins.ml_commons.max_model_on_node"
BREAKER_SETTINGS = "plugins.ml_commons.native_memory_threshold / jvm_heap_memory_threshold / disk_free_space_threshold"


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
    fingerprint: str | None = None
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
        lines.append(f"export: {Path(self.zip).parent}" if self.zip else "export: none here (--out DIR makes one)")
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
    timeout: float | None = None,
    check: bool = True,
    progress: bool = True,
    **export_options,
) -> DeployResult:
    """Deploy `source`: an export (its zip or folder, from `opensearch-kit export`), or a model (a local folder or
    hub id) of `kind` with `export_options` (format, name, idf, trust_remote_code, ...).

    A model is identified by its fingerprint (export.identity): a registered model with that fingerprint is
    reused (deployed when it is not) with no export and no upload; else the cached export of that fingerprint;
    else the model is exported into the cache. With `out_dir`, that folder always ends holding the export:
    linked from the cache, else exported there (even for a reused model). See `deploy_artifact` for the rest."""
    if Artifact.is_export(source):
        artifact = Artifact.locate(Path(source))
        if kind and artifact.kind != kind:
            raise KitError(f"{source} is a {artifact.kind} export, not {kind}", f"pass --kind {artifact.kind}")
        return deploy_artifact(cluster, artifact, timeout=timeout, check=check, progress=progress)
    if kind not in KINDS:
        raise KitError(f"deploying a model needs its kind, not {kind!r}", f"pass --kind ({' | '.join(KINDS)})")
    fp = fingerprint(str(source), kind, export_options)
    fmt = export_options.get("format") or "torchscript"
    name = export_options.get("name") or model_name(str(source), kind, fmt, fp)
    out = Path(out_dir) if out_dir else export_dir(name, fp)
    cached = cached_export(fp, fmt=fmt)
    artifact = cached_export(fp, out, fmt=fmt, flat=True) if out_dir else cached
    if out_dir and artifact is None and cached is not None:
        artifact = linked_export(cached, out)  # --out ends holding the export, reused or not
    registered = Transport.of(cluster).ml.find_fingerprint(fp)
    exported = artifact is None and (out_dir is not None or not registered)
    if exported:
        from opensearch_kit.export import export_model

        artifact = export_model(kind, str(source), out, progress=progress, **{**export_options, "name": name})
    if registered:
        return deploy_registered(
            cluster, registered, fp, artifact, kind=kind, timeout=timeout, check=check, exported=exported
        )
    return deploy_artifact(cluster, artifact, timeout=timeout, check=check, progress=progress, exported=exported)


def linked_export(artifact: Artifact, out: Path) -> Artifact:
    """A copy of the export `artifact` in `out`: its files hard-linked (copied across file systems)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(artifact.dir, out, copy_function=link, dirs_exist_ok=True)
    return Artifact(out, artifact.name)


def deploy_registered(
    cluster: Transport | OpenSearch,
    model: dict,
    fp: str,
    artifact: Artifact | None,
    *,
    kind: str,
    timeout: float | None,
    check: bool,
    exported: bool = False,
) -> DeployResult:
    """Deploy an already registered `model` (a search hit) if it does not serve; the in-cluster check runs when
    the export (`artifact`, cached or just `exported`) is at hand."""
    ml = Transport.of(cluster).ml
    began = time.monotonic()
    deployed_now = deploy_explained(ml, model["model_id"], timeout)
    result = DeployResult(
        model_id=model["model_id"],
        name=model.get("name", ""),
        kind=kind,
        zip=str(artifact.zip_path) if artifact else "",
        exported=exported,
        reused=True,
        resumed=False,
        uploaded_bytes=0,
        upload_seconds=0.0,
        deploy_seconds=round(time.monotonic() - began, 2),
        deployed_now=deployed_now,
        fingerprint=fp,
    )
    if check and artifact:
        result.cluster_parity = checked(ml, model["model_id"], artifact)
    return result


def deploy_artifact(
    cluster: Transport | OpenSearch,
    artifact: Artifact,
    *,
    timeout: float | None = None,
    check: bool = True,
    progress: bool = True,
    exported: bool = False,
) -> DeployResult:
    """Register (reusing an identical model), deploy, and run the in-cluster parity check: the cluster predicts
    the export's sample texts and must return what the export recorded; a KitError when it does not."""
    ml = Transport.of(cluster).ml
    registration = ml.register_zip(artifact.zip_path, artifact.register_body, progress=progress)
    began = time.monotonic()
    deployed_now = deploy_explained(ml, registration.model_id, timeout, progress)
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
        fingerprint=artifact.fingerprint,
    )
    if check:
        result.cluster_parity = checked(ml, registration.model_id, artifact)
    return result


def checked(ml, model_id: str, artifact: Artifact) -> dict:
    """The in-cluster parity figures; a KitError when the cluster's output differs from the export's record."""
    parity = check_in_cluster(ml, model_id, artifact)
    if not parity["ok"]:
        raise KitError(
            f"the cluster's output differs from the original model: {parity}",
            f"model {model_id} stays deployed for inspection; "
            "re-export with opensearch-kit export, or delete it with opensearch-kit models delete",
        )
    return parity


def deploy_explained(ml: MLCommons, model_id: str, timeout: float | None, progress: bool = False) -> bool:
    """`ml.deploy`; when the node refuses for its model limit or a memory/disk breaker, a KitError naming the
    setting, the deployed models with the indexes that use them, and the command that frees the unused ones."""
    try:
        return ml.deploy(model_id, timeout, progress)
    except KitError as e:
        text = str(e).lower()
        if "max local model" in text or "max_model_on_node" in text:
            setting = LIMIT_SETTING
        elif "circuit" in text or "memory" in text or "disk" in text:
            setting = BREAKER_SETTINGS
        else:
            raise
        raise node_limit_error(ml, e, setting) from e


def node_limit_error(ml: MLCommons, cause: KitError, setting: str) -> KitError:
    users = model_users(ml.transport)
    serving = [m for m in ml.list_models() if m.get("model_state") in SERVING]
    rows = [f"  {m['model_id']} {m['name']}: {', '.join(users.get(m['model_id'], [])) or 'used by no index'}"
            for m in serving]  # fmt: skip
    unused = [m["model_id"] for m in serving if not users.get(m["model_id"])]
    free = (
        "free the unused ones: " + " && ".join(f"opensearch-kit models undeploy {i}" for i in unused)
        if unused
        else "every deployed model is used by an index: undeploy one with --force"
    )
    return KitError(
        f"the node refused the deploy ({setting}): {cause.message}\ndeployed models:\n" + "\n".join(rows),
        f"{free}; or raise {setting} (PUT _cluster/settings)",
    )
