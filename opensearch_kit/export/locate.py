"""Find the local ONNX export of a deployed model, for client-mode encoding: the model's fingerprint (its model
group, see `MLCommons.find_fingerprint`) leads to its export in the cache; a TorchScript export leads, through its
recorded source, to the ONNX export of the same model, made from that source when the cache lacks it."""

from __future__ import annotations

from pathlib import Path

from opensearch_kit.errors import KitError
from opensearch_kit.export.identity import cached_export, export_dir, fingerprint, model_name
from opensearch_kit.opensearch.ml import MLCommons, fingerprint_of_group


def onnx_export_of(ml: MLCommons, model_id: str, kind: str, *, root: Path | None = None, make: bool = True) -> Path:
    """The directory of the ONNX export of deployed model `model_id` (a `kind` model); a KitError with the exact
    export command when it can be neither found nor made (`make` False: when it is not in the cache)."""
    flag = f"--{kind}-encoder DIR"
    fp = fingerprint_of_group(ml, ml.get(model_id).get("model_group_id"))
    artifact = cached_export(fp, root) if fp else None
    if artifact is None:
        raise KitError(
            f"no local export of {kind} model {model_id} in the export cache (it was not deployed from here)",
            f"pass {flag}, made with: opensearch-kit export {kind} MODEL --format onnx --out DIR",
        )
    if artifact.format == "onnx":
        return artifact.dir
    source = artifact.report.get("model", "")
    onnx_fp = fingerprint(source, kind, {"format": "onnx"})
    onnx = cached_export(onnx_fp, root, fmt="onnx")
    if onnx:
        return onnx.dir
    out = export_dir(model_name(source, kind, "onnx", onnx_fp), onnx_fp, root)
    if not make:
        raise KitError(f"no ONNX export of {kind} model {model_id} in the export cache", f"make it in {out}")
    hub_id = source.count("/") == 1 and not source.startswith(("/", ".", "~"))
    if not (Path(source).exists() or hub_id):
        raise KitError(
            f"{kind} model {model_id} was exported from {source}, which is not reachable here",
            f"opensearch-kit export {kind} {source or 'MODEL'} --format onnx --out {out}, then pass {flag}",
        )
    from opensearch_kit.export import export_model

    return export_model(kind, source, out, format="onnx").dir
