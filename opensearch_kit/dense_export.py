"""Export dense embedders (sentence-transformers, plain encoders, Qwen3-style decoders) to the TorchScript / ONNX
form ML Commons serves as TEXT_EMBEDDING, with pooling and normalisation baked into the graph.

The contract, verified against ML Commons 3.6: `framework_type: sentence_transformers` with `pooling_mode: none`
and `normalize_result: false`. TorchScript receives a dict {input_ids, attention_mask} and returns a dict holding
`sentence_embedding`; ONNX receives `input_ids`, `attention_mask` (plus `token_type_ids` for model types bert and
albert) and its single output is taken as the embedding. The server embeds one text per call (no padding); the
graph pools correctly under padding too, for local batched use. A query prompt becomes `query_prefix`: the server
prepends it when a predict call says `"parameters": {"content_type": "query"}` (neural queries do).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from opensearch_kit.artifact import Export, default_name, parity_failure, read_report, save_tokenizer, write_export
from opensearch_kit.errors import KitError
from opensearch_kit.hf_export import (
    check_options,
    check_size,
    load_tokenizer,
    make_scriptable_names,
    model_file_path,
    model_files_dir,
    require_trust,
    truncation_length,
    write_graph,
    write_reduced,
)
from opensearch_kit.quantize import dense_quality

POOLINGS = ("mean", "cls", "max", "mean-sqrt-len", "weighted-mean", "last-token")
# sentence-transformers' Pooling config keys -> our pooling names.
ST_POOLING = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean-sqrt-len",
    "pooling_mode_weightedmean_tokens": "weighted-mean",
    "pooling_mode_lasttoken": "last-token",
}
# sentence-transformers' similarity_fn_name -> k-NN space_type.
SPACE_TYPES = {"cosine": "cosinesimil", "dot": "innerproduct", "euclidean": "l2", "manhattan": "l1"}
# ml-commons' ONNX text-embedding translator sends token_type_ids only for these model types.
TOKEN_TYPE_MODELS = ("bert", "albert")
MIN_COSINE = 0.9999
# The cluster runs fp16 / int8 graphs with other kernels (libtorch 2.5.1, ONNX Runtime 1.16) than the local
# runtimes that recorded the expected output: these bounds hold the cluster to the precision of the export.
CLUSTER_MIN_COSINE = {"fp32": MIN_COSINE, "fp16": 0.9995, "int8": 0.995}


@dataclass
class DenseSpec:
    """How token outputs become the embedding, and the prompts that go before queries / passages."""

    pooling: str
    normalize: bool
    query_prompt: str | None = None
    passage_prompt: str | None = None
    similarity: str = "cosine"
    max_length: int | None = None
    transformer_dir: str = ""  # the sentence-transformers Transformer module's folder, "" for the root


def sentence_transformers_spec(model_dir: Path) -> DenseSpec | None:
    """Pooling, normalisation, prompts and similarity from a sentence-transformers folder; None when it is not one."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        return None
    modules = json.loads(modules_file.read_text())
    types = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if any("sparse" in m["type"].lower() or "Splade" in m["type"] or "MLMTransformer" in m["type"] for m in modules):
        raise KitError(f"{model_dir} is a sentence-transformers sparse encoder", "use `opensearch-kit export sparse`")
    unsupported = [t for t in types if t not in ("Transformer", "Pooling", "Normalize")]
    if unsupported or "Pooling" not in types:
        raise KitError(
            f"{model_dir} has sentence-transformers modules {types}; export dense supports Transformer, Pooling "
            "and Normalize",
            "export a model without extra modules (e.g. Dense layers), or pass --pooling to use only the encoder",
        )
    by_type = {m["type"].rsplit(".", 1)[-1]: m for m in modules}
    pooling_cfg = json.loads((model_dir / by_type["Pooling"]["path"] / "config.json").read_text())
    modes = [ST_POOLING[k] for k, v in pooling_cfg.items() if k in ST_POOLING and v]
    if len(modes) != 1:
        raise KitError(f"{model_dir} pools with {modes or 'no mode'}", "pass one --pooling mode")
    if pooling_cfg.get("include_prompt") is False:
        raise KitError(f"{model_dir} excludes prompt tokens from pooling", "this pooling is not supported")
    transformer_dir = by_type.get("Transformer", {}).get("path", "")
    st_config = _read_json(model_dir / "config_sentence_transformers.json")
    bert_config = _read_json(model_dir / transformer_dir / "sentence_bert_config.json")
    prompts = st_config.get("prompts") or {}
    return DenseSpec(
        pooling=modes[0],
        normalize="Normalize" in types,
        query_prompt=prompts.get("query") or None,
        passage_prompt=prompts.get("document") or prompts.get("passage") or None,
        similarity=st_config.get("similarity_fn_name") or "cosine",
        max_length=bert_config.get("max_seq_length"),
        transformer_dir=transformer_dir,
    )


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def resolve_spec(
    model_path: str,
    spec: DenseSpec | None,
    config,
    pooling: str | None,
    normalize: bool | None,
    query_prompt: str | None,
) -> DenseSpec:
    """The sentence-transformers settings (`spec`), overridden by the user's; a KitError when pooling is
    unknowable."""
    if spec is None:
        if pooling is None:
            architectures = getattr(config, "architectures", None) or []
            if any(a.endswith("ForMaskedLM") for a in architectures):
                raise KitError(
                    f"{model_path} is a masked-LM ({', '.join(architectures)}) with no sentence-transformers "
                    "pooling: it looks like a SPLADE-style sparse model",
                    "use `opensearch-kit export sparse`, or pass --pooling if it really is a dense encoder",
                )
            raise KitError(
                f"{model_path} says nothing about how to pool token outputs (no sentence-transformers modules.json)",
                f"pass --pooling ({' | '.join(POOLINGS)}); decoder embedders such as Qwen3-Embedding use last-token",
            )
        spec = DenseSpec(pooling=pooling, normalize=bool(normalize))
    if pooling is not None:
        spec.pooling = pooling
    if normalize is not None:
        spec.normalize = normalize
    if query_prompt is not None:
        spec.query_prompt = query_prompt or None
    if spec.pooling not in POOLINGS:
        raise KitError(f"unknown pooling {spec.pooling!r}", f"use one of {', '.join(POOLINGS)}")
    return spec


@dataclass
class LoadedDense:
    """An embedder ready to wrap: the backbone, its tokenizer and spec, and what the server needs to know."""

    model: torch.nn.Module
    tokenizer: object
    spec: DenseSpec
    max_length: int
    model_type: str
    dimension: int

    @property
    def token_types(self) -> bool:
        """Whether the server's ONNX translator sends token_type_ids for this model type."""
        return self.model_type in TOKEN_TYPE_MODELS


def load_dense(
    model_path: str,
    pooling: str | None = None,
    normalize: bool | None = None,
    query_prompt: str | None = None,
    trust_remote_code: bool = False,
    max_length: int | None = None,
    device: str | None = None,
) -> LoadedDense:
    """Load the encoder (fp32, eager attention) and settle pooling / normalisation / prompts.

    `device="meta"` builds the architecture without weights (to size it before a long export)."""
    from transformers import AutoConfig, AutoModel

    st_spec = sentence_transformers_spec(model_files_dir(model_path))
    subfolder = st_spec.transformer_dir if st_spec else ""
    config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code, subfolder=subfolder)
    spec = resolve_spec(model_path, st_spec, config, pooling, normalize, query_prompt)
    tokenizer = load_tokenizer(model_path, trust_remote_code, subfolder)
    require_trust(model_path, config, trust_remote_code)
    kwargs = {"attn_implementation": "eager", "trust_remote_code": trust_remote_code, "dtype": torch.float32}
    if device == "meta":
        with torch.device("meta"):
            model = AutoModel.from_config(config, **kwargs)
    else:
        model = AutoModel.from_pretrained(model_path, subfolder=subfolder, **kwargs)
    model.eval()
    model.config.use_cache = False
    make_scriptable_names(model)
    limit = truncation_length(config, tokenizer, max_length, spec.max_length)
    dimension = int(getattr(config, "hidden_size", 0) or model.get_input_embeddings().embedding_dim)
    return LoadedDense(model, tokenizer, spec, limit, config.model_type, dimension)


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """[batch, seq, dim] token outputs -> [batch, dim], ignoring padded positions (left or right padding)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return hidden.masked_fill(m == 0, -1e9).max(dim=1).values
    if mode == "last-token":
        positions = torch.ones_like(mask).cumsum(dim=1) * mask  # 1..seq on real tokens, 0 on padding
        # the last real token, wherever the padding is (ArgMax on float: ONNX Runtime 1.16 has no int64 ArgMax)
        last = positions.float().argmax(dim=1)
        return hidden.gather(1, last.view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])).squeeze(1)
    if mode == "weighted-mean":
        m = m * torch.ones_like(mask).cumsum(dim=1).unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * m).sum(dim=1)
    counts = m.sum(dim=1).clamp(min=1e-9)
    return summed / (counts.sqrt() if mode == "mean-sqrt-len" else counts)


class DenseEncoderModule(torch.nn.Module):
    """Backbone, pooling and optional L2 normalisation: one [batch, dim] float32 embedding per text."""

    def __init__(self, loaded: LoadedDense):
        super().__init__()
        self.backbone = loaded.model
        self.pooling = loaded.spec.pooling
        self.normalize = loaded.spec.normalize

    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra)[0]
        embedding = pool(hidden.float(), attention_mask, self.pooling)
        if self.normalize:
            embedding = torch.nn.functional.normalize(embedding, p=2.0, dim=-1)
        return embedding


class TorchScriptDense(torch.nn.Module):
    """Dict in, dict out: ml-commons' SentenceTransformerTextEmbeddingTranslator calling convention."""

    def __init__(self, encoder: DenseEncoderModule):
        super().__init__()
        self.encoder = encoder

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"sentence_embedding": self.encoder.encode(inputs["input_ids"], inputs["attention_mask"])}


class OnnxDense(torch.nn.Module):
    """Named tensor inputs (token_type_ids only for bert/albert), one [batch, dim] output."""

    def __init__(self, encoder: DenseEncoderModule):
        super().__init__()
        self.encoder = encoder

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.encoder.encode(input_ids, attention_mask, token_type_ids)


def example_inputs(tokenizer, max_length: int, pairs: bool = False) -> dict[str, torch.Tensor]:
    """A right-padded batch of two texts (or text pairs) of different lengths, to trace with."""
    texts = ["a short query", "a longer passage about dense retrieval " * 4]
    args = (texts, ["a document", "another, longer document " * 3]) if pairs else (texts,)
    enc = tokenizer(*args, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    ids = enc["input_ids"]
    types = enc.get("token_type_ids")
    return {
        "input_ids": ids,
        "attention_mask": enc["attention_mask"],
        "token_type_ids": types if types is not None else torch.zeros_like(ids),
    }


def export_dense(
    model_path: str,
    fmt: str,
    out_dir: Path,
    name: str | None = None,
    pooling: str | None = None,
    normalize: bool | None = None,
    query_prompt: str | None = None,
    quantize: str | None = None,
    trust_remote_code: bool = False,
    max_length: int | None = None,
    tolerance: float = 1 - MIN_COSINE,
    dtype: str = "fp32",
) -> Export:
    """Export, zip, write the register body (with model_config) and check parity against the eager original
    (cosine >= 1 - tolerance per text, at batch 1 and in one padded batch); a KitError with figures otherwise."""
    from opensearch_kit.parity import SAMPLE_TEXTS, batch_runs, compare_vectors

    check_options(fmt, quantize, dtype)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or default_name(model_path)
    skeleton = load_dense(model_path, pooling, normalize, query_prompt, trust_remote_code, max_length, "meta")
    estimated = check_size(DenseEncoderModule(skeleton), fmt, dtype, quantize)
    loaded = load_dense(model_path, pooling, normalize, query_prompt, trust_remote_code, max_length)
    encoder = DenseEncoderModule(loaded).eval()
    tokenizer_file = out_dir / "tokenizer.json"
    save_tokenizer(loaded.tokenizer, loaded.max_length, tokenizer_file)
    queries = [loaded.spec.query_prompt + t for t in SAMPLE_TEXTS] if loaded.spec.query_prompt else []
    passages = [(loaded.spec.passage_prompt or "") + t for t in SAMPLE_TEXTS]
    reference = reference_embeddings(encoder, loaded, passages)
    inputs = example_inputs(loaded.tokenizer, loaded.max_length)
    model_file = model_file_path(out_dir, name, fmt)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if loaded.token_types else [])
    if fmt == "torchscript":
        wrapper, args = TorchScriptDense(encoder), (_server_inputs(inputs),)
    else:
        wrapper, args = OnnxDense(encoder), tuple(inputs[n] for n in names)
    model_files = write_graph(fmt, wrapper, args, model_file, names, ["sentence_embedding"])
    runner = _runner(fmt, model_file, tokenizer_file)
    parity = compare_vectors(f"{fmt} fp32", reference, batch_runs(runner, passages), 1 - tolerance)
    report: dict = {
        "kind": "dense",
        "model": model_path,
        "format": fmt,
        "dtype": dtype,
        "quantize": quantize,
        "model_file": model_file.name,
        "dimension": loaded.dimension,
        "pooling": loaded.spec.pooling,
        "normalize": loaded.spec.normalize,
        "query_prompt": loaded.spec.query_prompt,
        "passage_prompt": loaded.spec.passage_prompt,
        "space_type": space_type(loaded.spec),
        "max_length": loaded.max_length,
        "estimated_model_bytes": estimated,
        "parity": parity.as_dict(),
    }
    if not parity.ok:
        raise parity_failure(out_dir, name, report, parity.summary())
    variant = quantize or dtype
    if variant != "fp32":
        model_files = write_reduced(fmt, quantize, wrapper, args, model_file)
        runner = _runner(fmt, model_file, tokenizer_file)
    passage_vectors = np.asarray(runner(passages, 1))
    if variant != "fp32":
        report["reduced_quality"] = {"name": f"{fmt} {variant}", **dense_quality(reference, passage_vectors)}
    report["cluster_min_cosine"] = CLUSTER_MIN_COSINE[variant]
    report["expected"] = {
        "texts": SAMPLE_TEXTS,
        "passage_vectors": passage_vectors.tolist(),
        "query_vectors": np.asarray(runner(queries, 1)).tolist() if queries else [],
    }
    description = f"dense embedder ({loaded.spec.pooling} pooling) exported by opensearch-kit from {model_path}"
    return write_export(
        out_dir,
        name,
        model_files,
        tokenizer_file,
        fmt,
        "TEXT_EMBEDDING",
        description,
        report,
        model_config(loaded),
    )


def _server_inputs(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What SentenceTransformerTextEmbeddingTranslator sends (no token_type_ids)."""
    return {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}


def space_type(spec: DenseSpec) -> str:
    """The k-NN space the embeddings are meant for: cosine for normalised vectors, else the model's similarity."""
    return "cosinesimil" if spec.normalize else SPACE_TYPES.get(spec.similarity, "cosinesimil")


def model_config(loaded: LoadedDense) -> dict:
    """TEXT_EMBEDDING model_config: the graph pools and normalises, the server takes its output as is."""
    config = {
        "model_type": loaded.model_type,
        "embedding_dimension": loaded.dimension,
        "framework_type": "sentence_transformers",
        "pooling_mode": "none",
        "normalize_result": False,
        "model_max_length": loaded.max_length,
        "additional_config": {"space_type": space_type(loaded.spec)},
    }
    if loaded.spec.query_prompt:
        config["query_prefix"] = loaded.spec.query_prompt
    if loaded.spec.passage_prompt:
        config["passage_prefix"] = loaded.spec.passage_prompt
    return config


def reference_embeddings(encoder: DenseEncoderModule, loaded: LoadedDense, texts: list[str]) -> np.ndarray:
    """The original model, eager PyTorch, one text at a time (no padding): the figures exports must match."""
    rows = []
    for text in texts:
        enc = loaded.tokenizer([text], truncation=True, max_length=loaded.max_length, return_tensors="pt")
        with torch.no_grad():
            rows.append(encoder.encode(enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"))[0])
    return torch.stack(rows).numpy()


def _runner(fmt: str, model_file: Path, tokenizer_file: Path):
    """run(texts, batch_size) -> [n, dim] through the saved model, fed as the server feeds it."""
    if fmt == "onnx":
        from opensearch_kit.dense_encoder import DenseEncoder

        encoder = DenseEncoder(model_file, tokenizer_file)
        return lambda texts, batch_size: encoder.embed(texts, batch_size)
    return torchscript_runner(model_file, tokenizer_file, lambda m, f: m(f)["sentence_embedding"])


def torchscript_runner(model_file: Path, tokenizer_file: Path, call):
    """run(items, batch_size) -> [n, ...] through a saved TorchScript module; items are texts or (query, doc)
    pairs, tokenized with the exported tokenizer.json; `call(module, feeds)` runs one batch of torch tensors
    {input_ids, attention_mask, token_type_ids}."""
    from tokenizers import Tokenizer

    from opensearch_kit.sparse_encoder import run_padded

    module = torch.jit.load(str(model_file))
    tokenizer = Tokenizer.from_file(str(tokenizer_file))

    def run_batch(feeds: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return call(module, {k: torch.from_numpy(v) for k, v in feeds.items()}).float().numpy()

    def run(items: list, batch_size: int) -> np.ndarray:
        encodings = tokenizer.encode_batch(items)
        return np.stack(run_padded(encodings, batch_size, run_batch))

    return run


def check_dense_in_cluster(ml, model_id: str, export_dir: Path) -> dict:
    """Embed the export's sample passages (and queries, when the model has a query prompt) through the deployed
    model and compare with the exported model's local output recorded at export: cosine >= 0.9999 each (looser
    for fp16 / int8 exports, see CLUSTER_MIN_COSINE)."""
    from opensearch_kit.parity import cosines

    report = read_report(export_dir, "dense")
    expected = report["expected"]
    asymmetric = bool(report["query_prompt"] or report["passage_prompt"])  # the server adds the prompts itself
    got = cluster_embeddings(ml, model_id, expected["texts"], "passage" if asymmetric else None)
    want = expected["passage_vectors"]
    if expected["query_vectors"]:
        got += cluster_embeddings(ml, model_id, expected["texts"], "query")
        want = want + expected["query_vectors"]
    cos = cosines(np.asarray(want), np.asarray(got))
    required = report["cluster_min_cosine"]
    return {
        "texts": len(want),
        "queries": len(expected["query_vectors"]),
        "min_cosine": float(cos.min()),
        "max_abs_diff": float(np.abs(np.asarray(want) - np.asarray(got)).max()),
        "min_cosine_required": required,
        "ok": bool(cos.min() >= required),
    }


def cluster_embeddings(ml, model_id: str, texts: list[str], content_type: str | None = None) -> list[list[float]]:
    """sentence_embedding per text from a TEXT_EMBEDDING model's _predict (`content_type` query / passage for
    models registered with a prefix)."""
    body: dict = {"text_docs": texts, "return_number": True, "target_response": ["sentence_embedding"]}
    if content_type:
        body["parameters"] = {"content_type": content_type}
    results = ml.predict(model_id, body)["inference_results"]
    return [r["output"][0]["data"] for r in results]
