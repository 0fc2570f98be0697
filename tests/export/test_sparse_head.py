"""The blocked SPLADE head: the same weights as one [batch, length, vocab] product, in every architecture and
both formats, and no vocabulary-wide 3-D tensor left in the exported graph."""

from __future__ import annotations

import onnx
import pytest
import torch
from tiny_models import tiny_mlm

from opensearch_kit.export import export_model
from opensearch_kit.export.pipeline import ExportOptions
from opensearch_kit.export.sparse import SparseExporter
from opensearch_kit.export.sparse_head import MAX_BLOCKS, BlockedMax, vocab_blocks

pytestmark = pytest.mark.export

TEXTS = ["짧은 질의", "a longer passage about sparse retrieval and 한국어 검색 " * 3, "x", "neural sparse search"]


@pytest.mark.parametrize("vocab", [1, 255, 256, 30522, 250037])
def test_vocab_blocks_cover_the_vocabulary_in_order(vocab):
    blocks = vocab_blocks(vocab)
    assert blocks[0][0] == 0 and blocks[-1][1] == vocab and len(blocks) <= MAX_BLOCKS
    assert all(end == start for (_, end), (start, _) in zip(blocks, blocks[1:], strict=False))


@pytest.mark.parametrize("reuse_buffer", [False, True])
def test_blocked_max_ignores_padding_on_either_side(reuse_buffer):
    torch.manual_seed(0)
    head = BlockedMax(torch.nn.Linear(16, 1000))
    head.reuse_buffer = reuse_buffer
    hidden = torch.randn(3, 7, 16) * 4
    mask = torch.tensor([[1] * 7, [1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1]])  # right and left padding
    with torch.no_grad():
        assert torch.equal(head(hidden, mask), head.full(hidden, mask))


def loaded(model: str) -> SparseExporter:
    exporter = SparseExporter(model, ExportOptions())
    exporter.load()
    return exporter


@pytest.mark.parametrize("arch", ["bert", "xlm-roberta", "modernbert"])
def test_blocked_head_equals_full_product(arch, tmp_path):
    exporter = loaded(str(tiny_mlm(arch, tmp_path)))
    assert_blocked_equals_full(exporter)


def test_blocked_head_equals_full_product_on_the_real_splade(tiny_splade):
    assert_blocked_equals_full(loaded(tiny_splade))


def assert_blocked_equals_full(exporter: SparseExporter) -> None:
    module = exporter.module().eval()
    assert module.head is not None, "the MLM decoder should have been detached"
    enc = exporter.tokenizer(
        TEXTS, padding=True, truncation=True, max_length=exporter.max_length, return_tensors="pt",
        return_token_type_ids=False,
    )  # fmt: skip
    with torch.no_grad():
        full = module.encode(enc["input_ids"], enc["attention_mask"], full=True)
        for reuse_buffer in (False, True):  # the ONNX and the TorchScript form
            module.head.reuse_buffer = reuse_buffer
            blocked = module.encode(enc["input_ids"], enc["attention_mask"])
            assert (blocked > 0).sum() > 0
            assert (blocked - full).abs().max().item() <= 1e-5


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_blocked_graph_matches_the_full_reference(fmt, tmp_path):
    """The exporter's parity check compares the graph (blocked) with the full product (its reference)."""
    model = str(tiny_mlm("modernbert", tmp_path / "model"))
    export = export_model("sparse", model, tmp_path / fmt, format=fmt, name="blocked", tolerance=1e-5)
    report = export.report
    assert report["blocked_head"] and report["parity"]["ok"] and report["parity"]["max_abs_diff"] <= 1e-5
    assert report["head_block_width"] == vocab_blocks(report["vocab_size"])[0][1]
    assert report["shape"]["hidden_size"] > 0 and report["shape"]["vocab_size"] == report["vocab_size"]


def test_onnx_graph_holds_no_vocabulary_wide_logits(tiny_splade, tmp_path):
    """30,522 tokens in blocks of 256: no [batch, length, 30522] value, where the full product has several."""
    export = export_model("sparse", tiny_splade, tmp_path, format="onnx", name="blocked")
    vocab = export.report["vocab_size"]
    assert vocab > export.report["head_block_width"]
    assert vocab_wide_3d_values(export.model_file, vocab) == []


def vocab_wide_3d_values(path, vocab: int) -> list[str]:
    """Names of the graph's [*, *, vocab] values, after shape inference."""
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
    values = list(graph.value_info) + list(graph.output)
    return [
        v.name
        for v in values
        if len(v.type.tensor_type.shape.dim) == 3 and v.type.tensor_type.shape.dim[2].dim_value == vocab
    ]
