"""The model shapes of the host predictor study: fit shapes (calibration) and held-out shapes (evaluation).

Random BERT classifiers, head_dim 64, FFN = 4 x hidden, timed in ONNX Runtime fp32. The two sets share
no shape, so errors on HELDOUT_SHAPES measure how well the fitted predictor generalises.
"""
from __future__ import annotations

from .measured import ShapeSpec

FIT_SHAPES: tuple[ShapeSpec, ...] = (
    ShapeSpec(2, 128, 128), ShapeSpec(4, 256, 64), ShapeSpec(6, 384, 256), ShapeSpec(2, 512, 32),
    ShapeSpec(4, 768, 128), ShapeSpec(8, 256, 256), ShapeSpec(6, 512, 16), ShapeSpec(3, 384, 64, batch=4),
    ShapeSpec(2, 256, 128, batch=4), ShapeSpec(4, 128, 256),
)

HELDOUT_SHAPES: tuple[ShapeSpec, ...] = (
    ShapeSpec(6, 384, 128), ShapeSpec(4, 384, 32), ShapeSpec(2, 768, 64), ShapeSpec(6, 256, 128),
    ShapeSpec(12, 256, 64), ShapeSpec(3, 512, 128), ShapeSpec(4, 128, 64), ShapeSpec(6, 384, 64, batch=4),
    ShapeSpec(4, 512, 256), ShapeSpec(8, 384, 32), ShapeSpec(2, 384, 512), ShapeSpec(6, 768, 128),
)
