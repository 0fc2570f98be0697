"""A deterministic, realistic corpus of any size for scripts/bench_scale.py: English passages recombined from SciFact
sentences (a window of consecutive sentences of one abstract, under its title, plus one sentence of another) and
Korean passages recombined the same way from the AutoRAG-ko passages' lines (one passage in 14, as in a mixed
corpus); queries are SciFact's and AutoRAG-ko's own."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from opensearch_kit import datasets
from opensearch_kit.beir import iter_jsonl

SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
KOREAN_EVERY = 14


def sources() -> tuple[Path, Path]:
    """The BEIR folders of SciFact and AutoRAG-ko (`opensearch_kit.datasets`: the mirror, the cache, a download)."""
    return datasets.get("scifact"), datasets.get("autorag-retrieval-ko")


def _units(path: Path, split) -> list[tuple[str, list[str]]]:
    """(title, sentences) per document with at least two sentences."""
    out = []
    for doc in iter_jsonl(path):
        parts = [s.strip() for s in split(doc.get("text") or "") if len(s.strip()) > 20]
        if len(parts) >= 2:
            out.append((doc.get("title") or "", parts))
    return out


def write_corpus(docs: int, out: Path, seed: int = 13) -> Path:
    """`docs` passages in `out` (JSONL: _id, title, text); the same file for the same arguments."""
    if out.is_file() and sum(1 for _ in out.open(encoding="utf-8")) == docs:
        return out
    scifact, autorag = sources()
    english = _units(scifact / "corpus.jsonl", SENTENCE.split)
    korean = _units(autorag / "corpus.jsonl", lambda t: t.split("\n"))
    rng = random.Random(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for n in range(docs):
            units = korean if n % KOREAN_EVERY == KOREAN_EVERY - 1 else english
            title, sentences = units[rng.randrange(len(units))]
            size = rng.randint(1, 3)
            start = rng.randrange(max(1, len(sentences) - size + 1))
            extra = rng.choice(units[rng.randrange(len(units))][1])
            text = " ".join([*sentences[start : start + size], extra])
            f.write(json.dumps({"_id": f"d{n}", "title": title, "text": text}, ensure_ascii=False) + "\n")
    return out


def queries(count: int) -> list[str]:
    """`count` query texts: SciFact's and AutoRAG-ko's, interleaved one Korean in four."""
    scifact, autorag = sources()
    english = [q["text"] for q in iter_jsonl(scifact / "queries.jsonl")]
    korean = [q["text"] for q in iter_jsonl(autorag / "queries.jsonl")]
    mixed = []
    while len(mixed) < count and (english or korean):
        source = korean if (len(mixed) % 4 == 3 and korean) or not english else english
        mixed.append(source.pop(0))
    return mixed
