"""Integrity (issue #19, part 3): loading an artifact checks its files against the manifest; a changed byte is a
ModelError naming the file; export re-hashes every byte first; checkpoints load with weights_only."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from edgeslim.artifact import MANIFEST, ModelArtifact
from edgeslim.errors import ModelError


def _artifact(folder, payload=b"weights" * 100):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.bin").write_bytes(payload)
    return ModelArtifact.create(folder, "hf", task="sst2")


def _flip_byte_keep_mtime(path, offset=10):
    """Change one byte, same size, and put the mtime back: only a full hash can see it."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_manifest_lists_files_and_a_clean_folder_loads(tmp_path):
    art = _artifact(tmp_path / "a")
    files = json.loads((tmp_path / "a" / MANIFEST).read_text())["files"]
    assert set(files) == {"config.json", "model.bin"} and files["model.bin"]["size"] == 700
    assert ModelArtifact.load(tmp_path / "a", verify=True) == art
    assert "files" not in art.to_dict()          # displays (edgeslim info) stay short; the manifest has it


def test_changed_byte_names_the_file(tmp_path):
    _artifact(tmp_path / "a")
    f = tmp_path / "a" / "model.bin"
    data = bytearray(f.read_bytes())
    data[3] ^= 1
    f.write_bytes(bytes(data))                   # same size, new mtime: the fast check re-hashes it
    with pytest.raises(ModelError, match=r"model\.bin changed: its content hash differs"):
        ModelArtifact.load(tmp_path / "a")


def test_same_size_same_mtime_change_is_found_by_verify(tmp_path):
    _artifact(tmp_path / "a")
    _flip_byte_keep_mtime(tmp_path / "a" / "model.bin")
    ModelArtifact.load(tmp_path / "a")           # the fast path trusts size + mtime (documented limit)
    with pytest.raises(ModelError, match=r"model\.bin changed"):
        ModelArtifact.load(tmp_path / "a", verify=True)


def test_size_change_missing_and_extra_files(tmp_path):
    _artifact(tmp_path / "a")
    (tmp_path / "a" / "model.bin").write_bytes(b"short")
    with pytest.raises(ModelError, match=r"model\.bin changed: 5 bytes, 700 when"):
        ModelArtifact.load(tmp_path / "a")
    _artifact(tmp_path / "b")
    (tmp_path / "b" / "config.json").unlink()
    with pytest.raises(ModelError, match=r"config\.json is missing"):
        ModelArtifact.load(tmp_path / "b")
    _artifact(tmp_path / "c")
    (tmp_path / "c" / "stray.txt").write_text("x")
    ModelArtifact.load(tmp_path / "c")           # fast path: listed files only
    with pytest.raises(ModelError, match=r"stray\.txt is not part of the artifact"):
        ModelArtifact.load(tmp_path / "c", verify=True)


def test_copied_folder_with_new_mtimes_still_loads(tmp_path):
    art = _artifact(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "copy", copy_function=shutil.copyfile)   # mtimes not kept
    assert ModelArtifact.load(tmp_path / "copy").content_hash == art.content_hash


def test_old_manifest_without_file_list_loads_and_verify_uses_the_folder_hash(tmp_path):
    _artifact(tmp_path / "a")
    m = tmp_path / "a" / MANIFEST
    d = json.loads(m.read_text())
    d.pop("files")
    m.write_text(json.dumps(d))
    assert ModelArtifact.load(tmp_path / "a", verify=True).files == {}
    _flip_byte_keep_mtime(tmp_path / "a" / "model.bin")
    ModelArtifact.load(tmp_path / "a")
    with pytest.raises(ModelError, match="model files changed since the artifact was made"):
        ModelArtifact.load(tmp_path / "a", verify=True)


def test_read_only_artifact_loads_and_verifies(tmp_path):
    """Artifacts in installed packages are read-only: checking never writes."""
    _artifact(tmp_path / "ro")
    for p in [*(tmp_path / "ro").iterdir(), tmp_path / "ro"]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        ModelArtifact.load(tmp_path / "ro", verify=True)
    finally:
        for p in [tmp_path / "ro", *(tmp_path / "ro").iterdir()]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_export_refuses_a_changed_model_before_converting(tmp_path, tiny_bert_dir, tiny_data):
    from edgeslim.context import RunContext
    from edgeslim.registry import STEPS

    shutil.copytree(tiny_bert_dir, tmp_path / "m")
    art = ModelArtifact.create(tmp_path / "m", "hf", task="sst2")
    _flip_byte_keep_mtime(tmp_path / "m" / "model.safetensors", offset=4000)
    spec = STEPS.get("export.onnx")
    ctx = RunContext(out_dir=tmp_path / "out", task="sst2", quiet=True)
    with pytest.raises(ModelError, match=r"model\.safetensors changed"):
        spec.fn(art, spec.make_config({"seq_len": 16, "validate_n": 4}), ctx)
    assert not (tmp_path / "out").exists()


def test_checkpoint_with_a_pickled_object_is_refused(tmp_path):
    import torch

    from edgeslim.training.loop import read_checkpoint

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"key": "k", "x": Payload()}, tmp_path / "state.pt")
    with pytest.raises(ModelError, match=r"state\.pt cannot be loaded safely"):
        read_checkpoint(tmp_path / "state.pt", "k")
    assert not (tmp_path / "pwned").exists()
