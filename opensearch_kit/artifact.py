"""What every export writes: the model zip (model file + tokenizer.json), the register body, the report."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from opensearch_kit import __version__
from opensearch_kit.errors import KitError
from opensearch_kit.maven import file_digest

FORMATS = {"torchscript": ("TORCH_SCRIPT", ".pt"), "onnx": ("ONNX", ".onnx")}


@dataclass
class Export:
    """What an export wrote: the zip, the register body, the parity report and the model file."""

    zip_path: Path
    register_path: Path
    report_path: Path
    model_file: Path
    report: dict


def save_tokenizer(tokenizer, max_length: int, path: Path) -> None:
    """tokenizer.json with truncation at the model's max length and no padding (DJL pads itself); `tokenizer` is
    a transformers fast tokenizer or a `tokenizers.Tokenizer`."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    backend.enable_truncation(max_length)
    backend.no_padding()
    backend.save(str(path))


def build_zip(out_dir: Path, name: str, model_file: Path, tokenizer_file: Path, extra_files: tuple = ()) -> Path:
    """The zip ML Commons unpacks: the model file (plus e.g. its ONNX external data file) and tokenizer.json."""
    path = out_dir / f"{name}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        zf.write(model_file, model_file.name)
        for extra in extra_files:
            zf.write(extra, extra.name)
        zf.write(tokenizer_file, "tokenizer.json")
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


def default_name(model_path: str) -> str:
    return Path(model_path.rstrip("/")).name.replace("/", "-") or "model"


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def report_path(out_dir: Path, name: str) -> Path:
    """Where an export writes its report (parity figures, reference outputs for the in-cluster check)."""
    return out_dir / f"{name}.parity.json"


def parity_failure(out_dir: Path, name: str, report: dict, summary: str) -> KitError:
    """Write the failing report and return the error that points at it."""
    path = report_path(out_dir, name)
    write_json(path, report)
    return KitError(
        f"parity check failed: {summary}", f"the exported graph differs from the original; details in {path}"
    )


def write_export(
    out_dir: Path,
    name: str,
    model_files: list[Path],
    tokenizer_file: Path,
    fmt: str,
    function_name: str,
    description: str,
    report: dict,
    model_config: dict | None = None,
) -> Export:
    """Zip the model files with tokenizer.json, write the register body (model_config after function_name)
    and the report."""
    zip_path = build_zip(out_dir, name, model_files[0], tokenizer_file, tuple(model_files[1:]))
    body = register_body(name, zip_path, FORMATS[fmt][0], function_name, description)
    if model_config:
        body["model_config"] = model_config
    register_path = out_dir / f"{name}.json"
    write_json(register_path, body)
    path = report_path(out_dir, name)
    report["toolkit_version"] = __version__
    write_json(path, report)
    return Export(zip_path, register_path, path, model_files[0], report)


def read_report(export_dir: Path, kind: str) -> dict:
    """The one `<name>.parity.json` of this kind in an export directory."""
    reports = [json.loads(p.read_text()) for p in sorted(Path(export_dir).glob("*.parity.json"))]
    found = [r for r in reports if r.get("kind") == kind]
    if len(found) != 1:
        raise KitError(
            f"{export_dir} holds {len(found)} {kind} export reports",
            f"pass the directory written by one `opensearch-kit export {kind}` run",
        )
    return found[0]
