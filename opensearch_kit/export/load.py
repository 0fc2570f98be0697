"""Loading Hugging Face checkpoints for export: the small files first (configs, tokenizer), weights after the size
check, remote code only when trusted, and the length the server will truncate to."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from opensearch_kit.errors import KitError

# ML Commons' tokenizer (DJL) truncates at min(tokenizer.json max_length, 512).
SERVER_MAX_LENGTH = 512
WEIGHT_FILES = ["*.safetensors", "*.bin", "*.pt", "*.pth", "*.onnx", "*.h5", "*.msgpack", "*.gguf"]


def model_files_dir(model_path: str) -> Path:
    """A local folder with the checkpoint's small files (configs, tokenizer, sentence-transformers modules): the
    path itself, or for a hub id its snapshot without weights (those come later, after the size check)."""
    if Path(model_path).is_dir():
        return Path(model_path)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_path, ignore_patterns=WEIGHT_FILES))
    except Exception as e:
        raise KitError(
            f"{model_path} is neither a local folder nor a model the Hugging Face hub could give: {e}",
            "pass the path of a local model folder, or check the model id and hub access",
        ) from e


def load_config(model_path: str, trust_remote_code: bool = False, subfolder: str = ""):
    """The checkpoint's config; a KitError naming the fix for a folder that is no model, remote code the user has
    not trusted, or an architecture this transformers does not know."""
    from transformers import AutoConfig

    local = Path(model_path).expanduser()
    if model_path.startswith(("/", ".", "~")) and not local.is_dir():
        raise KitError(f"no model folder at {model_path}", "pass the folder that holds the model's config.json")
    not_a_model = KitError(
        f"{model_path} is not a Hugging Face model (no readable {Path(subfolder) / 'config.json'})",
        "pass the folder that holds the model's config.json, tokenizer and weights",
    )
    if local.is_dir() and not (local / subfolder / "config.json").is_file():
        raise not_a_model
    try:
        return AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code, subfolder=subfolder)
    except OSError as e:
        raise not_a_model from e
    except (ValueError, KeyError) as e:
        if "trust_remote_code" in str(e):
            raise KitError(f"{model_path} ships its own model code", "pass --trust-remote-code if you trust it") from e
        raise unsupported(model_path, e) from e


def unsupported(model_path: str, cause: Exception) -> KitError:
    """A model whose architecture the installed transformers cannot build (or not as this kind)."""
    from transformers import __version__

    return KitError(
        f"{model_path}: architecture not supported by transformers {__version__} ({str(cause).splitlines()[0]})",
        "upgrade transformers (pip install -U transformers), pass --trust-remote-code for a model with its own "
        "code, or check that the model is of this kind (sparse: *ForMaskedLM, dense: an encoder, reranker: a "
        "cross-encoder or yes/no LLM)",
    )


def load_tokenizer(model_path: str, trust_remote_code: bool = False, subfolder: str = ""):
    """The model's fast tokenizer; ML Commons needs its tokenizer.json."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code, subfolder=subfolder)
    if not getattr(tokenizer, "is_fast", False):
        raise KitError(f"{model_path} has no fast tokenizer (tokenizer.json)", "ML Commons needs tokenizer.json")
    return tokenizer


def save_tokenizer(tokenizer, max_length: int, path: Path) -> None:
    """tokenizer.json with truncation at the model's max length and no padding (DJL pads itself); `tokenizer` is
    a transformers fast tokenizer or a `tokenizers.Tokenizer`."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    backend.enable_truncation(max_length)
    backend.no_padding()
    backend.save(str(path))


def require_trust(model_path: str, config, trust_remote_code: bool) -> bool:
    """True when the checkpoint maps an Auto class to its own code; a KitError unless the user trusts it."""
    custom = bool(getattr(config, "auto_map", None))
    if custom and not trust_remote_code:
        raise KitError(f"{model_path} ships its own model code", "pass --trust-remote-code if you trust it")
    return custom


SHAPE_KEYS = ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "vocab_size")


def model_shape(config) -> dict:
    """The widths that size an encoder's activations (runtime.sizing.ModelShape reads them from the report)."""
    text_config = getattr(config, "text_config", None) or config
    return {key: getattr(text_config, key, None) for key in SHAPE_KEYS}


def truncation_length(config, tokenizer, max_length: int | None, model_limit: int | None = None) -> int:
    """The length the server truncates to: the smallest of the user's, the model's and the server's limits."""
    limits = [
        max_length,
        model_limit,
        getattr(config, "max_position_embeddings", None),
        tokenizer.model_max_length,
        SERVER_MAX_LENGTH,
    ]
    return int(min(v for v in limits if v))


def from_pretrained(auto, model_path: str, config, *, meta: bool, subfolder: str = "", trust_remote_code: bool = False):
    """`auto`'s model in fp32 with eager attention (TorchScript traces it; the server's libtorch runs it), in eval
    mode and with TorchScript-safe type names; with `meta`, the architecture only (no weights), to size it.
    The weights load in the checkpoint's own dtype and are then turned fp32 one tensor at a time: loading
    bf16 shards straight as fp32 holds both forms at once (1.7B: 10.5 GB peak instead of 7.6 GB)."""
    kwargs = {"attn_implementation": "eager", "trust_remote_code": trust_remote_code}
    if meta:
        with torch.device("meta"):
            model = auto.from_config(config, dtype=torch.float32, **kwargs)
    else:
        try:
            model = auto.from_pretrained(model_path, subfolder=subfolder, dtype="auto", **kwargs).float()
            model.config.dtype = torch.float32
        except ValueError as e:
            raise unsupported(model_path, e) from e
        except OSError as e:
            raise KitError(
                f"cannot read the weights of {model_path}: {str(e).splitlines()[0]}",
                "the folder needs its *.safetensors (or pytorch_model.bin) files, complete",
            ) from e
    model.eval()
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = False
    make_scriptable_names(model)
    return model


def make_scriptable_names(model: torch.nn.Module) -> None:
    """TorchScript names module types by their Python module path; remote code lives under paths such as
    `transformers_modules.<dir>.<hash>` whose segments may start with a digit or hold dashes, which a saved
    TorchScript file cannot load. Give such types a valid path."""
    for module_type in {type(m) for m in model.modules()}:
        parts = module_type.__module__.split(".")
        if not all(p.isidentifier() for p in parts):
            module_type.__module__ = ".".join(p if p.isidentifier() else "m_" + re.sub(r"\W", "_", p) for p in parts)
