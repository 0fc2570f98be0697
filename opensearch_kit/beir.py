"""Read BEIR-format data sets: corpus.jsonl, queries.jsonl and qrels/<split>.tsv."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from opensearch_kit.errors import KitError

Qrels = dict[str, dict[str, int]]


def iter_jsonl(path: Path) -> Iterator[dict]:
    """JSON objects of a JSONL file, one a line; blank and malformed lines are skipped."""
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def corpus_path(source: Path) -> Path:
    """The corpus file: `source` itself, or `source/corpus.jsonl` for a BEIR directory."""
    path = source / "corpus.jsonl" if source.is_dir() else source
    if not path.exists():
        raise KitError(f"no corpus at {path}", "pass a JSONL file or a BEIR directory holding corpus.jsonl")
    return path


def read_qrels(path: Path) -> Qrels:
    """{query-id: {corpus-id: grade}} from a BEIR qrels TSV (query-id, corpus-id, score; header line optional)."""
    if not path.exists():
        raise KitError(f"no qrels at {path}", "a BEIR directory holds qrels/<split>.tsv; check the path and --split")
    qrels: Qrels = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            try:
                grade = int(float(row[2]))
            except ValueError as e:
                raise KitError(f"{path}: bad relevance grade {row[2]!r} in row {row}", "grades must be integers") from e
            qrels.setdefault(row[0], {})[row[1]] = grade
    if not qrels:
        raise KitError(f"{path} holds no judgements", "expect tab-separated query-id, corpus-id, score rows")
    return qrels


def read_queries(beir_dir: Path, query_ids: set[str] | None = None) -> dict[str, str]:
    """{query-id: text} from `beir_dir/queries.jsonl`, restricted to `query_ids` when given, in file order."""
    path = beir_dir / "queries.jsonl"
    if not path.exists():
        raise KitError(f"no queries at {path}", "pass a BEIR directory holding queries.jsonl")
    queries = {
        str(q["_id"]): str(q.get("text") or "")
        for q in iter_jsonl(path)
        if "_id" in q and (query_ids is None or str(q["_id"]) in query_ids)
    }
    return {qid: text for qid, text in queries.items() if text.strip()}
