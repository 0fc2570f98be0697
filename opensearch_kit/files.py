"""File helpers every stage uses: the kit's cache directory, content digests and JSON records."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import platformdirs

CACHE_ENV = "OPENSEARCH_KIT_CACHE"


def kit_cache_dir() -> Path:
    """Root of the kit's caches (Maven artifacts, wheel models, data sets, exports): $OPENSEARCH_KIT_CACHE, else
    the per-user cache directory."""
    return Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("opensearch-kit"))


def file_digest(path: Path, kind: str = "sha256") -> str:
    """Hex digest of a file with the named hashlib algorithm, or `git-blob`: git's object id of the file."""
    h = hashlib.sha1(f"blob {Path(path).stat().st_size}\0".encode()) if kind == "git-blob" else hashlib.new(kind)
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """`data` as indented UTF-8 JSON (non-ASCII kept readable)."""
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
