import json
import subprocess
import sys


def test_import_is_light():
    """`import edgeslim` (and its task registry) must not load torch, onnxruntime or any exporter."""
    code = ("import sys, json, edgeslim, edgeslim.tasks, edgeslim.cli, edgeslim.recipe;"
            "print(json.dumps(sorted(m for m in sys.modules)))")
    mods = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                         check=True).stdout))
    heavy = {"torch", "onnxruntime", "onnx", "transformers", "executorch", "coremltools", "tensorflow", "jax",
             "ai_edge_litert", "litert_torch", "matplotlib", "optuna"}
    assert not (mods & heavy), f"heavy modules imported: {mods & heavy}"
    assert "edgeslim" in mods
