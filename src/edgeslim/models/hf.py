"""Load and save Hugging Face models and tokenizers from local folders only (imports torch)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .._compat import require
from ..errors import ModelError
from ..inputs import foreign_loader, load_user_json, type_name
from .config import NormalizedConfig, normalize_config
from .pruned import shrink_to_config
from .zoo import resolve_model_source

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")

# task kind -> transformers Auto class that puts the right head on the backbone
HEADS = {
    "classification": "AutoModelForSequenceClassification",
    "regression": "AutoModelForSequenceClassification",
    "qa": "AutoModelForQuestionAnswering",
    "image-classification": "AutoModelForImageClassification",
    None: "AutoModel",
}


def go_offline() -> None:
    """Forbid hub access for this process: any attempt fails fast instead of hanging."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def transformers():
    """Import transformers offline and quiet."""
    import logging

    go_offline()
    # torchao (pulled in by the executorch extra) logs missing CUDA kernels and pytree notices on import
    for name in ("torchao", "torchao.kernel.intmm", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    tf = require("transformers")
    tf.logging.set_verbosity_error()
    tf.utils.logging.disable_progress_bar()
    return tf


def check_model_folder(folder: str | Path) -> Path:
    """Resolve a model name/folder and check it holds a config and weights."""
    path = resolve_model_source(folder)
    if not path.is_dir():
        raise ModelError(f"{path} is not a folder; pass a Hugging Face model folder")
    if (path / "config.json").is_dir():
        raise ModelError(f"{path / 'config.json'} is a folder, but it must be the model's config file; fix: restore "
                         "the folder's config.json (save_pretrained writes it)")
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} has no config.json; pass a Hugging Face model folder (save_pretrained output)")
    if not any((path / w).is_file() for w in WEIGHT_FILES):
        raise ModelError(
            f"{path} has no weights (looked for {', '.join(WEIGHT_FILES)}); "
            "copy the weights into the folder or pass the folder that has them"
        )
    return path


def read_config(folder: str | Path) -> dict[str, Any]:
    """config.json of a model folder as a dict (no torch needed)."""
    path = resolve_model_source(folder) / "config.json"
    config = load_user_json(path, "model config", ModelError)
    if not isinstance(config, dict):
        raise ModelError(f"{path} must hold a JSON object (the model's config), got {type_name(config)}; fix: "
                         "restore the folder's config.json (save_pretrained writes it)")
    return config


def infer_kind(config: dict[str, Any]) -> str | None:
    """Task kind from a config's architectures (e.g. BertForSequenceClassification -> classification)."""
    archs = config.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else ""
    if arch.endswith("ForSequenceClassification"):
        return "regression" if config.get("problem_type") == "regression" else "classification"
    if arch.endswith("ForQuestionAnswering"):
        return "qa"
    if arch.endswith("ForImageClassification"):
        return "image-classification"
    return None


def artifact_kind(art: Any) -> str | None:
    """The head kind of an artifact: recorded in its manifest, else inferred from config.json."""
    kind = art.extra.get("kind")
    if kind is None and (Path(art.path) / "config.json").is_file():
        kind = infer_kind(read_config(art.path))
    return kind


def model_shape(folder: str | Path) -> NormalizedConfig:
    """Normalised config of a model folder."""
    return normalize_config(read_config(folder), where=str(resolve_model_source(folder) / "config.json"))


def load_model(folder: str | Path, kind: str | None = None, *, num_labels: int | None = None,
               id2label: dict[int, str] | None = None) -> Any:
    """Load a model from a local folder with the head for `kind`; a missing head is freshly initialised."""
    path = check_model_folder(folder)
    tf = transformers()
    auto = getattr(tf, HEADS[kind])
    kwargs: dict[str, Any] = {}
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
        if kind == "regression":
            kwargs["problem_type"] = "regression"
    if id2label is not None:
        kwargs["id2label"] = {int(k): v for k, v in id2label.items()}
        kwargs["label2id"] = {v: int(k) for k, v in id2label.items()}
    from .pruned import is_pruned_config

    config = read_config(path)
    with foreign_loader(path, "a model from", "restore the folder's config.json and weights (save_pretrained "
                                              "writes both) or pass another model folder"):
        # eager attention: exports and attention-map distillation need the plain math path
        if is_pruned_config(config):  # per-layer shapes stock transformers cannot rebuild
            model = load_pruned_model(path, auto, **kwargs)
        else:
            model = auto.from_pretrained(str(path), attn_implementation="eager", local_files_only=True, **kwargs)
    model.eval()
    return model


def load_tokenizer(folder: str | Path) -> Any:
    """Load the tokenizer saved in a model folder."""
    path = resolve_model_source(folder)
    tf = transformers()
    with foreign_loader(path, "a tokenizer from", "the folder needs intact tokenizer files (tokenizer.json or "
                                                  "vocab.txt, tokenizer_config.json): restore them from the model"):
        tok = tf.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    limit = getattr(tok, "model_max_length", None)
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit != limit or limit < 1:
        raise ModelError(f"{path / 'tokenizer_config.json'}: model_max_length must be a positive number, got "
                         f"{limit!r}; fix: set it to the model's longest input (e.g. 512) or remove the key")
    return tok


def save_model(model: Any, folder: str | Path, tokenizer: Any = None) -> Path:
    """save_pretrained the model (safetensors) and tokenizer into an existing folder."""
    folder = Path(folder)
    model.save_pretrained(str(folder), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder))
    return folder


SIDECAR_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "config.json")


def copy_sidecar_files(src: Path, dst: Path) -> None:
    """Copy a model folder's tokenizer files and config.json so the exported artifact is self-contained."""
    for name in SIDECAR_FILES:
        if (Path(src) / name).is_file():
            shutil.copy2(Path(src) / name, Path(dst) / name)


def load_pruned_model(path: str | Path, auto_cls: Any, **kwargs: Any) -> Any:
    """Build the model from its config, shrink it to the recorded structure, load the weights strictly."""


    tf = transformers()
    path = Path(path)
    config = tf.AutoConfig.from_pretrained(str(path), local_files_only=True, **kwargs)
    config._attn_implementation = "eager"
    model = auto_cls.from_config(config, attn_implementation="eager")
    shrink_to_config(model)
    state = _read_state_dict(path)
    own = model.state_dict()
    # a head whose size changed (other num_labels) is freshly initialised, as from_pretrained does
    state = {k: v for k, v in state.items() if not (k in own and own[k].shape != v.shape
                                                   and k.startswith(("classifier.", "qa_outputs.")))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # a fresh head (num_labels changed) may be missing; anything else means a mismatch
    missing = [k for k in missing if not k.startswith(("classifier.", "qa_outputs.", "cls."))]
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    missing = [k for k in missing if k not in tied and not k.endswith("position_ids")]
    if missing or unexpected:
        raise ModelError(f"pruned model weights in {path} do not match the recorded structure: missing "
                         f"{missing[:5]}, unexpected {list(unexpected)[:5]}")
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    model.eval()
    return model


def _read_state_dict(path: Path) -> dict[str, Any]:
    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(path / "model.safetensors"))
    if (path / "pytorch_model.bin").is_file():
        import torch

        return torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise ModelError(f"{path} holds no single-file weights (model.safetensors); "
                     "sharded pruned models are not supported")
