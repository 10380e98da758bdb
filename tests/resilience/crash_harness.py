"""Kill the real CLI with SIGKILL at chosen points of a recipe run, re-run the same command, and check the result.

A kill point is a predicate on the run folder, polled every few milliseconds while `edgeslim run` works (a
checkpoint file appeared or was replaced N times, a temp folder of an artifact write appeared, a step's folder
appeared). After each kill the same command is started again; after the last, it runs to the end. Then:
exit 0, no temp leftovers (`.*.tmp`, `.*.old`, `.*.pending`), every artifact loads with a full byte check, the
steps finished before the kill were reused (`cached` lines, `resumed` training metrics), and each step's content
hash equals an uninterrupted run's (quantize: its model.onnx, see NOT_BYTE_IDENTICAL).

    .venv/bin/python -m tests.resilience.crash_harness      # every kill point, one fresh run each: the table
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.conftest import write_sst2

PY = sys.executable
# Steps whose artifact holds a host measurement besides the model (quantize_report.json: the INT8/FP32 GEMM
# throughput measured for the speed-up prediction); their model file is compared instead of the content hash.
NOT_BYTE_IDENTICAL = {"quantize": "model.onnx"}


RECOVERY = [{"prune": {"heads": 0.5, "score": "magnitude", "recover_minutes": 0.05, "checkpoint_minutes": 1e-6,
                       "eval": False}}]


def recipe(model: Path, *, distill: bool = True, quantize: bool = True, steps: list | None = None) -> dict:
    """Every long step on the tiny model, each with a step (not time) budget and checkpoints every step."""
    if steps is not None:
        return {"task": "sst2", "model": str(model), "seed": 0, "steps": steps}
    steps = [{"finetune": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "max_minutes": 30, "max_length": 32,
                           "checkpoint_minutes": 1e-6}}]
    if distill:
        steps.append({"distill": {"student_layers": 1, "stages": ["task"], "task_epochs": 3, "task_minutes": 30,
                                  "max_length": 16, "batch_size": 8, "checkpoint_minutes": 1e-6}})
    steps += [{"prune": {"heads": 0.5, "recover_minutes": 0}},
              {"export": {"targets": ["onnx"], "seq_len": 16, "validate_n": 16}}]
    if quantize:
        steps.append({"quantize": {"scheme": "dynamic"}})
    return {"task": "sst2", "model": str(model), "seed": 0, "steps": steps}


@dataclass
class Workspace:
    """A tiny model, synthetic SST-2 and a recipe in `root`; `run(out)` is the CLI command under test."""

    root: Path
    distill: bool = True
    quantize: bool = True
    steps: list | None = None       # another recipe's steps (e.g. RECOVERY)

    def __post_init__(self) -> None:
        from edgeslim.models.tiny import save_tiny_bert

        if not (self.root / "bert").is_dir():
            write_sst2(self.root / "data" / "glue" / "SST-2", n_train=48, n_dev=24)
            save_tiny_bert(self.root / "bert")
        (self.root / f"{self.name}.yaml").write_text(yaml.safe_dump(recipe(self.root / "bert", distill=self.distill,
                                                                       quantize=self.quantize, steps=self.steps)))

    @property
    def name(self) -> str:
        return "recovery" if self.steps is RECOVERY else "recipe"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "EDGESLIM_DATA": str(self.root / "data"), "EDGESLIM_RUNS": str(self.root / "runs"),
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

    def start(self, out: Path, log: Path) -> subprocess.Popen:
        return subprocess.Popen([PY, "-m", "edgeslim", "run", str(self.root / f"{self.name}.yaml"), "--out", str(out)],
                                stdout=log.open("ab"), stderr=subprocess.STDOUT, env=self.env,
                                cwd=str(self.root))

    def run(self, out: Path, log: Path, timeout: float = 300) -> int:
        return self.start(out, log).wait(timeout)


# ---------------------------------------------------------------- kill points: predicates on the run folder

def appeared(pattern: str) -> Callable[[Path], bool]:
    """True once a path matching the glob `pattern` (relative to the run folder) exists."""
    return lambda out: next(out.glob(pattern), None) is not None


def replaced(pattern: str, times: int) -> Callable[[Path], bool]:
    """True once a file matching the glob `pattern` has been written `times` times (distinct inode/mtime seen)."""
    seen: set[tuple[int, int]] = set()

    def pred(out: Path) -> bool:
        for p in out.glob(pattern):
            try:
                st = p.stat()
            except OSError:
                continue
            seen.add((st.st_ino, st.st_mtime_ns))
        return len(seen) >= times
    return pred


def all_of(*preds: Callable[[Path], bool]) -> Callable[[Path], bool]:
    """True when every predicate is (each is polled every time: `replaced` counts what it sees)."""
    return lambda out: all([p(out) for p in preds])  # noqa: C419 - a list: every predicate polled


@dataclass(frozen=True)
class KillPoint:
    name: str            # shown in the table
    step: str            # the step it interrupts
    when: Callable[[Path], bool]
    trained: bool = False   # the step resumes from a training checkpoint (metrics say resumed)


def kill_points(distill: bool = True) -> list[KillPoint]:
    """The kill points tried, in the order a run reaches them."""
    d = 1 if distill else 0
    pre, ex, qu = f"{2 + d:02d}-prune", f"{3 + d:02d}-export", f"{4 + d:02d}-quantize"
    points = [
        KillPoint("finetune: first checkpoint written", "finetune", replaced("01-finetune.ckpt/state.pt", 1), True),
        KillPoint("finetune: mid checkpoint write (temp file present, 3 written before)", "finetune",
                  all_of(replaced("01-finetune.ckpt/state.pt", 3), appeared("01-finetune.ckpt/.state.pt.*.tmp")),
                  True),
        KillPoint("finetune: after 6 checkpoints (half the steps)", "finetune",
                  replaced("01-finetune.ckpt/state.pt", 6), True),
        KillPoint("finetune: mid artifact write (temp folder present)", "finetune", appeared(".01-finetune.*.tmp")),
        KillPoint("finetune: artifact renamed, before the pipeline's key stamp", "finetune",
                  appeared("01-finetune/edgeslim.json")),
    ]
    if distill:
        points += [
            KillPoint("distill: after 3 checkpoints", "distill", replaced("02-distill.ckpt/state.pt", 3), True),
            KillPoint("distill: mid artifact write", "distill", appeared(".02-distill.*.tmp")),
        ]
    points += [
        KillPoint("prune: mid artifact write", "prune", appeared(f".{pre}.*.tmp")),
        KillPoint("export: mid bundle write (onnx sub-export in progress)", "export", appeared(f".{ex}.*.tmp")),
        KillPoint("export: bundle renamed, before the key stamp", "export", appeared(f"{ex}/edgeslim.json")),
        KillPoint("quantize: mid artifact write", "quantize", appeared(f".{qu}.*.tmp")),
        KillPoint("lineage.json: mid write", "quantize", appeared(".lineage.json.*.tmp")),
    ]
    return points


@dataclass
class Outcome:
    """What one killed-and-resumed run showed, per kill point (None: the kill point was never reached)."""

    killed: dict[str, bool] = field(default_factory=dict)
    exit_code: int | None = None
    leftovers: list[str] = field(default_factory=list)
    verified: bool = False
    cached_lines: list[str] = field(default_factory=list)
    resumed_steps: list[str] = field(default_factory=list)
    same_hash: dict[str, bool] = field(default_factory=dict)
    log: str = ""


def run_with_kills(ws: Workspace, out: Path, points: list[KillPoint], poll: float = 0.002,
                   timeout: float = 300) -> Outcome:
    """Start the run; at each point in turn SIGKILL it and start it again; then let it finish."""
    res = Outcome()
    log = out.with_suffix(".log")
    for kp in points:
        proc = ws.start(out, log)
        t0 = time.monotonic()
        hit = False
        while proc.poll() is None and time.monotonic() - t0 < timeout:
            if kp.when(out):
                os.kill(proc.pid, signal.SIGKILL)
                hit = True
                break
            time.sleep(poll)
        proc.wait()
        res.killed[kp.name] = hit
        with log.open("a") as f:
            f.write(f"\n=== {'killed at' if hit else 'finished before'}: {kp.name}\n")
    before = log.stat().st_size if log.exists() else 0
    res.exit_code = ws.run(out, log, timeout)
    text = log.read_text()
    res.log = text
    last = text[before:]
    res.cached_lines = [ln.strip() for ln in last.splitlines() if ln.strip().endswith(": cached")]
    res.leftovers = sorted(str(p.relative_to(out)) for p in out.rglob(".*")
                           if p.name.endswith((".tmp", ".old", ".pending")))
    res.leftovers += sorted(p.name for p in out.iterdir() if p.name.endswith(".ckpt"))
    return res


def check_artifacts(out: Path, reference: Path, res: Outcome) -> None:
    """Load every step's artifact with a full byte check; compare hashes with the uninterrupted run's."""
    from edgeslim.artifact import ModelArtifact

    lineage = json.loads((out / "lineage.json").read_text())
    ref = {r["step"]: r for r in json.loads((reference / "lineage.json").read_text())}
    res.verified = True
    for row in lineage[1:]:
        art = ModelArtifact.load(row["path"], verify=True)
        res.verified &= art.content_hash == row["hash"]
        train = art.metrics.get("train") or art.metrics.get("distill") or {}
        rounds = (art.metrics.get("prune") or {}).get("rounds", [])
        if train.get("resumed") or any(r["recovery"].get("resumed") for r in rounds):
            res.resumed_steps.append(row["step"])
        if row["step"] not in ref:
            continue
        if row["step"] in NOT_BYTE_IDENTICAL:
            f = NOT_BYTE_IDENTICAL[row["step"]]
            other = ModelArtifact.load(ref[row["step"]]["path"])
            res.same_hash[row["step"]] = art.files[f]["sha256"] == other.files[f]["sha256"]
        else:
            res.same_hash[row["step"]] = row["hash"] == ref[row["step"]]["hash"]


def main() -> None:
    """Every kill point on a fresh run folder each; prints the Markdown table for docs/robustness.md."""
    import tempfile

    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="edgeslim-kill-"))
    ws = Workspace(root)
    reference = root / "reference"
    t0 = time.perf_counter()
    assert ws.run(reference, root / "reference.log") == 0, (root / "reference.log").read_text()[-3000:]
    print(f"uninterrupted run: {time.perf_counter() - t0:.0f} s", flush=True)
    header = ("| kill point (SIGKILL) | killed | re-run exit | leftovers | steps reused (cached) | training resumed | "
              "artifacts verify | identical hash (all steps) |")
    rows = [header, "|---|---|---|---|---|---|---|---|"]
    for i, kp in enumerate(kill_points()):
        out = root / f"kill-{i:02d}"
        res = run_with_kills(ws, out, [kp])
        check_artifacts(out, reference, res)
        diff = [s for s, same in res.same_hash.items() if not same]
        rows.append(f"| {kp.name} | {'yes' if res.killed[kp.name] else 'not reached'} | {res.exit_code} | "
                    f"{', '.join(res.leftovers) or 'none'} | "
                    f"{', '.join(ln.split('] ')[1].split(':')[0] for ln in res.cached_lines) or '-'} | "
                    f"{', '.join(res.resumed_steps) or '-'} | {'yes' if res.verified else 'NO'} | "
                    f"{'yes' if not diff else 'NO: ' + ', '.join(diff)} |")
        print(rows[-1], flush=True)
    # prune recovery is time-budgeted (minutes, no epochs): resumed, but its steps depend on the clock
    rws = Workspace(root, steps=RECOVERY)
    out = root / "kill-recovery"
    res = run_with_kills(rws, out, [KillPoint("prune recovery: after 3 checkpoints", "prune",
                                              replaced("01-prune.ckpt/recovery-*.pt", 3), True)])
    check_artifacts(out, out, res)
    rows.append(f"| prune recovery (time budget): after 3 checkpoints | {'yes' if all(res.killed.values()) else 'no'} "
                f"| {res.exit_code} | {', '.join(res.leftovers) or 'none'} | - | {', '.join(res.resumed_steps) or '-'} "
                f"| {'yes' if res.verified else 'NO'} | n/a: time-budgeted |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
