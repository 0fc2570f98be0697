"""File helpers every stage uses: content digests and JSON records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def file_digest(path: Path, kind: str = "sha256") -> str:
    """Hex digest of a file with the named hashlib algorithm."""
    h = hashlib.new(kind)
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """`data` as indented UTF-8 JSON (non-ASCII kept readable)."""
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
