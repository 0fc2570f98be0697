"""The runtime encoders behind the served models, and one batched call that serves mixed requests: each item is
(input, option) and items are grouped by option (query / passage prompt, word / token-id keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opensearch_kit.errors import KitError
from opensearch_kit.runtime import DenseEncoder, Reranker, SparseEncoder
from opensearch_kit.serve.handlers import ServedModel

DEVICES = ("cpu", "cuda")
ENCODERS = {"sparse": SparseEncoder, "dense": DenseEncoder, "reranker": Reranker}


def load_encoder(model: ServedModel, device: str = "cpu", threads: int | None = None):
    """The runtime encoder of `model`; with device "cuda" its session runs on the CUDA execution provider."""
    encoder = ENCODERS[model.kind].from_dir(Path(model.dir), threads)
    if device == "cuda":
        if "CUDAExecutionProvider" not in encoder.session.get_providers():
            import onnxruntime as ort

            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise KitError(
                    "--device cuda needs onnxruntime-gpu", "pip install onnxruntime-gpu (instead of onnxruntime)"
                )
            encoder.session.set_providers(["CUDAExecutionProvider", "CPUExecutionProvider"])
    elif device != "cpu":
        raise KitError(f"unknown device {device!r}", f"use one of {', '.join(DEVICES)}")
    return encoder


def encode_items(kind: str, encoder, items: list[tuple[Any, str | None]], batch_size: int) -> list:
    """One output per (input, option) item, in order: an embedding (option "query" / "passage"), a sparse map
    (option "word" / "token_id") or a reranker score (input a (query, document) pair)."""
    out: list = [None] * len(items)
    groups: dict[str | None, list[int]] = {}
    for i, (_, option) in enumerate(items):
        groups.setdefault(option, []).append(i)
    for option, rows in groups.items():
        inputs = [items[i][0] for i in rows]
        if kind == "dense":
            results = encoder.embed(inputs, batch_size, is_query=option == "query").tolist()
        elif kind == "sparse":
            results = (encoder.encode_ids if option == "token_id" else encoder.encode)(inputs, batch_size)
        else:
            results = encoder.pair_scores(inputs, batch_size).tolist()
        for i, result in zip(rows, results, strict=True):
            out[i] = result
    return out
