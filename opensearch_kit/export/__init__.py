"""Export Hugging Face models to the form ML Commons runs: one pipeline (`pipeline.run_export`) with a hook class
per kind (`sparse`, `dense`, `reranker`), graph writing (`graph`), fp16 / int8 forms (`quantize`), and the
inference-free sparse tokenizer (`sparse_tokenizer`). Importing this package imports no torch: `export_model`
loads the exporters when called."""

from __future__ import annotations

from pathlib import Path

from opensearch_kit.artifact import KINDS, Artifact
from opensearch_kit.errors import KitError
from opensearch_kit.export.identity import fingerprint, model_name

__all__ = ["KINDS", "Artifact", "export_model"]


def export_model(kind: str, source: str, out_dir: Path, *, progress: bool = True, **options) -> Artifact:
    """Export `source` (a local model folder or hub id) as `kind` into `out_dir`; the written Artifact.

    `options` are `ExportOptions` fields (format, dtype, quantize, name, max_length, trust_remote_code, and the
    kind's own: prune_ratio, pooling / normalize / query_prompt, instruction, idf). The export's parity against
    the original is checked; a KitError with the figures when it fails. The export records its fingerprint
    (`identity.fingerprint`); its name defaults to `identity.model_name`, unique per fingerprint. `progress`:
    a line (a bar on a terminal) on stderr per step.
    """
    if kind not in KINDS:
        raise KitError(f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)}")
    fp = fingerprint(source, kind, options)
    options["name"] = options.get("name") or model_name(source, kind, options.get("format") or "torchscript", fp)
    if kind == "sparse-tokenizer":
        from opensearch_kit.export.sparse_tokenizer import export_sparse_tokenizer

        return export_sparse_tokenizer(
            source, Path(out_dir), idf=options.get("idf"), name=options["name"], fingerprint=fp
        )
    from opensearch_kit.export.dense import DenseExporter
    from opensearch_kit.export.pipeline import ExportOptions, run_export
    from opensearch_kit.export.reranker import RerankerExporter
    from opensearch_kit.export.sparse import SparseExporter

    exporter = {"sparse": SparseExporter, "dense": DenseExporter, "reranker": RerankerExporter}[kind]
    return run_export(exporter(source, ExportOptions.of(**options)), Path(out_dir), fingerprint=fp, progress=progress)
