"""Defaults shared by the benchmarks: which fine-tuned teacher to measure and which Python runs Optimum.

Teacher: --teacher, else $EDGESLIM_BENCH_TEACHER, else runs/teacher-sst2 if it exists (made by hand on the project's
first machine), else runs/demo/01-finetune (what `make demo` fine-tunes on any machine).
Optimum: --optimum-python, else $EDGESLIM_OPTIMUM_PYTHON, else .venv-optimum/bin/python (benchmarks/run_all.py
makes it).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parents[1]
TEACHER_ENV = "EDGESLIM_BENCH_TEACHER"
OPTIMUM_ENV = "EDGESLIM_OPTIMUM_PYTHON"
HAND_TEACHER = "runs/teacher-sst2"        # fine-tuned by hand on the first machine; the published numbers use it
DEMO_TEACHER = "runs/demo/01-finetune"    # step 1 of `make demo` (edgeslim optimize): the fine-tuned teacher
OPTIMUM_VENV = ".venv-optimum"
# Optimum pins transformers 4.x, so it cannot share .venv (transformers 5). These versions ran the published
# quantize benchmark beside torch 2.13.0 (pip freeze of that venv); torch is installed first and alone so pip
# keeps the CPU build instead of pulling a CUDA one.
OPTIMUM_TORCH = "torch==2.13.0"
OPTIMUM_REQUIREMENTS = ("optimum[onnxruntime]==2.1.0", "optimum-onnx==0.1.0", "transformers==4.57.6",
                        "onnxruntime==1.32.0")


def rel(path: str | Path, root: Path = ROOT) -> str:
    """`path` relative to the repository root when it lies inside it (short commands), else absolute."""
    p = Path(path).absolute()
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)


def default_teacher(root: Path = ROOT, env: Mapping[str, str] = os.environ) -> Path:
    """$EDGESLIM_BENCH_TEACHER, else runs/teacher-sst2 if it holds an artifact, else runs/demo/01-finetune."""
    if env.get(TEACHER_ENV):
        return Path(env[TEACHER_ENV]).absolute()
    if (root / HAND_TEACHER / "edgeslim.json").is_file():
        return root / HAND_TEACHER
    return root / DEMO_TEACHER


def resolve_teacher(explicit: str | Path | None = None, root: Path = ROOT,
                    env: Mapping[str, str] = os.environ) -> Path:
    """The teacher artifact folder to benchmark; exits with the fix (`make demo`) when there is none."""
    path = Path(explicit).absolute() if explicit else default_teacher(root, env)
    if not (path / "edgeslim.json").is_file():
        raise SystemExit(
            f"bench: error: no fine-tuned teacher at {rel(path, root)} (no edgeslim.json there). The benchmarks use "
            f"--teacher, else ${TEACHER_ENV}, else {HAND_TEACHER} if it exists, else {DEMO_TEACHER}: run "
            f"`make demo` to build {DEMO_TEACHER}, or pass --teacher <fine-tuned artifact folder>.")
    return path


def manifest_value(folder: str | Path, key: str) -> str | None:
    """`key` of an artifact folder's manifest (edgeslim.json), None when there is no manifest or no such key."""
    manifest = Path(folder) / "edgeslim.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text()).get(key)


def content_hash(folder: str | Path) -> str | None:
    """The content hash recorded in an artifact folder's manifest, None when it has none."""
    return manifest_value(folder, "content_hash")


def default_optimum_python(root: Path = ROOT, env: Mapping[str, str] = os.environ) -> Path:
    """$EDGESLIM_OPTIMUM_PYTHON, else the repo's .venv-optimum/bin/python (benchmarks/run_all.py creates it)."""
    if env.get(OPTIMUM_ENV):
        return Path(env[OPTIMUM_ENV]).absolute()
    return root / OPTIMUM_VENV / "bin" / "python"
