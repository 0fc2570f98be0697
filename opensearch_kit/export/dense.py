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

from opensearch_kit.errors import KitError
from opensearch_kit.export.load import (
    from_pretrained,
    load_config,
    load_tokenizer,
    model_files_dir,
    require_trust,
    truncation_length,
)
from opensearch_kit.export.pipeline import Exporter, Runner, torchscript_runner
from opensearch_kit.verify.compare import compare_vectors, dense_quality
from opensearch_kit.verify.samples import SAMPLE_TEXTS

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
# int8: each layer's dynamic quantization rounds where the kernels differ, and depth adds it up. The 1.7B seed
# shape's int8 graph (28 layers) gave min cosine 0.9931 on the cluster, and 0.9942-0.9953 on the same local
# runtime with its graph optimizations lowered; int8 itself is 0.977 from fp32 there.
CLUSTER_MIN_COSINE = {"fp32": MIN_COSINE, "fp16": 0.9995, "int8": 0.99}


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

    def __init__(self, backbone: torch.nn.Module, spec: DenseSpec):
        super().__init__()
        self.backbone = backbone
        self.pooling = spec.pooling
        self.normalize = spec.normalize

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


def space_type(spec: DenseSpec) -> str:
    """The k-NN space the embeddings are meant for: cosine for normalised vectors, else the model's similarity."""
    return "cosinesimil" if spec.normalize else SPACE_TYPES.get(spec.similarity, "cosinesimil")


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


class DenseExporter(Exporter):
    kind = "dense"

    def load(self, meta: bool = False) -> None:
        from transformers import AutoModel

        o = self.options
        st_spec = sentence_transformers_spec(model_files_dir(self.source))
        subfolder = st_spec.transformer_dir if st_spec else ""
        config = load_config(self.source, o.trust_remote_code, subfolder)
        self.spec = resolve_spec(self.source, st_spec, config, o.pooling, o.normalize, o.query_prompt)
        self.tokenizer = load_tokenizer(self.source, o.trust_remote_code, subfolder)
        require_trust(self.source, config, o.trust_remote_code)
        self.model = from_pretrained(
            AutoModel, self.source, config, meta=meta, subfolder=subfolder, trust_remote_code=o.trust_remote_code
        )
        self.max_length = truncation_length(config, self.tokenizer, o.max_length, self.spec.max_length)
        self.dimension = int(getattr(config, "hidden_size", 0) or self.model.get_input_embeddings().embedding_dim)
        self.model_type = config.model_type
        self.description = f"dense embedder ({self.spec.pooling} pooling)"

    @property
    def token_types(self) -> bool:
        """Whether the server's ONNX translator sends token_type_ids for this model type."""
        return self.model_type in TOKEN_TYPE_MODELS

    def module(self) -> DenseEncoderModule:
        return DenseEncoderModule(self.model, self.spec)

    def samples(self) -> list[str]:
        return [(self.spec.passage_prompt or "") + t for t in SAMPLE_TEXTS]

    def reference(self, module: DenseEncoderModule, items: list[str]) -> np.ndarray:
        rows = []
        for text in items:
            enc = self.tokenizer([text], truncation=True, max_length=self.max_length, return_tensors="pt")
            with torch.no_grad():
                rows.append(module.encode(enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"))[0])
        return torch.stack(rows).numpy()

    def graph(self, fmt: str, module: DenseEncoderModule):
        inputs = example_inputs(self.tokenizer, self.max_length)
        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if self.token_types else [])
        if fmt == "torchscript":  # what SentenceTransformerTextEmbeddingTranslator sends (no token_type_ids)
            server = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
            return TorchScriptDense(module), (server,), [], ["sentence_embedding"]
        return OnnxDense(module), tuple(inputs[n] for n in names), names, ["sentence_embedding"]

    def runner(self, fmt: str, model_file: Path, tokenizer_file: Path) -> Runner:
        if fmt == "onnx":
            from opensearch_kit.runtime.dense import DenseEncoder

            encoder = DenseEncoder(model_file, tokenizer_file)
            return lambda texts, batch_size: encoder.embed(texts, batch_size)
        return torchscript_runner(model_file, tokenizer_file, lambda m, f: m(f)["sentence_embedding"])

    def compare(self, name: str, reference: np.ndarray, runs: dict[int, np.ndarray], tolerance: float | None = None):
        if tolerance is None:
            tolerance = 1 - MIN_COSINE if self.options.tolerance is None else self.options.tolerance
        return compare_vectors(name, reference, runs, 1 - tolerance)

    def quality(self, reference: np.ndarray, reduced: np.ndarray) -> dict:
        return dense_quality(reference, reduced)

    def expected(self, items: list[str], outputs: np.ndarray, run: Runner) -> dict:
        """Passage vectors of the sample texts and, for a model with a query prompt, their query vectors."""
        queries = [self.spec.query_prompt + t for t in SAMPLE_TEXTS] if self.spec.query_prompt else []
        return {
            "texts": list(SAMPLE_TEXTS),
            "passage_vectors": outputs.tolist(),
            "query_vectors": np.asarray(run(queries, 1)).tolist() if queries else [],
        }

    def cluster_bounds(self, variant: str) -> dict:
        return {"min_cosine": CLUSTER_MIN_COSINE[variant]}

    def details(self) -> dict:
        return {
            "dimension": self.dimension,
            "pooling": self.spec.pooling,
            "normalize": self.spec.normalize,
            "query_prompt": self.spec.query_prompt,
            "passage_prompt": self.spec.passage_prompt,
            "space_type": space_type(self.spec),
        }

    def model_config(self) -> dict:
        """TEXT_EMBEDDING model_config: the graph pools and normalises, the server takes its output as is."""
        config = {
            "model_type": self.model_type,
            "embedding_dimension": self.dimension,
            "framework_type": "sentence_transformers",
            "pooling_mode": "none",
            "normalize_result": False,
            "model_max_length": self.max_length,
            "additional_config": {"space_type": space_type(self.spec)},
        }
        if self.spec.query_prompt:
            config["query_prefix"] = self.spec.query_prompt
        if self.spec.passage_prompt:
            config["passage_prefix"] = self.spec.passage_prompt
        return config

    def notes(self) -> list[str]:
        notes = [
            f"{self.dimension} dims, {self.spec.pooling} pooling, "
            f"{'normalised' if self.spec.normalize else 'not normalised'}, space_type {space_type(self.spec)}"
        ]
        if self.spec.query_prompt or self.spec.passage_prompt:
            notes.append(
                "prompted model: ML Commons prepends query_prefix / passage_prefix and needs "
                '"parameters": {"content_type": "query" | "passage"} on every _predict (neural queries and the '
                "text_embedding processor send it)"
            )
        return notes
