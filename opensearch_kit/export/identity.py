"""What identifies an export, without torch: a fingerprint of everything that determines it, the readable name
derived from the source, and the content-addressed export cache.

The fingerprint is a sha256 over the export-format version, the kind, the export options that change the output
(format, dtype, quantization, ...) and the source model's files: their contents in the order of their relative
paths, so the same model in any folder, under any user, gives the same fingerprint. Hashing the files is the whole
cost (no model is loaded). The registered model carries it in model_config.all_config (searchable),
the export report as `fingerprint`, and the cache directory in its name (`<name>-<fp[:12]>`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from opensearch_kit.artifact import Artifact, default_name
from opensearch_kit.files import file_digest, kit_cache_dir

EXPORT_FORMAT_VERSION = 1  # bump when the export pipeline's output changes for the same inputs
# Options that do not change the exported files' bytes beyond the name (which is derived from the fingerprint).
NOT_IDENTITY = {"name", "trust_remote_code"}
DEFAULTS = {"format": "torchscript", "dtype": "fp32"}


def source_digest(source: str | Path) -> str:
    """sha256 over a local model folder's files (relative path, then content digest, sorted by path; hidden files
    and folders skipped), or over the hub id when `source` is no local path."""
    h = hashlib.sha256()
    root = Path(source)
    if root.is_file():
        h.update(b"file\0" + file_digest(root).encode())
    elif root.is_dir():
        files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
        files = [
            (rel, p) for rel, p in files if not any(part[0] == "." or part == "__pycache__" for part in rel.split("/"))
        ]
        for rel, path in files:
            h.update(rel.encode() + b"\0" + file_digest(path).encode() + b"\n")
    else:
        h.update(b"hub\0" + str(source).strip("/").encode())
    return h.hexdigest()


def identity_options(options: dict) -> dict:
    """The export options that determine the output, with defaults filled and unset ones dropped; a path option
    (idf) stands for its content."""
    chosen = {**DEFAULTS, **{k: v for k, v in options.items() if k not in NOT_IDENTITY}}
    out = {}
    for key, value in sorted(chosen.items()):
        if value is None or value is False or (key == "prune_ratio" and not value):
            continue
        out[key] = source_digest(value) if isinstance(value, Path) else value
    return out


def fingerprint(source: str | Path, kind: str, options: dict) -> str:
    """The export's identity: sha256 over the format version, kind, options that matter and the source's files."""
    header = {"version": EXPORT_FORMAT_VERSION, "kind": kind, "options": identity_options(options)}
    h = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())
    h.update(source_digest(source).encode())
    return h.hexdigest()


def model_name(source: str | Path, kind: str, fmt: str, fp: str) -> str:
    """The registered model's name: the source's readable name (`artifact.default_name`), kind, format and the
    fingerprint's first 8 digits (so two different models never share a name); a sparse tokenizer has no format."""
    form = "" if kind == "sparse-tokenizer" else f"-{fmt}"
    return f"{default_name(str(source))}-{kind}{form}-{fp[:8]}"


def cache_root() -> Path:
    """Where exports are cached: <kit cache dir>/exports."""
    return kit_cache_dir() / "exports"


def export_dir(name: str, fp: str, root: Path | None = None) -> Path:
    """The cache directory of one export: <root>/<name>-<fp[:12]>."""
    return Path(root or cache_root()) / f"{name}-{fp[:12]}"


def cached_export(fp: str, root: Path | None = None, *, fmt: str | None = None, flat: bool = False) -> Artifact | None:
    """The export in the cache `root` (or, `flat`, in the folder `root` itself) whose report has fingerprint `fp`
    (and format `fmt`, when given), if any."""
    root = Path(root or cache_root())
    folders = [root] if flat else sorted(root.glob(f"*-{fp[:12]}"))
    for folder in folders if root.is_dir() else []:
        for zip_path in sorted(folder.glob("*.zip")):
            artifact = Artifact(folder, zip_path.stem)
            if not (artifact.register_path.is_file() and artifact.report_path.is_file()):
                continue
            report = artifact.report
            if report.get("fingerprint") == fp and (fmt is None or report.get("format") == fmt):
                return artifact
    return None
