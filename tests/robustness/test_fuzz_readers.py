"""Fuzz every reader of user input: each either succeeds or raises an EdgeslimError that names the file.

For each reader the inputs are structured mutations of a valid document (a field removed, retyped, out of range,
unicode, huge numbers, unknown keys), mutations of its bytes (truncated, bytes flipped, other encodings, a BOM),
raw random bytes, an empty file, a directory where the file should be and a missing file. Any other exception
(KeyError, TypeError, UnicodeDecodeError, a yaml/json/runtime error, ...) is a crash: a bug in the reader.
HYPOTHESIS_PROFILE=fuzz (`make fuzz`) runs many more examples than CI (see conftest.py).
"""
from __future__ import annotations

import copy
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgeslim.errors import EdgeslimError

from ..conftest import write_squad, write_sst2
from .conftest import CRASH_TYPES, TALLY

RECORD_ONLY = os.environ.get("EDGESLIM_FUZZ_RECORD_ONLY") == "1"
CRASH_LOG = os.environ.get("EDGESLIM_FUZZ_LOG")   # with RECORD_ONLY: one line per crash, with the raising frame


def log_crash(kind: str, exc: BaseException) -> None:
    if CRASH_LOG:
        import traceback

        frame = traceback.extract_tb(exc.__traceback__)[-1]
        with open(CRASH_LOG, "a") as f:
            f.write(f"{kind}: {type(exc).__name__}: {str(exc)[:200]!r} at {frame.filename}:{frame.lineno}\n")
# readers that start a real loader per example (transformers, a runtime) get fewer: 12 in CI, 200 under `make fuzz`
SLOW = settings(max_examples=min(settings().max_examples, max(12, settings().max_examples // 10)))


def check(kind: str, call: Callable[[], Any], names: Path | str | None) -> None:
    """Run one reader call: success, or an EdgeslimError whose message names `names`; anything else fails."""
    TALLY[kind]["tried"] += 1
    try:
        call()
    except EdgeslimError as exc:
        if names is not None and str(names) not in str(exc):
            TALLY[kind]["crash"] += 1
            CRASH_TYPES[kind]["error without the file"] += 1
            log_crash(kind, exc)
            if not RECORD_ONLY:
                raise AssertionError(f"{type(exc).__name__} does not name {names}: {exc}") from exc
            return
        TALLY[kind]["clear_error"] += 1
    except Exception as exc:   # anything but an EdgeslimError is the bug we look for
        TALLY[kind]["crash"] += 1
        CRASH_TYPES[kind][type(exc).__name__] += 1
        log_crash(kind, exc)
        if not RECORD_ONLY:
            raise
    else:
        TALLY[kind]["ok"] += 1


# ---------------------------------------------------------------- building blocks: odd values, mutations, files

ODD_STRINGS = ["", " ", "\x00", "é", "🙂", "1e-4", "nan", "-", "../../etc/passwd", "a" * 300, "\ufeff", "null",
               "日本語", "\r\n", "{", "[]"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([0, -1, 2**31, 2**63, 10**30, -10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 1e-320, 0.5, 1.5]),
    st.text(max_size=12), st.sampled_from(ODD_STRINGS))
keys = st.one_of(st.text(max_size=10), st.integers(-3, 3), st.booleans(), st.none(), st.sampled_from(ODD_STRINGS))
odd_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(keys, inner, max_size=3)), max_leaves=6)


def slots(doc: Any, path: tuple = ()) -> list[tuple]:
    """Every (path) to a value inside nested dicts and lists."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append(path + (k,))
            out.extend(slots(v, path + (k,)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append(path + (i,))
            out.extend(slots(v, path + (i,)))
    return out


@st.composite
def mutated(draw, doc: Any, max_edits: int = 3) -> Any:
    """`doc` with 1..max_edits edits: a value deleted, replaced by an odd value, or an unknown key added."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, max_edits))):
        places = slots(doc)
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        op = draw(st.sampled_from(["delete", "replace", "replace", "add"]))
        if op == "delete":
            del parent[path[-1]]
        elif op == "replace":
            parent[path[-1]] = draw(odd_values)
        elif isinstance(parent, dict):
            parent[draw(keys)] = draw(odd_values)
        else:
            parent.append(draw(odd_values))
    return doc


@st.composite
def byte_mutations(draw, data: bytes) -> bytes:
    """`data` truncated, with bytes flipped or inserted, re-encoded (UTF-16, Latin-1) or with a BOM."""
    op = draw(st.sampled_from(["truncate", "flip", "insert", "utf16", "latin1", "bom"]))
    if op == "truncate":
        return data[:draw(st.integers(0, max(0, len(data) - 1)))]
    if op == "flip" and data:
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        return bytes(b)
    if op == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=32)) + data[at:]
    text = data.decode("utf-8", errors="replace")
    if op == "utf16":
        return text.encode("utf-16")
    if op == "latin1":
        return (text + " café").encode("latin-1", errors="replace")
    return b"\xef\xbb\xbf" + data


@dataclass(frozen=True)
class FileCase:
    """What to put where a reader expects a file: bytes, a directory, or nothing."""

    what: str            # "bytes" | "dir" | "missing"
    data: bytes = b""

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        if self.what == "bytes":
            path.write_bytes(self.data)
        elif self.what == "dir":
            path.mkdir()
            (path / "inside.txt").write_text("x")


def file_cases(valid: bytes, structured: st.SearchStrategy[bytes] | None = None) -> st.SearchStrategy[FileCase]:
    """The inputs every reader gets: structured documents, byte mutations of `valid`, random bytes, odd layouts."""
    options = [st.just(valid), byte_mutations(valid), st.binary(max_size=512),
               st.sampled_from([b"", b"\x00" * 16, b"\xff\xfe\x00", b"\n\n\n", b"~", b"- - -", b"{}", b"[]", b"null"])]
    if structured is not None:
        options.insert(0, structured)
    return st.one_of(st.builds(FileCase, st.just("bytes"), st.one_of(*options)),
                     st.sampled_from([FileCase("dir"), FileCase("missing")]))


def yaml_bytes(doc: Any) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode("utf-8")


def json_bytes(doc: Any) -> bytes:
    try:
        return json.dumps(doc).encode("utf-8")
    except (TypeError, ValueError):  # a key json cannot write (e.g. None is fine, but never mind): skip the edit
        return b"{}"


def fresh_dir(base: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=base))


# ---------------------------------------------------------------- recipe YAML

RECIPE = {"model": "minilm-l6", "task": "sst2", "seed": 0, "threads": 2, "description": "fuzz",
          "steps": [{"finetune": {"max_minutes": 1.0, "batch_size": 8, "epochs": 1}},
                    {"prune": {"heads": 0.25}}, {"quantize": {"scheme": "dynamic"}},
                    {"export.onnx": {}}, "eval"]}


@given(case=file_cases(yaml_bytes(RECIPE), mutated(RECIPE).map(yaml_bytes)))
@example(case=FileCase("bytes", b"model: minilm-l6\nsteps:\n  - finetune: {1: 2}\n"))
@example(case=FileCase("bytes", b"model: minilm-l6\n3: x\nsteps: [eval]\n"))
@example(case=FileCase("bytes", b"model: minilm-l6\nsteps:\n  - finetune: {max_minutes: 1e400}\n"))
@example(case=FileCase("bytes", b"\xff\xfe\x00\x00garbage"))
def test_fuzz_recipe(case, tmp_path):
    from edgeslim.recipe import load_recipe

    path = fresh_dir(tmp_path) / "recipe.yaml"
    case.write(path)
    check("recipe YAML", lambda: load_recipe(path), path)


# ---------------------------------------------------------------- hardware profile YAML

def _profile_doc() -> dict:
    from edgeslim.hardware.schema import BUILTIN_DIR

    return yaml.safe_load((BUILTIN_DIR / "raspberry-pi-5.yaml").read_text())


PROFILE = _profile_doc()


@given(case=file_cases(yaml_bytes(PROFILE), mutated(PROFILE).map(yaml_bytes)))
@example(case=FileCase("bytes", yaml_bytes({**PROFILE, "efficiency": {1: 0.5}})))
@example(case=FileCase("bytes", yaml_bytes({**PROFILE, "efficiency": {"linear": "x"}})))
@example(case=FileCase("bytes", yaml_bytes({**PROFILE, "kind": ["cpu"]})))
@example(case=FileCase("bytes", yaml_bytes({**PROFILE, "runtime": {"value": ["litert"]}})))
def test_fuzz_hardware_profile(case, tmp_path, monkeypatch):
    from edgeslim.hardware.schema import load_profile, read_profile_file

    folder = fresh_dir(tmp_path)
    path = folder / "raspberry-pi-5.yaml"
    case.write(path)
    check("hardware profile YAML", lambda: read_profile_file(path), path)
    if path.exists():   # the same file found by name in the user profiles folder
        monkeypatch.setenv("EDGESLIM_HARDWARE_DIR", str(folder))
        check("hardware profile YAML", lambda: load_profile("raspberry-pi-5"), path)


# ---------------------------------------------------------------- GLUE TSV

def _settings(root: Path):
    from edgeslim.settings import Settings

    return Settings(data_dir=root, data_dir_source="test", runs_dir=root / "runs", threads=2)


def _tsv_rows(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


def _sst2_text() -> str:
    root = Path(tempfile.mkdtemp())
    write_sst2(root, n_train=8, n_dev=4)
    text = (root / "train.tsv").read_text()
    shutil.rmtree(root)
    return text


SST2 = _sst2_text()
tsv_docs = mutated(_tsv_rows(SST2)).map(
    lambda rows: "\n".join("\t".join(str(c) for c in (r if isinstance(r, list) else [r])) for r in rows).encode())


@given(case=file_cases(SST2.encode(), tsv_docs), task=st.sampled_from(["sst2", "cola", "mrpc", "stsb"]),
       split=st.sampled_from(["train", "val", "dev", "train-full"]))
@example(case=FileCase("bytes", b"sentence\tlabel\n" + b"x" * 200_000 + b"\t1\n"), task="sst2", split="train-full")
@example(case=FileCase("bytes", b"sentence\tlabel\n\xff\xfe bad\t1\n"), task="sst2", split="train-full")
def test_fuzz_glue_tsv(case, task, split, tmp_path):
    from edgeslim.tasks import get_task

    root = fresh_dir(tmp_path)
    spec = get_task(task)
    path = root / spec.folder / spec.file_name(split)
    case.write(path)
    check("GLUE TSV", lambda: spec.load(split, settings=_settings(root)), path)


# ---------------------------------------------------------------- SQuAD JSON

def _squad_doc() -> dict:
    root = Path(tempfile.mkdtemp())
    write_squad(root / "dev.json", n_articles=2)
    doc = json.loads((root / "dev.json").read_text())
    shutil.rmtree(root)
    return doc


SQUAD = _squad_doc()


@given(case=file_cases(json_bytes(SQUAD), mutated(SQUAD).map(json_bytes)),
       task=st.sampled_from(["squad", "squad-dev-train", "squad-dev-eval"]))
@example(case=FileCase("bytes", b'{"data": [1]}'), task="squad")
@example(case=FileCase("bytes", b'{"data": {"a": 1}}'), task="squad")
def test_fuzz_squad_json(case, task, tmp_path):
    from edgeslim.tasks import get_task

    root = fresh_dir(tmp_path)
    spec = get_task(task)
    path = root / spec.folder / spec.file_name("dev")
    case.write(path)
    check("SQuAD JSON", lambda: spec.load("dev", settings=_settings(root)), path)


# ---------------------------------------------------------------- image folders

def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()


@given(case=file_cases(PNG), layout=st.sampled_from(["image", "no class folder", "class is a file",
                                                     "root is a file", "empty class"]),
       name=st.sampled_from(["a.png", "b.jpg", "c.JPEG", "d.webp"]))
def test_fuzz_image_folder(case, layout, name, tmp_path):
    from edgeslim.tasks import get_task
    from edgeslim.tasks.vision import load_image

    root = fresh_dir(tmp_path)
    spec = get_task("cifar10")
    folder = root / spec.folder / spec.file_name("test")
    for cls in spec.labels:
        (folder / cls).mkdir(parents=True)
    target = folder / spec.labels[3]
    if layout == "no class folder":
        shutil.rmtree(target)
    elif layout == "class is a file":
        shutil.rmtree(target)
        target.write_bytes(case.data)
    elif layout == "root is a file":
        shutil.rmtree(folder)
        folder.write_bytes(case.data)
    elif layout == "image":
        (folder / spec.labels[0] / "ok.png").write_bytes(PNG)
        case.write(target / name)

    def read() -> None:
        for e in spec.load("test", settings=_settings(root)):
            load_image(e.path, 16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

    check("image folder", read, folder if layout != "image" else None)


# ---------------------------------------------------------------- HF model folders

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from edgeslim.models.tiny import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("fuzz") / "bert")


def copy_model(src: Path, base: Path) -> Path:
    dst = fresh_dir(base) / "model"
    shutil.copytree(src, dst)
    return dst


@given(data=st.data())
@example(data=None)
def test_fuzz_hf_config(data, tiny_model, tmp_path):
    from edgeslim.models.hf import check_model_folder, infer_kind, model_shape, read_config

    valid = json.loads((tiny_model / "config.json").read_text())
    if data is None:   # a handful of configs that look right but are not
        cases = [FileCase("bytes", json_bytes({**valid, "num_attention_heads": 0})),
                 FileCase("bytes", json_bytes({**valid, "hidden_size": "wide"})),
                 FileCase("bytes", json_bytes({**valid, "pruned_heads": [1, 2]})),
                 FileCase("bytes", json_bytes({**valid, "architectures": "Bert"})),
                 FileCase("bytes", json_bytes({**valid, "num_hidden_layers": 1e300})),
                 FileCase("bytes", json_bytes([valid]))]
    else:
        cases = [data.draw(file_cases(json_bytes(valid), mutated(valid).map(json_bytes)))]
    for case in cases:
        folder = copy_model(tiny_model, tmp_path)
        path = folder / "config.json"
        case.write(path)

        def read() -> None:
            check_model_folder(folder)
            model_shape(folder)
            infer_kind(read_config(folder))

        check("HF config.json", read, path if case.what != "missing" else folder)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")   # the files the tiny model's tokenizer is saved as


@pytest.mark.parametrize("name", TOKENIZER_FILES)
@SLOW
@given(data=st.data())
def test_fuzz_hf_tokenizer(data, name, tiny_model, tmp_path):
    from edgeslim.models.hf import load_tokenizer

    valid = (tiny_model / name).read_bytes()
    structured = None
    if name.endswith(".json"):
        structured = mutated(json.loads(valid)).map(json_bytes)
    case = data.draw(file_cases(valid, structured))
    folder = copy_model(tiny_model, tmp_path)
    case.write(folder / name)
    check("HF tokenizer files", lambda: load_tokenizer(folder)("a b c"), folder)


@SLOW
@given(data=st.data(), name=st.sampled_from(["model.safetensors", "config.json"]))
def test_fuzz_hf_weights(data, name, tiny_model, tmp_path):
    from edgeslim.models.hf import load_model

    valid = (tiny_model / name).read_bytes()
    structured = None
    if name == "model.safetensors":   # a safetensors file starts with an 8-byte header length, then JSON
        n = int.from_bytes(valid[:8], "little")
        header = json.loads(valid[8:8 + n])
        structured = mutated(header).map(lambda h: (lambda b: len(b).to_bytes(8, "little") + b + valid[8 + n:])(
            json_bytes(h)))
    case = data.draw(file_cases(valid, structured))
    folder = copy_model(tiny_model, tmp_path)
    case.write(folder / name)
    check("HF weights (safetensors)", lambda: load_model(folder, "classification"), folder)


# ---------------------------------------------------------------- edgeslim artifact manifest (artifact.py)

@given(data=st.data())
def test_fuzz_artifact_manifest(data, tmp_path):
    from edgeslim.artifact import MANIFEST, ModelArtifact

    valid = {"format": "onnx", "task": "sst2", "content_hash": "ab" * 32, "parent_hash": None, "step": "export.onnx",
             "step_config": {}, "metrics": {"accuracy": 0.9}, "extra": {"file": "model.onnx"}, "created": 1.0}
    case = data.draw(file_cases(json_bytes(valid), mutated(valid).map(json_bytes)))
    folder = fresh_dir(tmp_path)
    (folder / "model.onnx").write_bytes(b"x")
    case.write(folder / MANIFEST)

    def read() -> None:
        art = ModelArtifact.load(folder)
        art.short_hash, art.extra.get("file"), art.to_dict()

    check("artifact manifest", read, folder)


# ---------------------------------------------------------------- ONNX / .tflite / .pte files given as input

def _onnx_model() -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, 4])
    y = helper.make_tensor_value_info("logits", TensorProto.INT64, [1, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["input_ids"], ["logits"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


RUNTIME_FILES = {"onnx": "model.onnx", "tflite": "model.tflite", "pte": "model.pte"}
BACKEND = {"onnx": "onnxruntime", "tflite": "ai_edge_litert", "pte": "executorch"}


@pytest.mark.parametrize("fmt", sorted(RUNTIME_FILES))
@SLOW
@given(data=st.data())
@example(data=None)
def test_fuzz_runtime_files(data, fmt, tmp_path):
    import importlib.util

    from edgeslim.artifact import ModelArtifact
    from edgeslim.runtime import load_forward

    if importlib.util.find_spec(BACKEND[fmt]) is None:
        pytest.skip(f"{BACKEND[fmt]} not installed")
    valid = _onnx_model() if fmt == "onnx" else b"TFL3" + bytes(60) if fmt == "tflite" else b"ET12" + bytes(60)
    extra = {"static_shape": {"batch": 1, "sequence": 4}}
    if data is None:
        case, extra = FileCase("bytes", valid), {"static_shape": {"batch": "one"}}
    else:
        case = data.draw(file_cases(valid))
        extra = data.draw(st.one_of(st.just(extra), mutated(extra)))
    folder = fresh_dir(tmp_path)
    path = folder / RUNTIME_FILES[fmt]
    case.write(path)
    art = ModelArtifact(path=folder, format=fmt, extra=extra)

    def run() -> None:
        import numpy as np

        fwd = load_forward(art, threads=1)
        fwd({"input_ids": np.ones((1, 4), dtype=np.int64), "attention_mask": np.ones((1, 4), dtype=np.int64)})

    check(f".{fmt} file", run, path)


# ---------------------------------------------------------------- CLI arguments

COMMANDS = [["tasks"], ["models"], ["steps"], ["run"], ["info"], ["finetune"], ["distill"], ["prune"], ["quantize"],
            ["quantize-predict"], ["export"], ["eval"], ["profile"], ["optimize"], ["report"], ["hw", "list"],
            ["hw", "show"], ["nope"], []]
OPTIONS = ["--model", "-m", "--task", "-t", "--out", "-o", "--threads", "--seed", "--json", "--hardware", "--target",
           "--batch", "--seq-len", "--precision", "--deadline-ms", "--max-drop", "--budget-minutes", "--epochs",
           "--max-minutes", "--ratio", "--heads", "--targets", "--scheme", "--quick", "--help", "-q", "--bogus", "--"]


@st.composite
def cli_argv(draw, files: dict[str, str]):
    """A command, then a mix of its options with odd values, garbage paths, real garbage files and free text."""
    argv = list(draw(st.sampled_from(COMMANDS)))
    values = st.one_of(st.sampled_from(list(files.values())), st.sampled_from(ODD_STRINGS[1:]),
                       st.text(min_size=1, max_size=10).filter(lambda s: "\x00" not in s),
                       st.integers(-5, 10**12).map(str), st.sampled_from(["0", "-1", "nan", "inf", "1e999", "sst2",
                                                                          "raspberry-pi-5", "fp32", "onnx"]))
    for _ in range(draw(st.integers(0, 6))):
        argv.append(draw(st.sampled_from(OPTIONS)))
        if draw(st.booleans()):
            argv.append(draw(values))
    if draw(st.booleans()):
        argv.insert(draw(st.integers(0, len(argv))), draw(values))
    return argv


@given(data=st.data())
@example(data=None)
def test_fuzz_cli(data, tmp_path, monkeypatch, capfd):
    from edgeslim.cli import main

    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    files = {"garbage": work / "garbage.bin", "recipe": work / "bad.yaml", "dir": work / "emptydir",
             "model": work / "model", "missing": work / "missing"}
    files["garbage"].write_bytes(b"\x00\xffgarbage")
    files["recipe"].write_text("model: [1, 2]\nsteps: 3\n")
    files["dir"].mkdir(exist_ok=True)
    files["model"].mkdir(exist_ok=True)
    (files["model"] / "config.json").write_text('{"model_type": "bert", "num_hidden_layers": "x"}')
    monkeypatch.chdir(work)
    for env, sub in (("EDGESLIM_DATA", "data"), ("EDGESLIM_RUNS", "runs"), ("EDGESLIM_HARDWARE_DIR", "hw")):
        monkeypatch.setenv(env, str(work / sub))
    paths = {k: str(v) for k, v in files.items()}
    argvs = ([["run", paths["dir"]], ["run", paths["garbage"]], ["info", "-m", paths["model"]],
              ["info", "-m", paths["garbage"]], ["hw", "show", "nope"], ["--threads", "x"]]
             if data is None else [data.draw(cli_argv(paths))])
    for argv in argvs:
        TALLY["CLI arguments"]["tried"] += 1
        try:
            code = main(argv)
        except SystemExit as exc:   # --help and usage paths may exit through click
            code = exc.code or 0
        except Exception as exc:
            TALLY["CLI arguments"]["crash"] += 1
            CRASH_TYPES["CLI arguments"][type(exc).__name__] += 1
            log_crash("CLI arguments", exc)
            if RECORD_ONLY:
                continue
            raise
        err = capfd.readouterr().err
        assert code in (0, 1, 2), (argv, code, err)
        assert "Traceback" not in err, (argv, err)
        if code == 2 and err.startswith("edgeslim: error:"):
            assert len(err.strip().splitlines()) == 1, (argv, err)
        TALLY["CLI arguments"]["ok" if code == 0 else "clear_error"] += 1
