"""Export an HF PyTorch artifact to ONNX (dynamic batch and sequence axes), checked by onnx.checker."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._compat import require
from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError, StepError
from ..fileio import atomic_dir
from ..registry import register_step

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class ExportOnnxConfig:
    """Export to ONNX with the TorchScript-based exporter (one self-contained .onnx file)."""

    opset: int = 17
    seq_len: int = 16          # length of the example input used for tracing (axes stay dynamic)

    def __post_init__(self) -> None:
        if not 13 <= self.opset <= 21:
            raise ConfigError(f"export.onnx: opset must be in 13..21, got {self.opset}")


def copy_tokenizer(src: Path, dst: Path) -> None:
    """Copy a model folder's tokenizer files so the exported artifact is self-contained."""
    for name in TOKENIZER_FILES:
        if (Path(src) / name).is_file():
            shutil.copy2(Path(src) / name, Path(dst) / name)


def export_text_model_to_onnx(model: Any, out_file: Path, opset: int = 17, seq_len: int = 16) -> Path:
    """torch.onnx.export a text model taking (input_ids, attention_mask, token_type_ids) -> logits."""
    import warnings

    import torch

    require("onnx")
    model = model.eval()
    ids = torch.ones((2, seq_len), dtype=torch.long)
    mask = torch.ones((2, seq_len), dtype=torch.long)
    tti = torch.zeros((2, seq_len), dtype=torch.long)
    axes = {name: {0: "batch", 1: "sequence"} for name in TEXT_INPUTS}
    axes["logits"] = {0: "batch"}

    class Wrapper(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Wrapper(model), (ids, mask, tti), str(out_file), input_names=list(TEXT_INPUTS),
                          output_names=["logits"], dynamic_axes=axes, opset_version=opset, dynamo=False)
    import onnx

    onnx.checker.check_model(str(out_file))
    return out_file


@register_step("export.onnx", ExportOnnxConfig)
def export_onnx(model: ModelArtifact, cfg: ExportOnnxConfig, ctx: RunContext) -> ModelArtifact:
    """Export an HF text model to `model.onnx` (FP32) beside its tokenizer."""
    from ..models.hf import load_model

    if model.format != "hf":
        raise StepError(f"export.onnx takes an HF PyTorch artifact, got format {model.format!r}")
    kind = model.extra.get("kind", "classification")
    if kind not in ("classification", "regression"):
        raise StepError(f"export.onnx supports sequence classification/regression models so far, not {kind!r}")
    net = load_model(model.path, kind)
    with atomic_dir(ctx.out_dir) as tmp:
        export_text_model_to_onnx(net, tmp / "model.onnx", cfg.opset, cfg.seq_len)
        copy_tokenizer(model.path, tmp)
    return ModelArtifact.create(ctx.out_dir, "onnx", parent=model, step="export.onnx",
                                step_config={"opset": cfg.opset}, metrics={},
                                extra={**{k: v for k, v in model.extra.items() if k in ("kind", "labels")},
                                       "precision": "fp32", "file": "model.onnx"})
