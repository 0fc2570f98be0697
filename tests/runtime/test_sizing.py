"""Encoders size themselves: threads from the usable cores, batches from the model's shape and a memory budget."""

from __future__ import annotations

import os

from tiny_models import word_tokenizer

from opensearch_kit.runtime.onnx import run_padded
from opensearch_kit.runtime.sizing import MAX_BATCH, ModelShape, activation_budget, available_memory, cores

BERT_BASE = {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "vocab_size": 30522}


def test_cores_and_memory_are_what_this_process_may_use():
    assert 1 <= cores() <= (os.cpu_count() or 1)
    assert available_memory() > 0


def test_shape_from_a_report():
    assert ModelShape.of({"kind": "sparse"}) is None  # reports from before the shape was recorded
    sparse = ModelShape.of({"kind": "sparse", "shape": BERT_BASE, "vocab_size": 30522, "head_block_width": 256})
    assert sparse == ModelShape(768, 3072, 12, 256)
    unblocked = ModelShape.of({"kind": "sparse", "shape": BERT_BASE, "vocab_size": 30522, "head_block_width": None})
    assert unblocked.output_width == 30522
    assert ModelShape.of({"kind": "dense", "shape": BERT_BASE}).output_width == 768


def test_batches_shrink_with_length_within_the_budget():
    shape = ModelShape(768, 3072, 12, 256)
    budget = 512 * 1024**2
    limits = [shape.batch_limit(length, budget) for length in (16, 128, 256, 512)]
    assert limits == sorted(limits, reverse=True) and limits[0] == MAX_BATCH and limits[-1] < 32
    for length, limit in zip((16, 128, 256, 512), limits, strict=True):
        assert shape.activation_bytes(limit, length) <= budget or limit == 1
    assert shape.batch_limit(100_000, budget) == 1


def test_run_padded_keeps_each_batch_within_the_budget_and_the_input_order():
    tokenizer = word_tokenizer()
    texts = [" ".join(["a"] * n) for n in (300, 5, 120, 40, 300, 2, 64, 200) * 4]
    encodings = tokenizer.encode_batch(texts)
    shape = ModelShape(768, 3072, 12, 256)
    seen = []

    def run(feeds):
        seen.append(feeds["input_ids"].shape)
        return feeds["attention_mask"].sum(axis=1)

    out = run_padded(encodings, None, run, shape)
    assert [int(n) for n in out] == [len(e.ids) for e in encodings]
    budget = activation_budget()
    assert all(shape.activation_bytes(b, w) <= budget or b == 1 for b, w in seen)
    assert max(b for b, _ in seen) <= MAX_BATCH
    seen.clear()
    run_padded(encodings, 4, run, shape)
    assert max(b for b, _ in seen) <= 4
