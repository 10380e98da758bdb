"""Run every benchmark, first building what each one needs (what `make bench` runs, after `make demo`).

    .venv/bin/python benchmarks/run_all.py [--only prune,quantize] [--dry-run] [--teacher DIR]
        [--optimum-python PY] [--pruned DIR] [--bundle DIR] [--quantized DIR] [--no-lock]

Teacher: --teacher, else $EDGESLIM_BENCH_TEACHER, else runs/teacher-sst2 if it exists, else runs/demo/01-finetune.
Prerequisites are made with the edgeslim CLI and the options docs/results.md records for the published numbers, in
runs/bench/<teacher>/, and reused while their manifest names this teacher as parent:
  prune     edgeslim prune --heads 0.5 --ffn 0.5 --recover-minutes 8                      -> prune-h50-f50
  export    edgeslim export --targets onnx,litert,executorch,coreml --seq-len 64 --keep-going -> export
  quantize  edgeslim quantize --scheme auto --max-drop 0.5 --dev-all                       -> quantize-auto,
            and the Optimum venv .venv-optimum (torch==2.13.0 first, then the pinned Optimum versions of
            benchmarks/_common.py) unless --optimum-python / $EDGESLIM_OPTIMUM_PYTHON names one
  distill   every variant of bench_distill.py without a student in runs/distill (7 min each; a student made from
            another teacher is kept, not overwritten), then its table
  serve     bench_serve.py on runs/demo (the demo's final model; about 3.5 min)
Each build and bench runs under `flock /tmp/edgeslim-heavy.lock` when flock exists, one job at a time, so other
heavy jobs can run between them: do not wrap this script itself in that flock (it would wait for itself).
Keeps going after a failure; ends with what ran, what it built and each bench's wall time; exit status 1 if any
bench failed. Summary JSON: benchmarks/out/run_all.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (OPTIMUM_ENV, OPTIMUM_REQUIREMENTS, OPTIMUM_TORCH, OPTIMUM_VENV, ROOT,  # noqa: E402
                     TEACHER_ENV, content_hash, default_optimum_python, default_teacher, manifest_value, rel,
                     resolve_teacher)
from bench_distill import RUNS as DISTILL_RUNS  # noqa: E402

BENCHES = ("profile", "prune", "export", "quantize", "distill", "serve")
LOCK = "/tmp/edgeslim-heavy.lock"
OPTIMUM_STAMP = ".edgeslim-optimum-installed"
# the commands docs/results.md records for the published numbers
PROFILE_ARGS = ["--rounds", "4", "--budget", "0.5"]
PRUNE_ARGS = ["--task", "sst2", "--heads", "0.5", "--ffn", "0.5", "--recover-minutes", "8"]
EXPORT_ARGS = ["--targets", "onnx,litert,executorch,coreml", "--seq-len", "64"]
QUANTIZE_ARGS = ["--scheme", "auto", "--max-drop", "0.5", "--task", "sst2", "--dev-all"]


@dataclass
class Job:
    """One command: a build of a prerequisite or a benchmark run."""
    kind: str                                # "build" | "bench"
    cmd: list[str]
    lock: bool = True                        # heavy: runs under the shared CPU lock
    makes: str | None = None                 # what it leaves behind, for the summary
    stamp: tuple[Path, str] | None = None    # (file, text) written once the job succeeded
    stop_on_failure: bool = True             # a failed build stops the rest of its bench


@dataclass
class BenchPlan:
    """The jobs of one benchmark, the prerequisites it reuses, or why it cannot run."""
    name: str
    jobs: list[Job] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Setup:
    """Everything the plans depend on, resolved once."""
    root: Path
    teacher: Path
    python: str                              # runs the benches (this interpreter)
    edgeslim: str                            # the CLI beside it
    optimum_python: Path
    optimum_given: bool                      # --optimum-python / $EDGESLIM_OPTIMUM_PYTHON: never created here
    pruned: Path | None = None               # user-given prerequisites, used as they are
    bundle: Path | None = None
    quantized: Path | None = None

    @property
    def teacher_hash(self) -> str | None:
        return content_hash(self.teacher)

    @property
    def work(self) -> Path:
        """runs/bench/<teacher>: prerequisites built from this teacher."""
        return self.root / "runs" / "bench" / teacher_slug(self.teacher, self.root)

    def r(self, path: str | Path) -> str:
        return rel(path, self.root)


def teacher_slug(teacher: Path, root: Path = ROOT) -> str:
    """runs/teacher-sst2 -> teacher-sst2, runs/demo/01-finetune -> demo-01-finetune, elsewhere: the folder name."""
    p = Path(rel(teacher, root))
    if p.is_absolute():
        return p.name
    parts = p.parts[1:] if p.parts[0] == "runs" and len(p.parts) > 1 else p.parts
    return "-".join(parts)


def built_from(folder: Path, parent_hash: str | None) -> bool:
    """True when `folder` holds an artifact whose manifest names `parent_hash` as its parent."""
    return parent_hash is not None and manifest_value(folder, "parent_hash") == parent_hash


def parse_only(text: str | None) -> list[str]:
    """'quantize,prune' -> ['prune', 'quantize'] (run order); ValueError naming the valid names."""
    if not text:
        return list(BENCHES)
    names = {n.strip() for n in text.split(",") if n.strip()}
    unknown = sorted(names - set(BENCHES))
    if unknown or not names:
        raise ValueError(f"--only: unknown bench {', '.join(unknown) or repr(text)}; choose from {', '.join(BENCHES)}")
    return [b for b in BENCHES if b in names]


def fmt_seconds(s: float) -> str:
    """42 -> '42s', 125 -> '2m 05s', 3725 -> '1h 02m'."""
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def prerequisite(s: Setup, plan: BenchPlan, given: Path | None, flag: str, folder: Path, cmd: list[str]) -> Path:
    """The artifact a bench needs: the user's (--flag), a reusable one in `folder`, or a build job into it."""
    if given is not None:
        if not (given / "edgeslim.json").is_file():
            plan.error = f"{flag} {s.r(given)}: not an edgeslim artifact (no edgeslim.json)"
        plan.reused.append(f"{s.r(given)} (given by {flag})")
        return given
    if built_from(folder, s.teacher_hash):
        plan.reused.append(s.r(folder))
    else:
        plan.jobs.append(Job("build", cmd, makes=s.r(folder)))
    return folder


def plan_profile(s: Setup) -> BenchPlan:
    return BenchPlan("profile", [Job("bench", [s.python, "benchmarks/bench_profile.py", *PROFILE_ARGS])])


def plan_prune(s: Setup) -> BenchPlan:
    plan, out = BenchPlan("prune"), s.work / "prune-h50-f50"
    pruned = prerequisite(s, plan, s.pruned, "--pruned", out, [s.edgeslim, "-q", "prune", "--model", s.r(s.teacher),
                                                               *PRUNE_ARGS, "--out", s.r(out), "--json"])
    plan.jobs.append(Job("bench", [s.python, "benchmarks/bench_prune.py", "--teacher", s.r(s.teacher),
                                   "--pruned", s.r(pruned)]))
    return plan


def plan_export(s: Setup) -> BenchPlan:
    plan, out = BenchPlan("export"), s.work / "export"
    bundle = prerequisite(s, plan, s.bundle, "--bundle", out, [s.edgeslim, "export", "--model", s.r(s.teacher),
                                                               *EXPORT_ARGS, "--out", s.r(out), "--keep-going",
                                                               "--json"])
    plan.jobs.append(Job("bench", [s.python, "benchmarks/bench_export.py", "--bundle", s.r(bundle), "--source",
                                   s.r(s.teacher), "--name", f"bench_export-{teacher_slug(s.teacher, s.root)}"]))
    return plan


def optimum_pins() -> str:
    return "\n".join([OPTIMUM_TORCH, *OPTIMUM_REQUIREMENTS]) + "\n"


def plan_optimum_venv(s: Setup, plan: BenchPlan) -> None:
    """Reuse the Optimum venv, or add the jobs that make .venv-optimum (torch first so pip keeps the CPU build)."""
    py = s.optimum_python
    if s.optimum_given:
        if not py.is_file():
            plan.error = (f"no Optimum Python at {s.r(py)} (--optimum-python / ${OPTIMUM_ENV}); unset it to let this "
                          f"script create {OPTIMUM_VENV}")
        plan.reused.append(f"{s.r(py)} (given)")
        return
    venv = s.root / OPTIMUM_VENV
    stamp = venv / OPTIMUM_STAMP
    if stamp.is_file() and stamp.read_text() == optimum_pins() and py.is_file():
        plan.reused.append(f"{s.r(venv)} (Optimum venv)")
        return
    if not py.is_file():
        plan.jobs.append(Job("build", [s.python, "-m", "venv", s.r(venv)], lock=False))
    pip = [s.r(py), "-m", "pip", "install", "-q"]
    plan.jobs.append(Job("build", [*pip, OPTIMUM_TORCH]))
    plan.jobs.append(Job("build", [*pip, OPTIMUM_TORCH, *OPTIMUM_REQUIREMENTS], makes=f"{s.r(venv)} (Optimum venv)",
                         stamp=(stamp, optimum_pins())))


def plan_quantize(s: Setup) -> BenchPlan:
    plan, out = BenchPlan("quantize"), s.work / "quantize-auto"
    plan_optimum_venv(s, plan)
    quantized = prerequisite(s, plan, s.quantized, "--quantized", out, [s.edgeslim, "quantize", "--model",
                                                                        s.r(s.teacher), *QUANTIZE_ARGS, "--out",
                                                                        s.r(out)])
    plan.jobs.append(Job("bench", [s.python, "benchmarks/bench_quantize.py", "--teacher", s.r(s.teacher),
                                   "--edgeslim", s.r(quantized), "--optimum-python", s.r(s.optimum_python)]))
    return plan


def plan_distill(s: Setup) -> BenchPlan:
    """Train each variant without a student from this teacher (runs/distill/<name>), then print the table."""
    plan = BenchPlan("distill")
    for name in DISTILL_RUNS:
        folder = s.root / "runs" / "distill" / name
        if built_from(folder, s.teacher_hash):
            plan.reused.append(s.r(folder))
        elif (folder / "edgeslim.json").is_file():  # a run would overwrite it: keep the other teacher's student
            plan.reused.append(f"{s.r(folder)} (from another teacher: kept; move it away to retrain it)")
        else:
            plan.jobs.append(Job("bench", [s.python, "benchmarks/bench_distill.py", "run", name], makes=s.r(folder),
                                 stop_on_failure=False))
    plan.jobs.append(Job("bench", [s.python, "benchmarks/bench_distill.py", "table"], lock=False,
                         stop_on_failure=False))
    return plan


def plan_serve(s: Setup) -> BenchPlan:
    """The load test serves the demo's final model (runs/demo, which `make bench` makes first)."""
    plan = BenchPlan("serve")
    demo = s.root / "runs" / "demo"
    if not (demo / "lineage.json").is_file():
        plan.error = f"{s.r(demo)}: no optimize run there (no lineage.json); run `make demo` first"
    plan.jobs.append(Job("bench", [s.python, "benchmarks/bench_serve.py", "--model", s.r(demo), "--deadline-ms", "50"]))
    return plan


PLANNERS: dict[str, Callable[[Setup], BenchPlan]] = {"profile": plan_profile, "prune": plan_prune,
                                                     "export": plan_export, "quantize": plan_quantize,
                                                     "distill": plan_distill, "serve": plan_serve}


def plan_all(s: Setup, only: list[str]) -> list[BenchPlan]:
    return [PLANNERS[name](s) for name in only]


def command_line(job: Job, lock_cmd: list[str]) -> list[str]:
    return [*lock_cmd, *job.cmd] if job.lock else list(job.cmd)


def run_plans(plans: list[BenchPlan], root: Path, lock_cmd: list[str], env: dict[str, str],
              dry_run: bool) -> list[dict[str, Any]]:
    """Run (or with dry_run only print) every job in order; a failed bench does not stop the next one."""
    results = []
    for plan in plans:
        print(f"\n== {plan.name}", flush=True)
        for r in plan.reused:
            print(f"   reuse  {r}")
        res: dict[str, Any] = {"bench": plan.name, "status": "ok", "seconds": 0.0, "built": [],
                               "reused": list(plan.reused), "planned": [j.makes for j in plan.jobs if j.makes],
                               "ran": [], "failed": []}
        if plan.error:
            print(f"   error  {plan.error}", flush=True)
            res.update(status="failed", failed=[plan.error])
            results.append(res)
            continue
        t0 = time.perf_counter()
        for job in plan.jobs:
            line = command_line(job, lock_cmd)
            print(f"   {job.kind:<6} {shlex.join(line)}", flush=True)
            if job.stamp:
                print(f"          (then writes {rel(job.stamp[0], root)})")
            if dry_run:
                continue
            t = time.perf_counter()
            try:
                rc = subprocess.call(line, cwd=root, env=env)
            except OSError as exc:  # e.g. the Optimum venv's python was never made
                print(f"   cannot run: {exc}", file=sys.stderr)
                rc = 127
            secs = time.perf_counter() - t
            res["ran"].append({"cmd": shlex.join(line), "exit": rc, "seconds": round(secs, 1)})
            if rc != 0:
                print(f"   FAILED (exit {rc}, {fmt_seconds(secs)})", flush=True)
                res["failed"].append(f"exit {rc}: {shlex.join(line)}")
                if job.stop_on_failure:
                    break
                continue
            if job.stamp:
                job.stamp[0].write_text(job.stamp[1])
            if job.makes:
                res["built"].append(f"{job.makes} ({fmt_seconds(secs)})")
        res["seconds"] = round(time.perf_counter() - t0, 1)
        res["status"] = "failed" if res["failed"] else "planned" if dry_run else "ok"
        results.append(res)
    return results


def summary(results: list[dict[str, Any]], dry_run: bool) -> str:
    """Plain-text table: bench, status, wall time, what it built or reused; then every failure."""
    lines = [f"{'bench':<9} {'status':<8} {'wall':>8}  built / reused"]
    for r in results:
        made = [f"would build {b}" for b in r["planned"]] if dry_run else [f"built {b}" for b in r["built"]]
        what = made + [f"reused {u}" for u in r["reused"]] or ["-"]
        wall = "-" if dry_run else fmt_seconds(r["seconds"])
        lines.append(f"{r['bench']:<9} {r['status']:<8} {wall:>8}  {what[0]}")
        lines += [" " * 29 + w for w in what[1:]]
    failures = [(r["bench"], f) for r in results for f in r["failed"]]
    if failures:
        lines += ["", "failed:"] + [f"  {b}: {f}" for b, f in failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[4:]))
    ap.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(BENCHES)}")
    ap.add_argument("--dry-run", action="store_true", help="print every command it would run; build nothing")
    ap.add_argument("--teacher", default=None, help=f"fine-tuned teacher artifact [${TEACHER_ENV}, "
                                                    f"runs/teacher-sst2 if present, else runs/demo/01-finetune]")
    ap.add_argument("--optimum-python", default=None,
                    help=f"Python of a venv with Optimum [${OPTIMUM_ENV}, else {OPTIMUM_VENV}/bin/python, "
                         f"created when missing]")
    ap.add_argument("--pruned", default=None, help="use this edgeslim prune artifact instead of building one")
    ap.add_argument("--bundle", default=None, help="use this edgeslim export bundle instead of building one")
    ap.add_argument("--quantized", default=None, help="use this `edgeslim quantize --scheme auto` artifact")
    ap.add_argument("--no-lock", action="store_true", help=f"do not take {LOCK} per job")
    args = ap.parse_args(argv)
    try:
        only = parse_only(args.only)
    except ValueError as exc:
        ap.error(str(exc))

    try:
        teacher = resolve_teacher(args.teacher)
        teacher_note = f"content hash {(content_hash(teacher) or 'none')[:12]}"
    except SystemExit as exc:
        if only != ["profile"] and not args.dry_run:
            print(exc, file=sys.stderr)
            return 2
        teacher = Path(args.teacher).absolute() if args.teacher else default_teacher()
        teacher_note = "MISSING: `make demo` builds runs/demo/01-finetune" if only != ["profile"] else "not needed"
    python = Path(sys.executable)
    s = Setup(root=ROOT, teacher=teacher, python=rel(python), edgeslim=rel(python.parent / "edgeslim"),
              optimum_python=Path(args.optimum_python).absolute() if args.optimum_python else default_optimum_python(),
              optimum_given=bool(args.optimum_python or os.environ.get(OPTIMUM_ENV)),
              pruned=Path(args.pruned).absolute() if args.pruned else None,
              bundle=Path(args.bundle).absolute() if args.bundle else None,
              quantized=Path(args.quantized).absolute() if args.quantized else None)
    flock = shutil.which("flock")
    lock_cmd = ["flock", LOCK] if flock and not args.no_lock else []
    env = dict(os.environ, **{TEACHER_ENV: str(s.teacher), OPTIMUM_ENV: str(s.optimum_python)})

    print(f"teacher: {s.r(s.teacher)} ({teacher_note})")
    print(f"prerequisites: {s.r(s.work)}/")
    print(f"optimum python: {s.r(s.optimum_python)}" + (" (given)" if s.optimum_given else ""))
    print(f"lock: {'flock ' + LOCK + ' around each heavy job' if lock_cmd else 'none'}"
          + ("" if flock or args.no_lock else " (flock not found)"))
    print(f"commands run in {s.root} with {TEACHER_ENV}={s.r(s.teacher)} {OPTIMUM_ENV}={s.r(s.optimum_python)}")
    t0 = time.perf_counter()
    results = run_plans(plan_all(s, only), s.root, lock_cmd, env, args.dry_run)
    total = time.perf_counter() - t0

    print("\n== summary" + (" (dry run: nothing was built or run)" if args.dry_run else f" ({fmt_seconds(total)})"))
    print(summary(results, args.dry_run))
    if not args.dry_run:
        out = s.root / "benchmarks" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "run_all.json").write_text(json.dumps({"teacher": s.r(s.teacher), "seconds": round(total, 1),
                                                      "results": results}, indent=2) + "\n")
    return 1 if any(r["status"] == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
