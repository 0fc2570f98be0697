"""The inference-free query side: a SPARSE_TOKENIZE zip (tokenizer.json + idf.json) for ML Commons."""

from __future__ import annotations

import json
import math
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer
from tqdm import tqdm

from opensearch_kit.beir import corpus_path, iter_jsonl
from opensearch_kit.errors import KitError


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

    for text in tqdm(texts, desc="idf", unit="doc", leave=False):
        batch.append(text)
        n += 1
        if len(batch) == batch_size:
            flush()
            batch = []
    flush()
    if n == 0:
        raise KitError("the corpus has no text", "check --text-field / the corpus format")
    return {token: math.log(n / count) for token, count in df.items()}


def export_sparse_tokenizer(model_path: str, idf_source: Path, out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write <name>.zip (tokenizer.json + idf.json) and its register body <name>.json."""
    from transformers import AutoTokenizer

    from opensearch_kit.artifact import register_body, save_tokenizer

    out_dir.mkdir(parents=True, exist_ok=True)
    hf = AutoTokenizer.from_pretrained(model_path)
    tokenizer_file = out_dir / "tokenizer.json"
    save_tokenizer(hf, min(hf.model_max_length, 512), tokenizer_file)
    if idf_source.suffix == ".json":
        idf = json.loads(idf_source.read_text(encoding="utf-8"))
    else:
        idf = compute_idf(Tokenizer.from_file(str(tokenizer_file)), read_corpus_texts(idf_source))
    idf_file = out_dir / "idf.json"
    idf_file.write_text(json.dumps(idf, ensure_ascii=False))
    zip_path = out_dir / f"{name}.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(tokenizer_file, "tokenizer.json")
        zf.write(idf_file, "idf.json")
    register = out_dir / f"{name}.json"
    body = register_body(
        name, zip_path, "TORCH_SCRIPT", "SPARSE_TOKENIZE", f"inference-free query tokenizer of {model_path}"
    )
    register.write_text(json.dumps(body, indent=2) + "\n")
    return zip_path, register
