"""Export a PyTorch text model to ONNX: the one exporter used by the export step, quantize, prune targets and
hardware calibration."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .._compat import require
from .static import TEXT_INPUTS

DIMENSIONS = ("batch", "sequence")


def text_module(model: Any) -> Any:
    """Wrap an HF sequence classifier as forward(input_ids, attention_mask, token_type_ids) -> logits."""
    import torch

    class TextLogits(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    return TextLogits(model).eval()


def export_text_model_to_onnx(model: Any, out_file: Path, opset: int = 17, seq_len: int = 16,
                              dynamic: tuple[str, ...] = DIMENSIONS, batch: int = 2) -> Path:
    """torch.onnx.export a text model taking (input_ids, attention_mask, token_type_ids) -> logits."""
    import warnings

    import torch



    require("onnx")
    model = model.eval()
    ids = torch.ones((batch, seq_len), dtype=torch.long)
    mask = torch.ones((batch, seq_len), dtype=torch.long)
    tti = torch.zeros((batch, seq_len), dtype=torch.long)
    dims = {0: "batch", 1: "sequence"}
    axes = {name: {i: d for i, d in dims.items() if d in dynamic} for name in TEXT_INPUTS}
    axes["logits"] = {0: "batch"} if "batch" in dynamic else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(text_module(model), (ids, mask, tti), str(out_file), input_names=list(TEXT_INPUTS),
                          output_names=["logits"], dynamic_axes={k: v for k, v in axes.items() if v},
                          opset_version=opset, dynamo=False)
    import onnx

    onnx.checker.check_model(str(out_file))
    return out_file
