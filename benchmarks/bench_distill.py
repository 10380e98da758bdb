"""Distillation ablation on SST-2: four students (A and C about 2.2x, B and D about 4.5x fewer parameters than the
teacher), each trained three ways for the same wall-clock budget: two-stage distillation, task distillation only, and no
distillation (hard labels only; same teacher-sliced initialisation).

Each run is one `edgeslim distill` command (run them one at a time under the shared CPU lock):

    flock /tmp/edgeslim-heavy.lock .venv/bin/python benchmarks/bench_distill.py run A-2stage
    ...
    .venv/bin/python benchmarks/bench_distill.py table      # JSON + Markdown into benchmarks/out/, prints the table

Students are saved under runs/distill/<name>.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_teacher, rel, resolve_teacher  # noqa: E402

# $EDGESLIM_BENCH_TEACHER, else runs/teacher-sst2 if it exists, else runs/demo/01-finetune (made by `make demo`)
TEACHER = rel(default_teacher())
GENERAL_MIN, TASK_MIN = 2.0, 5.0                 # the same total budget (7 min) for every variant of a student
STUDENTS = {
    "A": ["--student-layers", "3"],                                                    # depth 6 -> 3, pruned vocab
    "B": ["--student-layers", "3", "--student-hidden", "256", "--student-ffn", "768"],  # + narrower
    "C": ["--student-layers", "6", "--student-ffn", "384"],                  # all 6 layers, FFN / 4, pruned vocab
    "D": ["--student-layers", "6", "--student-hidden", "192", "--student-ffn", "768"],  # all 6 layers, half width
}
VARIANTS = {
    "2stage": ["--stages", "general,task", "--general-minutes", str(GENERAL_MIN), "--task-minutes", str(TASK_MIN)],
    "task-only": ["--stages", "task", "--task-minutes", str(GENERAL_MIN + TASK_MIN)],
    "no-distill": ["--stages", "task", "--task-losses", "ce=1", "--task-minutes", str(GENERAL_MIN + TASK_MIN)],
}
RUNS = {f"{s}-{v}": STUDENTS[s] + VARIANTS[v] for s in STUDENTS for v in VARIANTS}


def parse_run(name: str) -> tuple[str, int] | None:
    """'C-2stage-s1' -> ('C-2stage', 1); names without a -s<N> suffix use seed 0; None for an unknown name."""
    base, _, seed = name.rpartition("-s")
    if base in RUNS and seed.isdigit():
        return base, int(seed)
    return (name, 0) if name in RUNS else None


def split_seed(name: str) -> tuple[str, int]:
    """parse_run, exiting with the valid names when `name` is not a run."""
    parsed = parse_run(name)
    if parsed is None:
        raise SystemExit(f"unknown run {name!r}: one of {', '.join(RUNS)} (optionally with -s<seed>, e.g. C-2stage-s1)")
    return parsed


def run(name: str) -> int:
    base, seed = split_seed(name)
    cmd = [str(ROOT / ".venv/bin/edgeslim"), "-q", "distill", "--teacher", TEACHER, "--task", "sst2",
           *RUNS[base], "--seed", str(seed), "--out", f"runs/distill/{name}", "--json"]
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def table() -> str:
    rows = []
    teacher = json.loads((ROOT / TEACHER / "edgeslim.json").read_text())
    # a repeated run keeps its earlier result as <name>-run1, -run2, ...
    names = sorted(p.parent.name for p in (ROOT / "runs" / "distill").glob("*/edgeslim.json")
                   if parse_run(p.parent.name.split("-run")[0]) is not None)
    for name in names:
        man = ROOT / "runs" / "distill" / name / "edgeslim.json"
        m = json.loads(man.read_text())["metrics"]
        d = m["distill"]
        st = d["stages"]
        base, seed = split_seed(name.split("-run")[0])
        rows.append({"run": name, "seed": seed, "params": d["student_params"], "ratio": d["ratio"], "accuracy": m["accuracy"],
                     "retention": d["retention"], "train_seconds": d["train_seconds"],
                     "steps": {k: v["steps"] for k, v in st.items()},
                     "steps_per_second": {k: round(v["steps"] / v["seconds"], 2) for k, v in st.items()},
                     "command": " ".join(["edgeslim distill --teacher", TEACHER, "--task sst2",
                                          *RUNS[base], "--seed", str(seed)])})
    lines = [f"teacher: {TEACHER}, {teacher['metrics'].get('accuracy')} SST-2 dev accuracy",
             "", "| run | student params | ratio | dev acc | retention | train s | steps (general/task) | steps/s (general/task) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        steps = "/".join(str(r["steps"].get(k, "-")) for k in ("general", "task"))
        rate = "/".join(str(r["steps_per_second"].get(k, "-")) for k in ("general", "task"))
        lines.append(f"| {r['run']} | {r['params'] / 1e6:.2f}M | {r['ratio']:.2f}x | {r['accuracy']:.4f} | "
                     f"{r['retention']:.4f} | {r['train_seconds']:.0f} | {steps} | {rate} |")
    md = "\n".join(lines)
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "distill.json").write_text(json.dumps(rows, indent=2))
    (out / "distill.md").write_text(md + "\n")
    return md


if __name__ == "__main__":
    resolve_teacher(ROOT / TEACHER)  # exits naming the fix (`make demo`) when there is no teacher
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        sys.exit(run(sys.argv[2]))
    print(table())
