"""Export SPLADE-style sparse encoders to the TorchScript / ONNX form ML Commons serves as SPARSE_ENCODING."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

from opensearch_kit import hf_export
from opensearch_kit.artifact import Export, default_name, parity_failure, save_tokenizer, write_export
from opensearch_kit.errors import KitError
from opensearch_kit.hf_export import check_options, load_tokenizer, make_scriptable_names, require_trust

# The names ml-commons' translator gives the two input arrays (DJL matches ONNX inputs by name).
ONNX_INPUTS = ("input1.input_ids", "input1.attention_mask")


@dataclass
class LoadedSparse:
    """A sparse encoder ready to wrap: the backbone, its tokenizer, and how its output becomes a vector."""

    model: torch.nn.Module
    tokenizer: object
    custom_head: bool  # True: model(...)[0] is already the pooled [batch, vocab] vector (remote-code models)
    max_length: int
    vocab_size: int


def load_sparse(model_path: str, trust_remote_code: bool = False, max_length: int | None = None) -> LoadedSparse:
    """Load a plain MaskedLM SPLADE or a custom-code sparse model from a local path or hub id."""
    config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(model_path)
    require_trust(model_path, config, trust_remote_code)
    custom = "AutoModel" in (getattr(config, "auto_map", None) or {})
    kwargs = {"attn_implementation": "eager", "trust_remote_code": trust_remote_code}
    try:
        model = (AutoModel if custom else AutoModelForMaskedLM).from_pretrained(model_path, **kwargs)
    except ValueError as e:
        raise KitError(
            f"{model_path} is not a masked-LM sparse encoder: {e}",
            "export sparse needs a *ForMaskedLM SPLADE model or a custom sparse model",
        ) from e
    model.eval()
    make_scriptable_names(model)
    limit = hf_export.truncation_length(config, tokenizer, max_length)
    vocab = _probe_vocab(model, tokenizer, custom)
    return LoadedSparse(model, tokenizer, custom, limit, vocab)


def _probe_vocab(model: torch.nn.Module, tokenizer, custom: bool) -> int:
    enc = tokenizer(["probe"], return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])[0]
    want = 2 if custom else 3
    if out.dim() != want:
        raise KitError(
            f"model output has shape {tuple(out.shape)}; expected a {want}-D sparse output",
            "this does not look like a SPLADE-style sparse encoder",
        )
    return int(out.shape[-1])


def dotted_token_ids(tokenizer, vocab_size: int) -> list[int]:
    """Ids whose decoded token contains a dot. neural-search 3.x unflattens dotted keys of the sparse_encoding
    processor's output ("a.b" becomes {"a": {"b": w}}, "." is refused), so such tokens cannot be indexed."""
    return [i for i in range(vocab_size) if "." in tokenizer.decode([i], skip_special_tokens=True)]


class SparseEncoderModule(torch.nn.Module):
    """What ML Commons runs: SPLADE activation log(1+relu(logits)) max-pooled over unmasked tokens,
    special tokens and unindexable tokens zeroed, optional pruning of weights below `prune_ratio` x the text's
    largest weight."""

    def __init__(self, loaded: LoadedSparse, prune_ratio: float = 0.0):
        super().__init__()
        self.backbone = loaded.model
        self.custom_head = loaded.custom_head
        keep = torch.ones(loaded.vocab_size)
        keep[[i for i in loaded.tokenizer.all_special_ids if i < loaded.vocab_size]] = 0
        keep[dotted_token_ids(loaded.tokenizer, loaded.vocab_size)] = 0
        self.register_buffer("keep", keep)
        self.prune_ratio = float(prune_ratio)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)[0]
        if self.custom_head:
            values = out.float()
        else:
            # log1p(relu(.)) is monotonic, so pooling the masked logits first gives the same weights as
            # pooling the activations, with B x V instead of B x L x V activation work.
            logits = out.float().masked_fill(attention_mask.unsqueeze(-1) == 0, -1e4)
            values = torch.log1p(torch.relu(logits.max(dim=1).values))
        values = values * self.keep
        if self.prune_ratio > 0:
            threshold = values.max(dim=-1, keepdim=True).values * self.prune_ratio
            values = values * (values > threshold)
        return values


class TorchScriptSparse(torch.nn.Module):
    """Dict in, dict out: the calling convention of ml-commons' SparseEncodingTranslator for TorchScript."""

    def __init__(self, encoder: SparseEncoderModule):
        super().__init__()
        self.encoder = encoder

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"output": self.encoder.encode(inputs["input_ids"], inputs["attention_mask"])}


class OnnxSparse(torch.nn.Module):
    """Two named tensor inputs, one [batch, vocab] output."""

    def __init__(self, encoder: SparseEncoderModule):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder.encode(input_ids, attention_mask)


def example_inputs(tokenizer, max_length: int) -> dict[str, torch.Tensor]:
    """A padded batch of two texts of different lengths, to trace with."""
    texts = ["a short query", "a longer passage about sparse retrieval " * 4]
    enc = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt", return_token_type_ids=False
    )
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def write_torchscript(encoder: SparseEncoderModule, inputs: dict[str, torch.Tensor], path: Path) -> None:
    hf_export.write_torchscript(TorchScriptSparse(encoder), (inputs,), path)


def write_onnx(encoder: SparseEncoderModule, inputs: dict[str, torch.Tensor], path: Path) -> None:
    args = (inputs["input_ids"], inputs["attention_mask"])
    hf_export.write_onnx(OnnxSparse(encoder), args, path, list(ONNX_INPUTS), ["output"])


def export_sparse(
    model_path: str,
    fmt: str,
    out_dir: Path,
    name: str | None = None,
    prune_ratio: float = 0.0,
    quantize: str | None = None,
    trust_remote_code: bool = False,
    max_length: int | None = None,
    tolerance: float = 1e-4,
) -> Export:
    """Export, zip, write the register body and check parity; a KitError with the figures when parity fails."""
    from opensearch_kit.parity import SAMPLE_TEXTS

    check_options(fmt, quantize)
    name = name or default_name(model_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded = load_sparse(model_path, trust_remote_code, max_length)
    encoder = SparseEncoderModule(loaded, prune_ratio).eval()
    model_file = hf_export.model_file_path(out_dir, name, fmt)
    reference = reference_vectors(encoder, loaded, SAMPLE_TEXTS)
    inputs = example_inputs(loaded.tokenizer, loaded.max_length)
    (write_torchscript if fmt == "torchscript" else write_onnx)(encoder, inputs, model_file)
    tokenizer_file = out_dir / "tokenizer.json"
    save_tokenizer(loaded.tokenizer, loaded.max_length, tokenizer_file)
    runner = torchscript_runner(model_file, loaded) if fmt == "torchscript" else onnx_runner(model_file, tokenizer_file)
    parity = parity_runs(f"{fmt} fp32", reference, runner, SAMPLE_TEXTS, tolerance)
    report: dict = {
        "model": model_path,
        "format": fmt,
        "max_length": loaded.max_length,
        "prune_ratio": prune_ratio,
        "parity": parity.as_dict(),
        "reference": reference_weights(reference, tokenizer_file),
    }
    if not parity.ok:
        raise parity_failure(out_dir, name, report, parity.summary())
    model_files = [model_file]
    if quantize == "int8":
        from opensearch_kit.quantize import int8_in_place, sparse_quality

        model_files = int8_in_place(model_file)
        report["int8_quality"] = sparse_quality(reference, onnx_runner(model_file, tokenizer_file)(SAMPLE_TEXTS, 1))
    description = f"SPLADE sparse encoder exported by opensearch-kit from {model_path}"
    return write_export(out_dir, name, model_files, tokenizer_file, fmt, "SPARSE_ENCODING", description, report)


def reference_vectors(encoder: SparseEncoderModule, loaded: LoadedSparse, texts: list[str]):
    """The original model, eager PyTorch, one text at a time (no padding): the figures exports must match."""
    import numpy as np

    rows = []
    for text in texts:
        enc = loaded.tokenizer(
            [text], truncation=True, max_length=loaded.max_length, return_tensors="pt", return_token_type_ids=False
        )
        with torch.no_grad():
            rows.append(encoder.encode(enc["input_ids"], enc["attention_mask"])[0].numpy())
    return np.stack(rows)


def reference_weights(reference, tokenizer_file: Path) -> dict:
    """The original model's {token: weight} for each sample text, kept for the in-cluster check at deploy."""
    from tokenizers import Tokenizer

    from opensearch_kit.parity import SAMPLE_TEXTS
    from opensearch_kit.sparse_encoder import decoded_vocab, token_weights

    vocab = decoded_vocab(Tokenizer.from_file(str(tokenizer_file)))
    return {"texts": SAMPLE_TEXTS, "weights": [token_weights(vocab, row) for row in reference]}


def torchscript_runner(model_file: Path, loaded: LoadedSparse):
    """run(texts, batch_size) -> [n, vocab] through the saved TorchScript module, as the server calls it."""
    module = torch.jit.load(str(model_file))

    def run(texts: list[str], batch_size: int):
        import numpy as np

        rows = []
        for start in range(0, len(texts), batch_size):
            enc = loaded.tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=loaded.max_length,
                return_tensors="pt",
                return_token_type_ids=False,
            )
            with torch.no_grad():
                out = module({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})["output"]
            rows.extend(out.numpy())
        return np.stack(rows)

    return run


def onnx_runner(model_file: Path, tokenizer_file: Path):
    """run(texts, batch_size) -> [n, vocab] through our onnxruntime encoder."""
    from opensearch_kit.sparse_encoder import SparseEncoder

    encoder = SparseEncoder(model_file, tokenizer_file)
    return lambda texts, batch_size: encoder.vectors(texts, batch_size)


def parity_runs(name: str, reference, runner, texts: list[str], tolerance: float):
    from opensearch_kit.parity import batch_runs, compare_sparse

    return compare_sparse(name, reference, batch_runs(runner, texts), tolerance)
