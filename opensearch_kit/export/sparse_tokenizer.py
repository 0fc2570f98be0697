"""The inference-free query side: a SPARSE_TOKENIZE zip (tokenizer.json + idf.json) for ML Commons."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer

from opensearch_kit.artifact import Artifact, default_name, write_artifact
from opensearch_kit.beir import corpus_path, iter_jsonl
from opensearch_kit.errors import KitError
from opensearch_kit.progress import progress_bar
from opensearch_kit.verify.samples import SAMPLE_TEXTS


def read_corpus_texts(source: Path) -> Iterator[str]:
    """Texts of a JSONL file (title + text) or of a BEIR directory's corpus.jsonl; bad lines are skipped."""
    for doc in iter_jsonl(corpus_path(source)):
        text = " ".join(str(doc.get(k) or "") for k in ("title", "text")).strip()
        if text:
            yield text


def compute_idf(tokenizer: Tokenizer, texts: Iterable[str], batch_size: int = 256) -> dict[str, float]:
    """idf(t) = log(N / df(t)) over decoded tokens, as ML Commons looks them up (special tokens skipped)."""
    df: Counter[str] = Counter()
    n = 0
    batch: list[str] = []

    def flush() -> None:
        for enc in tokenizer.encode_batch(batch):
            df.update({tokenizer.decode([i], skip_special_tokens=True) for i in set(enc.ids)} - {""})

    with progress_bar(desc="idf", unit="doc") as bar:
        for text in texts:
            batch.append(text)
            n += 1
            bar.update()
            if len(batch) == batch_size:
                flush()
                batch = []
        flush()
    if n == 0:
        raise KitError("the corpus has no text", "check --text-field / the corpus format")
    return {token: math.log(n / count) for token, count in df.items()}


def export_sparse_tokenizer(
    model_path: str, out_dir: Path, *, idf: Path, name: str | None = None, fingerprint: str | None = None
) -> Artifact:
    """Write a SPARSE_TOKENIZE export: <name>.zip (tokenizer.json + idf.json), its register body and a report whose
    expected weights (each sample text's tokens with their IDF, 1.0 when absent) the in-cluster check compares."""
    from transformers import AutoTokenizer

    from opensearch_kit.export.load import save_tokenizer

    if idf is None:
        raise KitError("a sparse-tokenizer needs IDF weights", "add --idf idf.json|corpus.jsonl|BEIR_DIR")
    name = name or f"{default_name(model_path)}-tokenizer"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hf = AutoTokenizer.from_pretrained(model_path)
    tokenizer_file = out_dir / "tokenizer.json"
    max_length = min(hf.model_max_length, 512)
    save_tokenizer(hf, max_length, tokenizer_file)
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    idf_path = Path(idf)
    weights = (
        json.loads(idf_path.read_text(encoding="utf-8"))
        if idf_path.suffix == ".json"
        else compute_idf(tokenizer, read_corpus_texts(idf_path))
    )
    idf_file = out_dir / "idf.json"
    idf_file.write_text(json.dumps(weights, ensure_ascii=False), encoding="utf-8")
    texts = SAMPLE_TEXTS[:4]
    expected = []
    for encoding in tokenizer.encode_batch(texts):
        tokens = {tokenizer.decode([i], skip_special_tokens=True) for i in encoding.ids}
        expected.append({t: float(weights.get(t, 1.0)) for t in tokens if t})
    report = {
        "model": model_path,
        "format": "torchscript",
        "model_file": None,
        "max_length": max_length,
        "idf_tokens": len(weights),
        "cluster_bounds": {"max_abs_diff": 1e-6},
        "expected": {"texts": texts, "weights": expected},
    }
    return write_artifact(
        out_dir,
        name,
        members=[idf_file],
        tokenizer_file=tokenizer_file,
        kind="sparse-tokenizer",
        fmt="torchscript",
        description=f"inference-free query tokenizer of {model_path}",
        report=report,
        fingerprint=fingerprint,
    )
