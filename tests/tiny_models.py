"""Small models the tests build themselves (no hub access)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors

WORDS = ["hello", "world", "search", "sparse", "vector", "한국어", "검색", "모델"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]


def word_tokenizer() -> Tokenizer:
    """A whitespace word-level tokenizer with BERT-style special tokens."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    tok.add_special_tokens(SPECIALS)
    return tok


class TinySparse(torch.nn.Module):
    """SPLADE-shaped: log(1+relu(logits)) max-pooled over unmasked positions, special tokens zeroed."""

    def __init__(self, vocab: int, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.logits = torch.nn.Parameter(torch.randn(vocab, vocab, generator=gen))
        self.special = len(SPECIALS)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        scores = self.logits[inputs["input_ids"]] * inputs["attention_mask"].unsqueeze(-1)
        values = torch.log1p(torch.relu(scores.max(dim=1).values))
        values[:, : self.special] = 0
        return {"output": values}


def tiny_sparse_zip(out_dir: Path) -> tuple[Path, TinySparse, Tokenizer]:
    """A TorchScript SPARSE_ENCODING zip (model.pt + tokenizer.json), the module and its tokenizer."""
    tok = word_tokenizer()
    model = TinySparse(tok.get_vocab_size()).eval()
    scripted = torch.jit.script(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    pt, tj = out_dir / "tiny-sparse.pt", out_dir / "tokenizer.json"
    scripted.save(str(pt))
    tok.save(str(tj))
    path = out_dir / "tiny-sparse.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(pt, pt.name)
        zf.write(tj, tj.name)
    return path, model, tok
