"""Quantization: ONNX Runtime INT8 (dynamic, static QDQ), FP16, sensitivity, mixed precision, accuracy-goal search.

Light on import: each submodule loads onnx / onnxruntime / torch inside the functions that need them.
- `onnx_schemes`: one scheme -> one quantized .onnx through `onnxruntime.quantization`.
- `sensitivity`: per MatMul/Gemm group impact of quantizing that group alone.
- `search`: the fastest candidate within `max_drop` of the FP32 metric.
- `predict`: will INT8 be faster on this target? (op coverage x hardware throughput).
The registered recipe step lives in `edgeslim.quantize.step`; calibration batches in `edgeslim.training.calibration`.
"""
