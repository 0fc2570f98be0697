"""Random-weight models with the seed models' exact configurations, saved as the seed repositories ship them (bf16
safetensors, sharded when large): the Qwen3 1.7B sentence-transformers embedder, the Qwen3 0.6B yes/no reranker
and the ModernBERT-base-class Korean sparse encoder with custom code and a vocabulary padded past its tokenizer.

Tests use the tiny shapes (and the real sparse one); scripts/bench_seed_scale.py imports this file for the real
sizes (put tests/ on sys.path)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from tiny_models import CORPUS, CUSTOM_SPARSE_CODE, qwen_tokenizer
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

from opensearch_kit.verify.samples import SAMPLE_TEXTS

QUERY_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
SHARD_SIZE = "1GB"

# Qwen3-Embedding-1.7B's text config (a seed repository's config.json, less the fields transformers defaults).
QWEN3_1_7B = dict(
    hidden_size=2048, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
    intermediate_size=6144, vocab_size=151_936, max_position_embeddings=32_768, rope_theta=1_000_000,
    rms_norm_eps=1e-6, tie_word_embeddings=True,
)  # fmt: skip
# Qwen3-Reranker-0.6B: the same family, 1024 wide.
QWEN3_0_6B = {**QWEN3_1_7B, "hidden_size": 1024, "intermediate_size": 3072}
# The Korean sparse encoder: ModernBERT-base-class, 22 layers, 768 wide, ffn 1152, 50,000 vocabulary rows.
MODERNBERT_150M = dict(
    hidden_size=768, num_hidden_layers=22, num_attention_heads=12, intermediate_size=1152, vocab_size=50_000,
    max_position_embeddings=8192, global_attn_every_n_layers=3, local_attention=128,
)  # fmt: skip
TINY_DECODER = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
    intermediate_size=64, max_position_embeddings=512,
)  # fmt: skip
TINY_MODERNBERT = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=400,
    max_position_embeddings=512, global_attn_every_n_layers=2, local_attention=16,
)  # fmt: skip
# ModernBERT-base pads 50,280 tokens to 50,368 rows: 88 output ids without a token.
PADDED_ROWS = 88


def random_weights(model_class, config) -> torch.nn.Module:
    """`model_class(config)` in bf16 with random weights drawn fast (transformers' own init, a truncated normal,
    takes minutes at 1.7B on two cores): matrices N(0, 0.02), norm weights 1, biases 0."""
    from transformers.initialization import no_init_weights

    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with no_init_weights():
            model = model_class(config)
    finally:
        torch.set_default_dtype(default)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=gen).mul_(0.02))
            else:
                param.fill_(1.0 if "norm" in name and name.endswith("weight") else 0.0)
    return model


def save_bf16(model: torch.nn.Module, out_dir: Path) -> None:
    """bf16 safetensors, in 1 GB shards when larger (as the seed repositories ship them)."""
    model.save_pretrained(out_dir, max_shard_size=SHARD_SIZE)


def wordpiece_tokenizer(size: int, max_length: int = 8192):
    """A fast WordPiece tokenizer of exactly `size` tokens: BERT specials, the characters and words of the sample
    texts and test corpus (English and Hangul), then filler words."""
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    text = " ".join(SAMPLE_TEXTS + CORPUS)
    chars = sorted({c for c in text if not c.isspace()})
    words = sorted({w.strip(".,?!()") for w in text.split()} - {""})
    tokens = list(dict.fromkeys(specials + chars + ["##" + c for c in chars] + words))
    tokens += [f"w{i}" for i in range(size - len(tokens))]
    vocab = {t: i for i, t in enumerate(tokens[:size])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    tok.add_special_tokens(specials)
    names = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_length, **names)


def seed_sparse(out_dir: Path, *, tiny: bool = False, padded: bool = True) -> Path:
    """The Korean sparse encoder's shape: a ModernBERT whose config maps AutoModel to its own code (returning
    (sparse_repr, token_weights), so it needs trust_remote_code); `padded`: the tokenizer has PADDED_ROWS fewer
    tokens than the model has vocabulary rows."""
    import transformers

    shape = TINY_MODERNBERT if tiny else MODERNBERT_150M
    rows = shape["vocab_size"]
    tok = wordpiece_tokenizer(rows - PADDED_ROWS if padded else rows, 512 if tiny else 8192)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "modeling_sparse.py").write_text(CUSTOM_SPARSE_CODE)
    spec = importlib.util.spec_from_file_location("modeling_sparse", out_dir / "modeling_sparse.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = transformers.ModernBertConfig(
        **shape,
        pad_token_id=tok.pad_token_id,
        cls_token_id=tok.cls_token_id,
        sep_token_id=tok.sep_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
    )
    save_bf16(random_weights(module.ModernBertSparse, config), out_dir)
    tok.save_pretrained(out_dir)
    config_file = out_dir / "config.json"
    saved = json.loads(config_file.read_text())
    saved.update(auto_map={"AutoModel": "modeling_sparse.ModernBertSparse"}, architectures=["ModernBertSparse"])
    config_file.write_text(json.dumps(saved, indent=2))
    return out_dir


def _qwen3(model_class: str, shape: dict, eos_template: bool, out_dir: Path) -> Path:
    import transformers

    tok = qwen_tokenizer(eos_template)
    config = transformers.Qwen3Config(**shape, pad_token_id=tok.pad_token_id)
    save_bf16(random_weights(getattr(transformers, model_class), config), out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def seed_embedder(out_dir: Path, *, tiny: bool = False) -> Path:
    """Qwen3-Embedding-1.7B's shape in its sentence-transformers layout (Transformer at the root, last-token
    pooling, Normalize, a query prompt); the tokenizer is a small Qwen-style one (the 151,936 rows stay)."""
    _qwen3("Qwen3Model", TINY_DECODER if tiny else QWEN3_1_7B, True, out_dir)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (out_dir / "modules.json").write_text(json.dumps(modules))
    (out_dir / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512}))
    (out_dir / "1_Pooling").mkdir(exist_ok=True)
    (out_dir / "2_Normalize").mkdir(exist_ok=True)
    width = (TINY_DECODER if tiny else QWEN3_1_7B)["hidden_size"]
    pooling = {"word_embedding_dimension": width, "pooling_mode_lasttoken": True, "include_prompt": True}
    (out_dir / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    prompts = {"prompts": {"query": QUERY_PROMPT, "document": ""}, "similarity_fn_name": "cosine"}
    (out_dir / "config_sentence_transformers.json").write_text(json.dumps(prompts))
    return out_dir


def seed_reranker(out_dir: Path, *, tiny: bool = False) -> Path:
    """Qwen3-Reranker-0.6B's shape: a Qwen3ForCausalLM whose tokenizer has single `yes` / `no` tokens."""
    return _qwen3("Qwen3ForCausalLM", TINY_DECODER if tiny else QWEN3_0_6B, False, out_dir)
