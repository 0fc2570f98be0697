"""The SPLADE head in vocabulary blocks: the MLM decoder's logits and their max over the sequence, one block of
the vocabulary at a time, so no [batch, length, vocab] tensor exists in the exported graph.

The backbone keeps its MLM transform (dense, activation, norm) and loses only its output projection (the
`get_output_embeddings()` Linear, replaced by Identity): it returns [batch, length, hidden] states, and
`BlockedMax` projects them block by block. Padding positions are filled with the text's first unmasked state
before projecting, a duplicate that cannot change a max, so the blocks need no masking of their own.
"""

from __future__ import annotations

import torch

# A block of 256 vocabulary columns keeps the per-block logits at 1 KiB per token (8 MiB at 32 x 256 tokens);
# at most 256 blocks, so large vocabularies (250k) get wider blocks and the unrolled graph stays small.
BLOCK_WIDTH = 256
MAX_BLOCKS = 256


def vocab_blocks(vocab_size: int, width: int = BLOCK_WIDTH, max_blocks: int = MAX_BLOCKS) -> list[tuple[int, int]]:
    """[start, end) column ranges covering the vocabulary: `width` wide (a multiple of it when more than
    `max_blocks` would be needed), the last one shorter."""
    blocks_needed = -(-vocab_size // width)
    if blocks_needed > max_blocks:
        width *= -(-blocks_needed // max_blocks)
    return [(start, min(start + width, vocab_size)) for start in range(0, vocab_size, width)]


def first_unmasked_fill(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """`hidden` [batch, length, dim] with each padding position replaced by the text's first unmasked state."""
    # float: ML Commons' ONNX Runtime 1.16 has no int64 ArgMax (both return the first maximum).
    first = attention_mask.float().argmax(dim=1).view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])
    fill = hidden.gather(1, first)
    return torch.where(attention_mask.unsqueeze(-1) != 0, hidden, fill)


class BlockedMax(torch.nn.Module):
    """max over unmasked positions of `hidden @ weight.T + bias`, as float32 [batch, vocab]: in blocks of the
    vocabulary (`forward`), or in one [batch, length, vocab] product (`full`, the reference).

    `reuse_buffer` (for TorchScript): every block is written into one preallocated buffer (`out=`), because
    libtorch keeps the memory of the unrolled blocks' separate results (32 x 512 tokens, tiny SPLADE: 2.6 GB
    peak RSS with separate results, 1.0 GB with one buffer); ONNX cannot express `out=`, and ONNX Runtime
    reuses its buffers by itself."""

    def __init__(self, decoder: torch.nn.Linear):
        super().__init__()
        self.weight = decoder.weight
        self.bias = decoder.bias
        self.blocks = vocab_blocks(int(decoder.weight.shape[0]))
        self.block_width = self.blocks[0][1] - self.blocks[0][0]
        self.reuse_buffer = False

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        filled = first_unmasked_fill(hidden, attention_mask)
        if self.reuse_buffer:
            return self._into_buffer(filled)
        maxima = []
        for start, end in self.blocks:
            bias = None if self.bias is None else self.bias[start:end]
            logits = torch.nn.functional.linear(filled, self.weight[start:end], bias)
            maxima.append(logits.float().amax(dim=1))
        return torch.cat(maxima, dim=1)

    def _into_buffer(self, filled: torch.Tensor) -> torch.Tensor:
        batch, length, dim = filled.shape
        rows = filled.reshape(-1, dim)
        buffer = torch.empty(rows.shape[0], self.block_width, dtype=rows.dtype)
        maxima = []
        for start, end in self.blocks:
            width = end - start
            out = buffer if width == self.block_width else torch.empty(rows.shape[0], width, dtype=rows.dtype)
            torch.mm(rows, self.weight[start:end].t(), out=out)
            if self.bias is not None:
                out.add_(self.bias[start:end])
            maxima.append(out.view(batch, length, width).float().amax(dim=1))
        return torch.cat(maxima, dim=1)

    def full(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = torch.nn.functional.linear(hidden, self.weight, self.bias).float()
        return logits.masked_fill(attention_mask.unsqueeze(-1) == 0, -1e4).max(dim=1).values


def detach_decoder(model: torch.nn.Module, probe: dict[str, torch.Tensor]) -> BlockedMax | None:
    """Replace the model's output projection by Identity and return it as a `BlockedMax`, when the projection is
    a plain Linear that the model applies last (checked on `probe`: {input_ids, attention_mask}, the logits must
    come out the same); otherwise None, with the model unchanged."""
    get = getattr(model, "get_output_embeddings", None)
    decoder = get() if get else None
    if not isinstance(decoder, torch.nn.Linear):
        return None
    place = next(
        ((parent, name) for parent in model.modules() for name, child in parent.named_children() if child is decoder),
        None,
    )
    if place is None:
        return None
    with torch.no_grad():
        logits = model(**probe)[0].float()
        setattr(*place, torch.nn.Identity())
        hidden = model(**probe)[0]
        head = BlockedMax(decoder)
        same = hidden.shape[-1] == decoder.in_features and torch.allclose(
            torch.nn.functional.linear(hidden, head.weight, head.bias).float(), logits, atol=1e-5, rtol=0
        )
    if not same:
        setattr(*place, decoder)
        return None
    return head
