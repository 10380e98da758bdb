"""Export to every installed runtime: run, outputs within tolerance, corrupted files caught, clear errors.

Conversions are slow, so the per-target exports of one tiny model are made once per session (conftest.TinySteps)
and shared with the registry tests; targets whose
extra is not installed are skipped with the reason (the MissingBackendError tests always run).
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeslim.artifact import ModelArtifact
from edgeslim.context import RunContext
from edgeslim.errors import ConfigError, ExportMismatchError, MissingBackendError, StepError

from ..conftest import write_sst2

from edgeslim.export.base import TARGETS

BACKEND = {t: TARGETS.get(t).backends[0] for t in TARGETS.names()}   # every registered target
RUNTIME_MODULE = {"onnx": "onnxruntime", "litert": "ai_edge_litert", "executorch": "executorch",
                  "coreml": "coremltools"}
SEQ = 16


def installed(target: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in {BACKEND[target], RUNTIME_MODULE[target]})


INSTALLED = [t for t in BACKEND if installed(t)]
RUNNABLE = [t for t in INSTALLED if t != "coreml"]


def need(target: str) -> None:
    if target not in INSTALLED:
        pytest.skip(f"{target} backend not installed (pip install 'edgeslim[{target}]'); "
                    "not in the default test extras")


@pytest.fixture(scope="module")
def src(tiny_steps) -> ModelArtifact:
    return tiny_steps.src


@pytest.fixture(scope="module")
def data_env(tmp_path_factory):
    """Synthetic SST-2 (train for calibration, dev for validation and the dev metric) via EDGESLIM_DATA."""
    root = tmp_path_factory.mktemp("data")
    write_sst2(root / "glue" / "SST-2", n_train=48, n_dev=24)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGESLIM_DATA", str(root))
        yield root


@pytest.fixture(scope="module")
def bundle(tiny_steps):
    """The per-target `export.<target>` step outputs of the shared tiny model (FP32; FP16 for Core ML), made once
    per session and shared with tests/test_registries.py."""
    return tiny_steps


def sub(bundle, target: str) -> ModelArtifact:
    """The `target` export: from the shared per-target outputs, or from an `export` bundle artifact's folder."""
    if isinstance(bundle, ModelArtifact):
        row = next(r for r in bundle.extra["exports"] if r["target"] == target)
        return ModelArtifact.load(Path(bundle.path) / row["export"])
    return bundle.run(f"export.{target}")


def torch_logits(src: ModelArtifact, batch: dict) -> np.ndarray:
    from edgeslim.models.hf import load_model
    from edgeslim.runtime.torch_rt import torch_forward

    return torch_forward(load_model(src.path, "classification"))(batch)


def fresh_batch(n: int = 3, width: int = 11) -> dict:
    import torch

    g = torch.Generator().manual_seed(7)
    ids = torch.randint(5, 300, (n, width), generator=g)
    mask = torch.ones((n, width), dtype=torch.long)
    if n > 1:
        mask[1, 6:] = 0
        ids[1, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


@pytest.mark.parametrize("target", list(BACKEND))
def test_export_runs_and_matches_pytorch(bundle, src, target):
    need(target)
    art = sub(bundle, target)
    assert art.format == {"onnx": "onnx", "litert": "tflite", "executorch": "pte", "coreml": "mlpackage"}[target]
    assert (Path(art.path) / art.extra["file"]).exists()
    assert (Path(art.path) / "tokenizer.json").is_file()  # self-contained: tokenizer copied in
    assert art.parent_hash == src.content_hash and art.extra["kind"] == "classification"
    v = art.metrics["validation"]
    if target == "coreml":
        assert "macOS" in v["skipped"] or sys.platform == "darwin"
        assert art.extra["spec_check"]["passed"] and art.extra["spec_check"]["weight_consts"].get("FLOAT32", 0) == 0
        return
    assert v["passed"] and v["n"] == 16 and v["inputs"].startswith("sst2 dev")
    assert v["max_abs_diff"] < 1e-4 and v["cosine"] > 0.99999 and v["label_agreement"] == 1.0
    dev = art.metrics["sst2/dev"]
    assert dev["eval"]["n"] == 24 and abs(dev["delta_points"]) < 1e-9  # FP32: same predictions as PyTorch
    # reload from disk and run a batch of another size and length than the export's static shape
    from edgeslim.runtime import load_forward

    batch = fresh_batch()
    got = load_forward(art, 2)(batch)
    np.testing.assert_allclose(got, torch_logits(src, batch), atol=1e-4)


@pytest.mark.parametrize("target", ["litert", "executorch"])
def test_static_shape_too_long_input_is_a_clear_error(bundle, target):
    need(target)
    from edgeslim.runtime import load_forward

    with pytest.raises(StepError, match=f"static sequence length of {SEQ}"):
        load_forward(sub(bundle, target), 2)(fresh_batch(1, SEQ + 4))


def perturb_word_embeddings(src: ModelArtifact, file: Path) -> None:
    """Find the word-embedding matrix's bytes inside an exported file and scale them (a corrupted weight)."""
    from safetensors.numpy import load_file

    emb = load_file(str(Path(src.path) / "model.safetensors"))["bert.embeddings.word_embeddings.weight"]
    blob = bytearray(file.read_bytes())
    raw = emb.astype(np.float32).tobytes()
    at = bytes(blob).find(raw)
    assert at >= 0, f"word embeddings not found verbatim in {file.name}"
    blob[at:at + len(raw)] = (emb.astype(np.float32) * -3.0).tobytes()
    file.write_bytes(bytes(blob))


@pytest.mark.parametrize("target", ["onnx", "litert", "executorch"])
def test_corrupted_export_raises_mismatch(bundle, src, target, tmp_path):
    need(target)
    from edgeslim.export.base import validate_artifact

    good = sub(bundle, target)
    bad_dir = tmp_path / "bad"
    shutil.copytree(good.path, bad_dir)
    bad = ModelArtifact.load(bad_dir)
    assert validate_artifact(bad, src, RunContext(out_dir=tmp_path, task="sst2"), n=8).max_abs_diff < 1e-4
    perturb_word_embeddings(src, bad_dir / bad.extra["file"])
    with pytest.raises(ExportMismatchError, match="max abs diff") as err:
        validate_artifact(bad, src, RunContext(out_dir=tmp_path, task="sst2"), n=8)
    assert err.value.max_abs_diff > 1e-3 and err.value.tolerance == 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("target", ["litert", "executorch"])
def test_int8_export_calibrated_on_train_within_tolerance(bundle, src, data_env, target, tmp_path):
    need(target)
    from edgeslim.export.bundle import ExportConfig, export_many

    cfg = ExportConfig(targets=(target,), precisions=("int8",), seq_len=SEQ, validate_n=16, calibration_n=16,
                       eval_split=None)
    art = sub(export_many(src, cfg, RunContext(out_dir=tmp_path / "q", task="sst2")), target)
    fp32 = sub(bundle, target)
    fp32_size = (Path(fp32.path) / fp32.extra["file"]).stat().st_size
    assert art.extra["precision"] == "int8" and art.extra["calibration"] == "sst2 train, 16 examples"
    v = art.metrics["validation"]
    assert v["passed"] and v["cosine"] > 0.98 and v["label_agreement"] >= 0.9
    assert 0 < v["max_abs_diff"] < 0.05  # quantized: close to, but not bit-equal with, FP32
    assert (Path(art.path) / art.extra["file"]).stat().st_size < 0.8 * fp32_size


@pytest.mark.parametrize("target,module", [("onnx", "onnx"), ("litert", "litert_torch"),
                                           ("executorch", "executorch"), ("coreml", "coremltools")])
def test_missing_backend_names_the_extra(src, target, module, monkeypatch, tmp_path):
    from edgeslim.export.bundle import ExportConfig, export_many

    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    cfg = ExportConfig(targets=(target,), seq_len=SEQ, validate_n=4, eval_split=None)
    with pytest.raises(MissingBackendError) as err:
        export_many(src, cfg, RunContext(out_dir=tmp_path / "out", task=None))
    assert err.value.extra == target and f"edgeslim[{target}]" in str(err.value)
    assert not (tmp_path / "out").exists()  # no partial artifact


def test_unknown_target_suggests_close_match():
    from edgeslim.export.bundle import ExportConfig

    with pytest.raises(ConfigError, match="unknown target 'litrt'. Did you mean 'litert'"):
        ExportConfig(targets=("onnx", "litrt"))
    with pytest.raises(ConfigError, match="'executorch'"):
        ExportConfig(targets="executorh")


@pytest.mark.parametrize("target", ["litert", "executorch", "coreml"])
def test_dynamic_dimension_a_target_cannot_take_is_named(target):
    from edgeslim.export.bundle import ExportConfig

    with pytest.raises(ConfigError, match=f"export.{target}: dimension 'sequence' cannot be dynamic"):
        ExportConfig(targets=("onnx", target), dynamic=("sequence",))
    ExportConfig(targets=("onnx",), dynamic=("batch", "sequence"))  # ONNX keeps both dynamic
    with pytest.raises(ConfigError, match="unknown dimension 'seq'"):
        ExportConfig(targets=("onnx",), dynamic=("seq",))


def test_precision_a_target_lacks_is_named():
    from edgeslim.export.bundle import ExportConfig

    with pytest.raises(ConfigError, match="'coreml' exports fp16, int8"):
        ExportConfig(targets=("coreml",), precisions=("fp32",))
    assert ExportConfig(targets=("onnx", "coreml"), precisions="fp32,fp16").plan() == [("onnx", "fp32"),
                                                                                         ("coreml", "fp16")]
    assert ExportConfig().plan()[-2:] == [("coreml", "fp16"), ("coreml", "int8")]


def test_export_step_is_registered_for_recipes():
    from edgeslim.recipe import parse_recipe

    r = parse_recipe({"model": "minilm-l6", "steps": [{"export.executorch": {"precision": "int8"}},
                                                      ]})
    assert r.steps[0].config.precision == "int8"
    r = parse_recipe({"model": "minilm-l6", "steps": [{"export": {"targets": ["onnx", "litert"], "seq_len": 64}}]})
    assert r.steps[0].config.targets == ("onnx", "litert")
    with pytest.raises(ConfigError, match=r"step 2 \(export.executorch\) takes an hf"):   # an export is not hf
        parse_recipe({"model": "minilm-l6", "steps": [{"export": {"targets": ["onnx"]}}, "export.executorch"]})
    with pytest.raises(ConfigError, match="Did you mean 'coreml'"):
        parse_recipe({"model": "minilm-l6", "steps": [{"export": {"targets": ["coremltools"]}}]})


def test_cli_export_onnx_json(src, tmp_path, capsys):
    need("onnx")
    from edgeslim.cli import main

    code = main(["export", "--model", str(src.path), "--targets", "onnx", "--precisions", "fp32", "--seq-len", "16",
                 "--eval-split", "none", "--validate-n", "4", "--out", str(tmp_path / "e"), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = data["exports"]
    assert row["export"] == "onnx-fp32" and row["validation"] == "passed" and row["max_abs_diff"] < 1e-4
    assert ModelArtifact.load(tmp_path / "e").format == "onnx"  # the bundle runs as its first export


def test_cli_unknown_target_exits_2(src, capsys):
    from edgeslim.cli import main

    assert main(["export", "--model", str(src.path), "--targets", "onnx,tflight"]) == 2
    assert "unknown target 'tflight'" in capsys.readouterr().err


def test_onnx_graph_optimisation_keeps_outputs(src, tmp_path):
    need("onnx")
    import onnx

    from edgeslim.export.bundle import ExportConfig, export_many

    cfg = ExportConfig(targets=("onnx",), precisions=("fp32",), seq_len=SEQ, validate_n=8, eval_split=None,
                       optimize="extended")
    art = sub(export_many(src, cfg, RunContext(out_dir=tmp_path / "o", task=None)), "onnx")
    assert art.extra["optimize"] == "extended" and art.metrics["validation"]["max_abs_diff"] < 1e-4
    ops = {n.op_type for n in onnx.load(str(Path(art.path) / "model.onnx")).graph.node}
    assert ops & {"Attention", "SkipLayerNormalization", "FastGelu", "Gelu", "LayerNormalization"}  # fused by ORT
    with pytest.raises(ConfigError, match="optimize must be one of"):
        ExportConfig(targets=("onnx",), optimize="max")
