"""An export directory, the contract between the exporter (which writes it) and everything that reads it: the
local runtime, the in-cluster verification and deploy. It holds

- `<name>.zip`: what ML Commons registers (the model file, its ONNX external data if any, tokenizer.json);
- `<name>.json`: the `_register_meta` body (function_name before model_config, the zip's sha256 and size);
- `<name>.report.json`: kind, source, format, options, parity figures and the expected outputs for the
  in-cluster check;
- the model file and tokenizer.json themselves, for local use.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from opensearch_kit.errors import KitError
from opensearch_kit.files import file_digest, read_json, write_json

FORMATS = {"torchscript": ("TORCH_SCRIPT", ".pt"), "onnx": ("ONNX", ".onnx")}
KINDS = ("sparse", "sparse-tokenizer", "dense", "reranker")
FUNCTION_NAMES = {
    "sparse": "SPARSE_ENCODING",
    "sparse-tokenizer": "SPARSE_TOKENIZE",
    "dense": "TEXT_EMBEDDING",
    "reranker": "TEXT_SIMILARITY",
}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: the same export gives the same sha256 anywhere


@dataclass(frozen=True)
class Artifact:
    """The export called `name` in directory `dir`."""

    dir: Path
    name: str

    @property
    def zip_path(self) -> Path:
        return self.dir / f"{self.name}.zip"

    @property
    def register_path(self) -> Path:
        return self.dir / f"{self.name}.json"

    @property
    def report_path(self) -> Path:
        return self.dir / f"{self.name}.report.json"

    @property
    def tokenizer_file(self) -> Path:
        return self.dir / "tokenizer.json"

    @cached_property
    def register_body(self) -> dict:
        return read_json(self.register_path)

    @cached_property
    def report(self) -> dict:
        if not self.report_path.is_file():
            raise KitError(f"no export report {self.report_path}", "re-export with opensearch-kit export")
        return read_json(self.report_path)

    @property
    def kind(self) -> str:
        return self.report["kind"]

    @property
    def fingerprint(self) -> str | None:
        """The export's identity (export.identity.fingerprint); None for exports made before it was recorded
        (or without a report)."""
        return self.report.get("fingerprint") if self.report_path.is_file() else None

    @property
    def format(self) -> str | None:
        return self.report.get("format")

    @property
    def model_file(self) -> Path | None:
        """The exported graph (None for a sparse tokenizer, which has none)."""
        name = self.report.get("model_file")
        return self.dir / name if name else None

    def onnx_file(self) -> Path:
        """The ONNX graph for local inference; a KitError naming the export to run otherwise."""
        if self.format != "onnx":
            raise KitError(
                f"{self.dir} holds a {self.format} export; local inference needs ONNX",
                f"export {self.kind} with --format onnx",
            )
        return self.model_file

    @classmethod
    def locate(cls, source: Path, kind: str | None = None) -> Artifact:
        """`source` is an export's zip, or a directory holding exactly one export (of `kind`, when given)."""
        source = Path(source)
        zips = sorted(source.glob("*.zip")) if source.is_dir() else [source]
        found = [cls(z.parent, z.name[: -len(".zip")]) for z in zips if z.suffix == ".zip"]
        found = [a for a in found if a.register_path.is_file()]
        if kind:
            found = [a for a in found if a.report_path.is_file() and a.kind == kind]
        if len(found) != 1:
            what = f"{kind} exports" if kind else "exports (zip + register body)"
            raise KitError(
                f"{source} holds {len(found)} {what}",
                f"pass one export's zip or the directory of one `opensearch-kit export {kind or 'KIND'}` run",
            )
        return found[0]

    @staticmethod
    def is_export(source: str | Path) -> bool:
        """Whether `source` looks like an export (a zip, or a directory with one) rather than a model."""
        path = Path(source)
        return path.suffix == ".zip" or (path.is_dir() and any(path.glob("*.zip")))

    def to_dict(self) -> dict:
        """The report (without the expected outputs) and where the files are."""
        report = {k: v for k, v in self.report.items() if k != "expected"}
        return {
            "zip": str(self.zip_path),
            "register": str(self.register_path),
            "report_path": str(self.report_path),
            **report,
        }

    def summary(self) -> str:
        """What was written and how close the export came to the original."""
        report = self.report
        lines = [f"wrote {self.zip_path} and {self.register_path}"]
        parity = report.get("parity")
        if parity:
            figure = (
                f"min cosine {parity['min_cosine']:.6f}, "
                if "min_cosine" in parity and parity["min_cosine"] < 1
                else ""
            )
            extra = f", non-zero mismatches {parity['nonzero_mismatch']}" if "nonzero_mismatch" in parity else ""
            lines.append(
                f"parity {parity['name']}: {'OK' if parity['ok'] else 'FAILED'}, {figure}"
                f"max|diff| {parity['max_abs_diff']:.2e}{extra}; report {self.report_path}"
            )
        reduced = report.get("reduced_quality")
        if reduced:
            figures = ", ".join(f"{k} {v:.4f}" for k, v in reduced.items() if k != "name")
            lines.append(f"{reduced['name']} vs fp32 original: {figures}")
        lines += report.get("notes", [])
        return "\n".join(lines)


def write_artifact(
    out_dir: Path,
    name: str,
    *,
    members: list[Path],
    tokenizer_file: Path,
    kind: str,
    fmt: str,
    description: str,
    report: dict,
    model_config: dict | None = None,
    fingerprint: str | None = None,
) -> Artifact:
    """Zip `members` (the model file first, extra files after) with tokenizer.json, write the register body
    (model_config after function_name) and the report; the Artifact. A `fingerprint` (export.identity) goes into
    the report and the register body, whose registration files the model in that fingerprint's model group."""
    from opensearch_kit import __version__

    artifact = Artifact(out_dir, name)
    build_zip(artifact.zip_path, [*members, tokenizer_file])
    body = register_body(name, artifact.zip_path, FORMATS[fmt][0], FUNCTION_NAMES[kind], description)
    if model_config:
        body["model_config"] = model_config
    if fingerprint:
        report = {**report, "fingerprint": fingerprint}
        body["fingerprint"] = fingerprint
    write_json(artifact.register_path, body)
    write_json(artifact.report_path, {**report, "kind": kind, "toolkit_version": __version__})
    return artifact


def build_zip(path: Path, members: list[Path]) -> Path:
    """A zip of `members`, stored under their file names, in that order, with fixed timestamps: the same files
    give a byte-identical zip (and so the same sha256) on any machine. Members are stored, not deflated: deflate
    saves ~nothing on weights and costs minutes on gigabytes (2.4 GB at 2.5-10 MB/s)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            big = member.stat().st_size >= zipfile.ZIP64_LIMIT
            with member.open("rb") as src, zf.open(info, "w", force_zip64=big) as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
    return path


def register_body(name: str, zip_path: Path, model_format: str, function_name: str, description: str) -> dict:
    """The ML Commons _register_meta fields for a local zip (function_name before any model_config)."""
    return {
        "name": name,
        "version": "1.0.0",
        "function_name": function_name,
        "model_format": model_format,
        "description": description,
        "model_content_hash_value": file_digest(zip_path, "sha256"),
        "model_content_size_in_bytes": zip_path.stat().st_size,
    }


GENERIC_NAMES = {"model", "models", "checkpoint", "checkpoints", "snapshot", "hf", "weights", "files", "export"}


def default_name(model_path: str) -> str:
    """A readable name for a model path or hub id: its last part, or its parent's when the last part is generic
    (`model`, `checkpoint`, ...)."""
    parts = [p for p in str(model_path).replace("\\", "/").rstrip("/").split("/") if p not in ("", ".")]
    label = parts[-1] if parts else Path.cwd().name
    if label.lower() in GENERIC_NAMES:
        label = parts[-2] if len(parts) > 1 else Path(model_path).resolve().parent.name or label
    return label


def write_report(out_dir: Path, name: str, report: dict) -> Path:
    """Write a report on its own (a failed parity check leaves it behind, with the figures)."""
    path = Artifact(out_dir, name).report_path
    write_json(path, report)
    return path
