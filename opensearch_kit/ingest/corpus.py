"""Read a JSONL file or a BEIR directory line by line: every line becomes a document or a rejection with its reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from opensearch_kit.beir import corpus_path
from opensearch_kit.index.fields import convert


@dataclass
class Doc:
    """One good document. `text` is the title and the body, the text the encoders see."""

    id: str
    text: str
    title: str
    line: int
    raw: str
    metadata: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)  # the index's typed fields, converted to their types
    duplicate: bool = False  # an earlier line had the same id (this one wins)


@dataclass
class Rejected:
    """A line that cannot be indexed, and why. `raw` holds the line as read (invalid bytes as \\x escapes)."""

    line: int
    id: str | None
    reason: str
    raw: str
    stage: str = "read"

    def record(self) -> dict:
        return {"line": self.line, "id": self.id, "stage": self.stage, "reason": self.reason, "raw": self.raw}


@dataclass
class Corpus:
    """Documents of a JSONL file or BEIR directory; `id_field`, `text_field`, `title_field` name the JSON keys.

    Iterating yields a `Doc` or a `Rejected` per non-blank line, in file order; blank lines are only counted.
    Keys named in `typed_fields` ({name: type}) go to `Doc.fields`, converted (a value that does not fit rejects
    the line); every other key of a line (a BEIR `metadata` object merged in) goes to `Doc.metadata`.
    """

    source: Path
    id_field: str = "_id"
    text_field: str = "text"
    title_field: str | None = "title"
    limit: int | None = None
    typed_fields: dict[str, str] = field(default_factory=dict)
    blank_lines: int = 0
    path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.path = corpus_path(Path(self.source))

    def count(self) -> int:
        """Lines to read (for a progress bar): newline count, capped at `limit`."""
        n, last = 0, b"\n"
        with self.path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                n, last = n + chunk.count(b"\n"), chunk[-1:]
        n += last != b"\n"
        return min(n, self.limit) if self.limit else n

    def __iter__(self) -> Iterator[Doc | Rejected]:
        seen: set[str] = set()
        self.blank_lines = 0
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, 1):
                if self.limit and number > self.limit:
                    break
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                if not raw.strip():
                    self.blank_lines += 1
                    continue
                item = self.parse(raw, number)
                if isinstance(item, Doc):
                    item.duplicate = item.id in seen
                    seen.add(item.id)
                yield item

    def parse(self, raw: bytes, number: int) -> Doc | Rejected:
        """One line as a `Doc`, or a `Rejected` naming what is wrong with it."""
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            shown = raw.decode("utf-8", "backslashreplace").rstrip("\r\n")
            return Rejected(number, None, f"invalid UTF-8: byte {raw[e.start]:#04x} at offset {e.start}", shown)

        def reject(reason: str, doc_id: str | None = None) -> Rejected:
            return Rejected(number, doc_id, reason, line.rstrip("\r\n"))

        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            return reject(f"malformed JSON: {e}")
        if not isinstance(obj, dict):
            return reject(f"not a JSON object but a {type(obj).__name__}")
        doc_id = obj.pop(self.id_field, None)
        if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or str(doc_id).strip() == "":
            return reject(f"missing or empty id field {self.id_field!r}")
        doc_id = str(doc_id)
        body = obj.pop(self.text_field, None)
        title = obj.pop(self.title_field, None) if self.title_field else None
        if body is not None and not isinstance(body, str):
            return reject(f"text field {self.text_field!r} must be a string, not {type(body).__name__}", doc_id)
        if title is not None and not isinstance(title, str):
            return reject(f"title field {self.title_field!r} must be a string, not {type(title).__name__}", doc_id)
        body, title = (body or "").strip(), (title or "").strip()
        if not body:
            return reject(f"missing or empty text field {self.text_field!r}", doc_id)
        if isinstance(obj.get("metadata"), dict):
            obj.update(obj.pop("metadata"))
        typed = {}
        for name, kind in self.typed_fields.items():
            if name in obj:
                try:
                    typed[name] = convert(obj.pop(name), kind)
                except ValueError as e:
                    return reject(f"field {name!r} ({kind}): {e}", doc_id)
        text = f"{title}\n{body}" if title else body
        return Doc(doc_id, text, title, number, line.rstrip("\r\n"), obj, typed)
