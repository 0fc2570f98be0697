"""ONNX Runtime sessions fed with length-sorted, dynamically padded batches of tokenizer.json encodings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from opensearch_kit.runtime.sizing import MAX_BATCH, ModelShape, activation_budget, cores

FEEDS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_session(path: Path, threads: int | None = None):
    """An onnxruntime CPU session using every core this process may run on by default. Its threads sleep when
    idle instead of spinning: a spinning pool takes the cores from whatever runs next on them (the other encoder,
    a local OpenSearch node), which doubled a local hybrid query's encoding time on 2 cores. A graph with an
    external data file (over 2 GiB) is not constant-folded: folding the casts of fp16-stored weights would hold
    every weight again in fp32 (1.7B fp16: 11.9 GB instead of 7.3 GB, at the same speed)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or cores()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: ORT's optimizer notices are not for users
    large = Path(str(path) + ".data").exists()
    kept = {"disabled_optimizers": ["ConstantFolding"]} if large else {}
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"], **kept)


def run_padded(
    encodings: list,
    batch_size: int | None,
    run: Callable[[dict[str, np.ndarray]], np.ndarray],
    shape: ModelShape | None = None,
) -> list:
    """Call run({input_ids, attention_mask, token_type_ids}) -> [batch, ...] on length-sorted batches padded
    (right, with id 0) to their longest member, so each batch pads little; the rows come back in input order.
    A batch holds at most `batch_size` texts (None: up to MAX_BATCH), and with the model's `shape` no more than
    keep its activations within the memory budget."""
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    limit = batch_size or (MAX_BATCH if shape else 32)
    budget = activation_budget() if shape else 0
    out: list = [None] * len(encodings)
    start = 0
    while start < len(order):
        end = min(start + limit, len(order))
        if shape is not None:  # lengths ascend: the last member sets the batch's width
            end = start + min(end - start, shape.batch_limit(len(encodings[order[end - 1]].ids), budget))
        idx = order[start:end]
        width = max(len(encodings[i].ids) for i in idx)
        feeds = {k: np.zeros((len(idx), width), dtype=np.int64) for k in FEEDS}
        for row, i in enumerate(idx):
            n = len(encodings[i].ids)
            feeds["input_ids"][row, :n] = encodings[i].ids
            feeds["attention_mask"][row, :n] = 1
            feeds["token_type_ids"][row, :n] = encodings[i].type_ids
        result = run(feeds)
        for row, i in enumerate(idx):
            out[i] = result[row]
        start = end
    return out


class OnnxModel:
    """An exported graph and its tokenizer.json. Inputs are fed by name: `input_ids`, `attention_mask`,
    `token_type_ids`, or ML Commons' sparse names `input1.input_ids` / `input1.attention_mask`."""

    def __init__(
        self, onnx_path: Path, tokenizer_path: Path, threads: int | None = None, shape: ModelShape | None = None
    ):
        self.session = onnx_session(onnx_path, threads)
        self.shape = shape  # known: batches sized to the memory budget
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))

    def run(self, items: list, batch_size: int | None = None) -> list[np.ndarray]:
        """One output row per text (or (query, document) pair), in input order; batches of at most `batch_size`
        (None: sized from the model's shape and the memory available)."""
        encodings = self.tokenizer.encode_batch(items)

        def run_batch(feeds: dict[str, np.ndarray]) -> np.ndarray:
            named = {name: feeds[name.rsplit(".", 1)[-1]] for name in self.input_names}
            return self.session.run(None, named)[0]

        return run_padded(encodings, batch_size, run_batch, self.shape)
