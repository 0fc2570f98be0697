"""What every export writes: the model zip (model file + tokenizer.json), the register body, the report."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

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
    """tokenizer.json with truncation at the model's max length and no padding (DJL pads itself)."""
    backend = tokenizer.backend_tokenizer
    backend.enable_truncation(max_length)
    backend.no_padding()
    backend.save(str(path))


def build_zip(out_dir: Path, name: str, model_file: Path, tokenizer_file: Path) -> Path:
    path = out_dir / f"{name}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(model_file, model_file.name)
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
