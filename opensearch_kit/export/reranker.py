"""Export rerankers to the TorchScript / ONNX form ML Commons serves as TEXT_SIMILARITY (the `rerank` search
processor's `ml_opensearch` model).

The server tokenizes each (query, document) as a pair with the zip's tokenizer.json, feeds `input_ids`,
`attention_mask` and `token_type_ids` (batch of one, no padding) and returns the graph's single output as the
score. Two kinds:

* cross-encoders (`*ForSequenceClassification`, one label): the score is the logit;
* LLM yes/no rerankers (Qwen3-Reranker, or any chat `*ForCausalLM` zero-shot): score = logit("yes") -
  logit("no") after the chat prompt (Qwen3-Reranker's for Qwen3, else the same turns in the model's own chat
  template: `yes_no_prompt`). The prompt is baked into tokenizer.json: a `Prepend(" ")` normalizer gives each
  side the space that follows `<Query>:` / `<Document>:`, and the post-processor wraps the pair as
  `[prompt up to "<Query>:"] query ["\\n<Document>:"] document [end of prompt]`, so the server's pair
  encoding yields the one-string prompt's token ids. One caveat: the two sides are pre-tokenized apart, so when a
  query ends in punctuation or whitespace, byte-level BPE may merge that end with the following newline inside
  the one-string prompt (e.g. "?\\n") but not in the pair encoding; such queries can score slightly differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from opensearch_kit.errors import KitError
from opensearch_kit.export.dense import example_inputs, pool
from opensearch_kit.export.load import from_pretrained, load_config, load_tokenizer, require_trust, truncation_length
from opensearch_kit.export.pipeline import Exporter, Runner, torchscript_runner
from opensearch_kit.verify.compare import compare_scores, score_quality
from opensearch_kit.verify.samples import RERANK_QUERIES, SAMPLE_TEXTS

DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
YES_NO_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    'Note that the answer can only be "yes" or "no".'
)
YES_NO_PREFIX = f"<|im_start|>system\n{YES_NO_SYSTEM}<|im_end|>\n<|im_start|>user\n"
YES_NO_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
_USER_TURN = "\x00USER-TURN\x00"
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
TOLERANCE = 1e-3
# The cluster runs fp16 / int8 graphs with other kernels (libtorch 2.5.1, ONNX Runtime 1.16) than the local
# runtimes that recorded the expected scores: these bounds hold the cluster to the precision of the export.
CLUSTER_TOLERANCE = {"fp32": TOLERANCE, "fp16": 1e-2, "int8": 5e-2}


def yes_no_body(query: str, doc: str, instruction: str) -> str:
    """The user turn of Qwen3-Reranker's prompt, between the prompt's prefix and suffix."""
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"


def yes_no_prompt(tokenizer, model_type: str) -> tuple[str, str]:
    """(prefix, suffix) around the user turn. Qwen3 models (and tokenizers without a chat template) get
    Qwen3-Reranker's prompt as its model card writes it, with the empty <think> block; any other chat model
    gets the same system and user turns rendered by its own chat template, up to the assistant's first token
    (a Llama / SmolLM2 template has no <think> block, which would only be text to such a model)."""
    template = getattr(tokenizer, "chat_template", None)
    if model_type.startswith("qwen3") or not template:
        return YES_NO_PREFIX, YES_NO_SUFFIX
    messages = [{"role": "system", "content": YES_NO_SYSTEM}, {"role": "user", "content": _USER_TURN}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(text, str) or text.count(_USER_TURN) != 1:
        raise KitError(
            "the model's chat template does not render a system + user turn once",
            "export a Qwen3-Reranker-style model, or fix the tokenizer's chat_template",
        )
    prefix, suffix = text.split(_USER_TURN)
    return prefix, suffix


@dataclass
class LoadedReranker:
    """A reranker ready to wrap: the model, its tokenizer, which kind it is and what it scores with."""

    model: torch.nn.Module
    tokenizer: object
    kind: str  # "cross-encoder" | "yes-no"
    max_length: int
    model_type: str
    instruction: str | None = None
    yes_no_ids: tuple[int, int] | None = None
    prompt: tuple[str, str] = (YES_NO_PREFIX, YES_NO_SUFFIX)  # yes-no: (prefix, suffix) around the user turn


def reranker_kind(model_path: str, config) -> str:
    """cross-encoder for a one-label sequence classifier, yes-no for a causal LM; a KitError otherwise."""
    architectures = getattr(config, "architectures", None) or []
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        if getattr(config, "num_labels", 1) != 1:
            raise KitError(
                f"{model_path} classifies into {config.num_labels} labels; a cross-encoder reranker has one score",
                "export a cross-encoder with a single output label",
            )
        return "cross-encoder"
    if any(a.endswith("ForCausalLM") for a in architectures):
        return "yes-no"
    raise KitError(
        f"{model_path} ({', '.join(architectures) or 'no architectures in config.json'}) is not a reranker",
        "export a *ForSequenceClassification cross-encoder or a yes/no LLM reranker (*ForCausalLM, Qwen3-Reranker)",
    )


def load_reranker(
    model_path: str,
    instruction: str | None = None,
    trust_remote_code: bool = False,
    max_length: int | None = None,
    meta: bool = False,
) -> LoadedReranker:
    """Load the reranker (`meta`: the architecture only, to size it)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    config = load_config(model_path, trust_remote_code)
    kind = reranker_kind(model_path, config)
    tokenizer = load_tokenizer(model_path, trust_remote_code)
    require_trust(model_path, config, trust_remote_code)
    auto = AutoModelForSequenceClassification if kind == "cross-encoder" else AutoModelForCausalLM
    model = from_pretrained(auto, model_path, config, meta=meta, trust_remote_code=trust_remote_code)
    loaded = LoadedReranker(model, tokenizer, kind, truncation_length(config, tokenizer, max_length), config.model_type)
    if kind == "yes-no":
        vocab = tokenizer.get_vocab()
        if "yes" not in vocab or "no" not in vocab:
            raise KitError(f"{model_path} has no single `yes` / `no` tokens", "export a Qwen3-Reranker-style model")
        loaded.yes_no_ids = (vocab["yes"], vocab["no"])
        loaded.instruction = instruction or DEFAULT_INSTRUCTION
        loaded.prompt = yes_no_prompt(tokenizer, config.model_type)
    elif instruction:
        raise KitError("--instruction applies to LLM yes/no rerankers", "drop --instruction for a cross-encoder")
    return loaded


class RerankModule(torch.nn.Module):
    """(input_ids, attention_mask, token_type_ids) -> [batch, 1] float32 scores."""

    def __init__(self, loaded: LoadedReranker):
        super().__init__()
        self.yes_no = loaded.kind == "yes-no"
        if self.yes_no:
            self.backbone = loaded.model.base_model
            head = loaded.model.get_output_embeddings()
            yes, no = loaded.yes_no_ids
            # logit(yes) - logit(no) at the last position = hidden . (W[yes] - W[no]) (+ bias difference)
            self.register_buffer("direction", (head.weight[yes] - head.weight[no]).detach().float().clone())
            bias = head.bias[yes] - head.bias[no] if getattr(head, "bias", None) is not None else torch.zeros(())
            self.register_buffer("bias", bias.detach().float().clone())
        else:
            self.model = loaded.model
            config = loaded.model.config
            # models with a single token type (RoBERTa, XLM-R, ...) get no token_type_ids; the graph ignores them
            self.token_types = getattr(config, "type_vocab_size", 0) > 1

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        if self.yes_no:
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask)[0]
            last = pool(hidden.float(), attention_mask, "last-token")
            # a product-sum, not a MatMul: int8 quantization leaves this one-row head in fp32
            return ((last * self.direction.float()).sum(dim=-1) + self.bias.float()).unsqueeze(-1)
        extra = {"token_type_ids": token_type_ids} if self.token_types else {}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits.float()


def server_tokenizer(loaded: LoadedReranker):
    """The tokenizers.Tokenizer the server will use: the model's own, or for yes/no rerankers one whose pair
    encoding is the whole prompt."""
    from tokenizers import Tokenizer, normalizers, processors

    tokenizer = Tokenizer.from_str(loaded.tokenizer.backend_tokenizer.to_str())
    if loaded.kind != "yes-no":
        return tokenizer
    prefix, suffix = loaded.prompt
    pieces = {
        "[PROMPT_START]": prefix + f"<Instruct>: {loaded.instruction}\n<Query>:",
        "[PROMPT_MIDDLE]": "\n<Document>:",
        "[PROMPT_END]": suffix,
    }
    specials = []
    for piece, text in pieces.items():
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        specials.append({"id": piece, "ids": ids, "tokens": [tokenizer.id_to_token(i) for i in ids]})
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A", pair="[PROMPT_START] $A [PROMPT_MIDDLE] $B [PROMPT_END]", special_tokens=specials
    )
    prepend = normalizers.Prepend(" ")
    tokenizer.normalizer = normalizers.Sequence([tokenizer.normalizer, prepend]) if tokenizer.normalizer else prepend
    return tokenizer


def reference_scores(module: RerankModule, loaded: LoadedReranker, pairs: list[tuple[str, str]]) -> np.ndarray:
    """The original model, eager PyTorch, one pair at a time: a cross-encoder on the tokenizer's pair encoding;
    a yes/no reranker on its one-string prompt, truncated as Qwen3-Reranker's reference code does (the user
    turn is cut so that prefix + turn + suffix fit max_length)."""
    tok = loaded.tokenizer
    scores = []
    for query, doc in pairs:
        if loaded.kind == "yes-no":
            body = yes_no_body(query, doc, loaded.instruction)
            head, tail = loaded.prompt
            ids = tok(head + body + tail, add_special_tokens=False)["input_ids"]
            if len(ids) > loaded.max_length:
                prefix = tok(head, add_special_tokens=False)["input_ids"]
                suffix = tok(tail, add_special_tokens=False)["input_ids"]
                room = loaded.max_length - len(prefix) - len(suffix)
                ids = (
                    prefix + tok(body, add_special_tokens=False, truncation=True, max_length=room)["input_ids"] + suffix
                )
            ids = torch.tensor([ids])
            enc = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
        else:
            enc = dict(
                tok(
                    [query],
                    [doc],
                    truncation=True,
                    max_length=loaded.max_length,
                    return_tensors="pt",
                    return_token_type_ids=True,
                )
            )
            enc.setdefault("token_type_ids", torch.zeros_like(enc["input_ids"]))
        with torch.no_grad():
            scores.append(float(module(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])[0, 0]))
    return np.array(scores, np.float32)


class RerankerExporter(Exporter):
    kind = "reranker"

    def load(self, meta: bool = False) -> None:
        o = self.options
        self.loaded = load_reranker(self.source, o.instruction, o.trust_remote_code, o.max_length, meta)
        self.model, self.tokenizer, self.max_length = self.loaded.model, self.loaded.tokenizer, self.loaded.max_length
        self.description = f"{self.loaded.kind} reranker"

    def module(self) -> RerankModule:
        return RerankModule(self.loaded)

    def server_tokenizer(self):
        return server_tokenizer(self.loaded)

    def samples(self) -> list[tuple[str, str]]:
        return [(q, d) for q in RERANK_QUERIES for d in SAMPLE_TEXTS]

    def reference(self, module: RerankModule, items: list[tuple[str, str]]) -> np.ndarray:
        return reference_scores(module, self.loaded, items)

    def graph(self, fmt: str, module: RerankModule):
        inputs = example_inputs(self.tokenizer, self.max_length, pairs=True)
        return module, tuple(inputs[n] for n in INPUTS), INPUTS, ["score"]

    def runner(self, fmt: str, model_file: Path, tokenizer_file: Path) -> Runner:
        if fmt == "onnx":
            from opensearch_kit.runtime.reranker import Reranker

            reranker = Reranker(model_file, tokenizer_file)
            return lambda pairs, batch_size: reranker.pair_scores(pairs, batch_size)
        run = torchscript_runner(model_file, tokenizer_file, lambda m, f: m(*(f[n] for n in INPUTS)))
        return lambda pairs, batch_size: run(pairs, batch_size)[:, 0]

    def compare(self, name: str, reference: np.ndarray, runs: dict[int, np.ndarray], tolerance: float | None = None):
        if tolerance is None:
            tolerance = TOLERANCE if self.options.tolerance is None else self.options.tolerance
        return compare_scores(name, reference, runs, tolerance)

    def release(self) -> None:
        self.loaded.model = None
        super().release()

    def quality(self, reference: np.ndarray, reduced: np.ndarray) -> dict:
        return score_quality(reference, reduced)

    def expected(self, items: list[tuple[str, str]], outputs: np.ndarray, run: Runner) -> dict:
        return {"pairs": [list(p) for p in items], "scores": outputs.tolist()}

    def cluster_bounds(self, variant: str) -> dict:
        return {"max_abs_diff": CLUSTER_TOLERANCE[variant]}

    def details(self) -> dict:
        details = {"reranker": self.loaded.kind, "instruction": self.loaded.instruction}
        if self.loaded.kind == "yes-no":
            details["prompt"] = (
                "qwen3-reranker" if self.loaded.prompt == (YES_NO_PREFIX, YES_NO_SUFFIX) else "chat-template"
            )
        return details

    def model_config(self) -> dict:
        return {
            "model_type": self.loaded.model_type,
            "embedding_dimension": 1,
            "framework_type": "huggingface_transformers",
            "model_max_length": self.max_length,
            "additional_config": {"reranker": self.loaded.kind},
        }

    def notes(self) -> list[str]:
        notes = [f"{self.loaded.kind} reranker"]
        if self.loaded.kind == "yes-no":
            notes.append("prompt baked into tokenizer.json: the server's (query, document) pair encoding is the prompt")
        return notes
