"""`edgeslim serve` from the command line: the plan, and bad options named before anything is served."""
import json

import pytest

from edgeslim.cli import main


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def onnx_model(tiny_steps):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("fastapi")
    return tiny_steps.run("quantize", {"scheme": "dynamic"})


def test_plan_only_prints_the_measured_plan(capsys, onnx_model):
    code, out, _ = run(capsys, "serve", "--model", str(onnx_model.path), "--deadline-ms", "50", "--max-tokens", "32",
                       "--plan-only", "--json")
    assert code == 0
    r = json.loads(out)
    assert r["plan"]["max_batch"] >= 1 and r["curve"]["points"]
    assert {p["tokens"] for p in r["curve"]["points"]} == {16, 32}
    assert r["model"]["hash"] == onnx_model.content_hash


@pytest.mark.parametrize("args, words", [
    (["--deadline-ms", "0"], "--deadline-ms must be > 0"),
    (["--deadline-ms", "50", "--runtime", "tensorrt"], "is not one of onnx, litert, executorch"),
    (["--deadline-ms", "50", "--runtime", "litert"], "Export it first"),
    (["--deadline-ms", "50", "--port", "70000"], "is not a TCP port"),
    (["--deadline-ms", "0.01"], "Raise --deadline-ms"),
])
def test_bad_options_exit_2_naming_the_fix(capsys, onnx_model, args, words):
    code, _, err = run(capsys, "serve", "--model", str(onnx_model.path), "--max-tokens", "32", "--plan-only", *args)
    assert code == 2 and words in err, err


def test_a_folder_that_is_not_a_model(capsys, tmp_path):
    code, _, err = run(capsys, "serve", "--model", str(tmp_path / "absent"), "--deadline-ms", "50")
    assert code == 2 and "not found" in err
    code, _, err = run(capsys, "serve", "--model", str(tmp_path), "--deadline-ms", "50")
    assert code == 2 and "is not a model" in err


def test_an_hf_folder_is_refused_with_the_export_hint(capsys, tiny_bert_dir):
    code, _, err = run(capsys, "serve", "--model", str(tiny_bert_dir), "--deadline-ms", "50")
    assert code == 2 and "Export or quantize it first" in err
