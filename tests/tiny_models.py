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


CORPUS = [
    "neural sparse search expands queries into weighted terms",
    "OpenSearch hybrid search combines BM25 with dense vectors",
    "한국어 형태소 분석기와 신경망 희소 검색 모델",
    "손해배상 청구 소송과 의료 분쟁 판례 검색",
    "the quick brown fox jumps over the lazy dog",
] * 20


def hangul_tokenizer(kind: str = "wordpiece"):
    """A fast tokenizer trained on English + Korean text (WordPiece, or Unigram for XLM-R style)."""
    from tokenizers import decoders, normalizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "unigram":
        specials = ["<pad>", "<unk>", "<s>", "</s>", "<mask>"]
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        tok.train_from_iterator(
            CORPUS, trainers.UnigramTrainer(vocab_size=300, special_tokens=specials, unk_token="<unk>")
        )
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))]
        )
        names = dict(
            pad_token="<pad>",
            unk_token="<unk>",
            bos_token="<s>",
            eos_token="</s>",
            cls_token="<s>",
            sep_token="</s>",
            mask_token="<mask>",
        )
    else:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
        )
        names = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=128, **names)


def tiny_mlm(arch: str, out_dir: Path) -> Path:
    """A tiny random *ForMaskedLM of the given architecture with a Hangul-covering tokenizer, saved locally."""
    import transformers

    torch.manual_seed(0)
    tok = hangul_tokenizer("unigram" if arch == "xlm-roberta" else "wordpiece")
    common = dict(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=tok.pad_token_id,
    )
    if arch == "bert":
        model = transformers.BertForMaskedLM(transformers.BertConfig(max_position_embeddings=128, **common))
    elif arch == "xlm-roberta":
        config = transformers.XLMRobertaConfig(
            max_position_embeddings=130, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **common
        )
        model = transformers.XLMRobertaForMaskedLM(config)
    elif arch == "modernbert":
        config = transformers.ModernBertConfig(
            max_position_embeddings=128,
            cls_token_id=tok.cls_token_id,
            sep_token_id=tok.sep_token_id,
            bos_token_id=tok.cls_token_id,
            eos_token_id=tok.sep_token_id,
            global_attn_every_n_layers=2,
            local_attention=16,
            **common,
        )
        model = transformers.ModernBertForMaskedLM(config)
    else:
        raise ValueError(arch)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


CUSTOM_SPARSE_CODE = '''
import torch
from transformers import ModernBertForMaskedLM


class ModernBertSparse(ModernBertForMaskedLM):
    """Remote-code style sparse model: forward returns (sparse_repr [batch, vocab], token_weights)."""

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        logits = super().forward(input_ids=input_ids, attention_mask=attention_mask).logits
        weights = torch.log1p(torch.relu(logits)) * attention_mask.unsqueeze(-1)
        return weights.max(dim=1).values, weights
'''


def tiny_custom_sparse(out_dir: Path) -> Path:
    """A ModernBERT sparse model whose config maps AutoModel to its own code (trust_remote_code), like seed 002."""
    import importlib.util
    import json

    base = tiny_mlm("modernbert", out_dir)
    (base / "modeling_sparse.py").write_text(CUSTOM_SPARSE_CODE)
    spec = importlib.util.spec_from_file_location("modeling_sparse", base / "modeling_sparse.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.ModernBertSparse.from_pretrained(base)
    model.save_pretrained(base)
    config = json.loads((base / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_sparse.ModernBertSparse"}
    config["architectures"] = ["ModernBertSparse"]
    (base / "config.json").write_text(json.dumps(config, indent=2))
    return base


# The pre-tokenizer split of Qwen2/Qwen3 byte-level BPE tokenizers.
QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_CORPUS = (
    CORPUS
    + [
        "Judge whether the Document meets the requirements based on the Query and the Instruct provided.",
        'Note that the answer can only be "yes" or "no".',
        "<Instruct>: Given a web search query, retrieve relevant passages that answer the query",
        "<Query>: what is neural sparse search?\n<Document>: OpenSearch hybrid search",
        "Instruct: Given a web search query, retrieve relevant passages\nQuery:",
        "system user assistant yes no yes no",
    ]
    * 5
)


def qwen_tokenizer(eos_template: bool = False):
    """A Qwen-style byte-level BPE tokenizer (Qwen split regex, ChatML specials, <think> tokens, `yes`/`no`),
    padding with <|endoftext|> on the right; `eos_template` appends <|endoftext|> like Qwen3-Embedding's."""
    from tokenizers import Regex, decoders, normalizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500, special_tokens=QWEN_SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(QWEN_CORPUS, trainer)
    tok.add_tokens(["<think>", "</think>"])
    eos = tok.token_to_id("<|endoftext|>")
    if eos_template:
        tok.post_processor = processors.TemplateProcessing(
            single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", eos)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=256,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        padding_side="right",
    )


def tiny_decoder_shape(tok) -> dict:
    """The config of every tiny random decoder here: 2 layers x 32 wide, grouped-query attention, tied embeddings."""
    return dict(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=0.2,  # scores and embeddings that differ clearly between texts
    )


def _tiny_qwen3(out_dir: Path, model_class: str, eos_template: bool) -> Path:
    """A tiny random Qwen3 `model_class` with a qwen_tokenizer, saved locally."""
    import transformers

    torch.manual_seed(0)
    tok = qwen_tokenizer(eos_template)
    config = transformers.Qwen3Config(**tiny_decoder_shape(tok), head_dim=8)
    getattr(transformers, model_class)(config).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def tiny_qwen3_embedder(out_dir: Path) -> Path:
    """A tiny random Qwen3Model (decoder embedder) whose tokenizer appends <|endoftext|>, saved locally."""
    return _tiny_qwen3(out_dir, "Qwen3Model", eos_template=True)


def tiny_qwen3_reranker(out_dir: Path) -> Path:
    """A tiny random Qwen3ForCausalLM with single `yes` / `no` tokens: the shape of Qwen3-Reranker."""
    return _tiny_qwen3(out_dir, "Qwen3ForCausalLM", eos_template=False)


# SmolLM2-Instruct's chat template (ChatML, a default system turn, no <think> block).
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_llama_chat_reranker(out_dir: Path) -> Path:
    """A tiny random LlamaForCausalLM with SmolLM2-Instruct's chat template and single `yes` / `no` tokens: the
    shape of a chat LLM used as a zero-shot yes/no reranker."""
    import transformers

    torch.manual_seed(0)
    tok = qwen_tokenizer()
    tok.chat_template = SMOLLM2_CHAT_TEMPLATE
    config = transformers.LlamaConfig(**tiny_decoder_shape(tok))
    transformers.LlamaForCausalLM(config).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def tiny_bert_cross_encoder(out_dir: Path) -> Path:
    """A tiny random BertForSequenceClassification with one label and a [CLS] A [SEP] B [SEP] tokenizer."""
    import transformers

    torch.manual_seed(0)
    tok = hangul_tokenizer()
    cls, sep = tok.cls_token_id, tok.sep_token_id
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    config = transformers.BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
        num_labels=1,
        initializer_range=0.5,  # scores that differ clearly between documents
    )
    transformers.BertForSequenceClassification(config).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def tiny_qwen3_sentence_transformer(out_dir: Path, query_prompt: str) -> Path:
    """The tiny Qwen3 embedder in a sentence-transformers folder like Qwen3-Embedding's, but with the Transformer
    module in a `0_Transformer` subfolder (older layout): last-token pooling, Normalize, a query prompt."""
    import json

    tiny_qwen3_embedder(out_dir / "0_Transformer")
    (out_dir / "0_Transformer" / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    modules = [
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (out_dir / "modules.json").write_text(json.dumps(modules))
    (out_dir / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": 32, "pooling_mode_lasttoken": True, "include_prompt": True}
    (out_dir / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    st_config = {"prompts": {"query": query_prompt, "document": ""}, "similarity_fn_name": "cosine"}
    (out_dir / "config_sentence_transformers.json").write_text(json.dumps(st_config))
    return out_dir
