import json

import pytest

from edgeslim.artifact import MANIFEST, ModelArtifact, content_hash
from edgeslim.errors import ModelError
from edgeslim.fileio import atomic_dir, write_json


def _model(folder, payload=b"weights"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.bin").write_bytes(payload)
    return folder


def test_hash_ignores_manifest_and_tracks_content(tmp_path):
    a = _model(tmp_path / "a")
    h = content_hash(a)
    (a / MANIFEST).write_text("{}")
    assert content_hash(a) == h
    (a / "model.bin").write_bytes(b"weights2")
    assert content_hash(a) != h


def test_create_load_roundtrip_with_lineage(tmp_path):
    parent = ModelArtifact.create(_model(tmp_path / "p"), "hf", task="sst2", metrics={"accuracy": 0.9})
    child = ModelArtifact.create(_model(tmp_path / "c", b"smaller"), "onnx", parent=parent, step="export.onnx",
                                 extra={"precision": "fp32"})
    assert child.parent_hash == parent.content_hash and child.task == "sst2"
    loaded = ModelArtifact.load(tmp_path / "c")
    assert loaded == child
    assert json.loads((tmp_path / "c" / MANIFEST).read_text())["step"] == "export.onnx"
    updated = loaded.with_metrics(accuracy=0.8)
    assert updated.metrics == {"accuracy": 0.8}
    assert ModelArtifact.load(tmp_path / "c").metrics == {}   # in memory only: the folder is never written
    updated.save_manifest()
    assert ModelArtifact.load(tmp_path / "c").metrics == {"accuracy": 0.8}


def test_plain_hf_folder_is_adopted_and_bad_paths_fail(tmp_path):
    art = ModelArtifact.load(_model(tmp_path / "hf"))
    assert art.format == "hf" and art.step == "source" and len(art.content_hash) == 64
    with pytest.raises(ModelError, match="not found"):
        ModelArtifact.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a model"):
        ModelArtifact.load(tmp_path / "empty")
    with pytest.raises(ModelError, match="unknown artifact format"):
        ModelArtifact(path=tmp_path, format="pickle")


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("crash mid-write")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        write_json(tmp / "a.json", {"x": 1})
    assert json.loads((target / "a.json").read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
