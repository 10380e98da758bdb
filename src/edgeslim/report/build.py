"""Build the run report from a run folder: read lineage.json, the steps' folders (manifests, `metrics.json`,
`quantize_report.json`), the validate step's metrics and `optimize.json` into facts labelled measured, predicted or
analytic, then render report.html (self-contained) and report.md (PNGs in report-files/).

Nothing here re-runs a model: measured figures are read from the run; predicted ones come from the run or, where the
run has none, from the roofline model (`profile_artifact` with measure off), and say so.
"""
from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._compat import require
from ..artifact import MANIFEST, ModelArtifact, folder_bytes
from ..errors import DataError, EdgeslimError
from ..fileio import atomic_dir, write_text

LINEAGE = "lineage.json"
METRICS = "metrics.json"            # an analysis step's output (pipeline.METRICS_FILE)
QUANTIZE_REPORT = "quantize_report.json"
OPTIMIZE = "optimize.json"
RECIPE = "recipe.yaml"
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
REPORT_FILES = "report-files"
DEFAULT_SEQ_LEN = 128
NOT_SCORES = {"fp32", "drop_points", "sqnr_db", "n", "seconds", "examples", "batch_size", "limit", "max_length"}
# libraries always listed in the environment section, besides edgeslim's own declared requirements
LIBRARIES = ("edgeslim", "torch", "transformers", "tokenizers", "safetensors", "onnx", "onnxruntime", "onnxscript",
             "numpy", "scipy", "executorch", "torchao", "litert-torch", "ai-edge-litert", "coremltools", "pillow",
             "matplotlib", "jinja2", "pyyaml", "typer", "rich")


# ---------------------------------------------------------------------------------------------------- formatting
# One rule per kind of number, shared by both templates (tests/report checks the HTML against the run's JSON).

def fmt_bytes(n: Any) -> str:
    """Bytes as kB below 1 MB, else MB (decimal units)."""
    if not isinstance(n, (int, float)):
        return "—"
    return f"{n / 1e3:.1f} kB" if n < 1e6 else f"{n / 1e6:.2f} MB"


def fmt_num(v: Any) -> str:
    """A latency or energy: 3 decimals below 1, 2 below 100, else none."""
    if not isinstance(v, (int, float)):
        return "—"
    return f"{v:.3f}" if abs(v) < 1 else f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"


def fmt_ms(v: Any) -> str:
    return "—" if not isinstance(v, (int, float)) else f"{fmt_num(v)} ms"


def fmt_mj(v: Any) -> str:
    return "—" if not _number(v) else f"{fmt_num(v)} mJ"


def fmt_metric(v: Any) -> str:
    return "—" if not isinstance(v, (int, float)) else f"{v:.4f}"


def fmt_int(v: Any) -> str:
    return "—" if not isinstance(v, (int, float)) else f"{int(v):,}"


def fmt_ratio(v: Any, what: str) -> str:
    """A teacher/final ratio: "2.50× smaller"; below 1 the model got worse, and the text says so."""
    if not isinstance(v, (int, float)):
        return "—"
    return f"{v:.2f}× {what}" if v >= 1 else f"{v:.2f}× (not {what})"


def short(h: Any) -> str:
    return str(h)[:8] if h else "—"


# ---------------------------------------------------------------------------------------------------- facts

@dataclass(frozen=True)
class Latency:
    """One latency figure and how it was obtained."""

    ms: float
    label: str               # "measured" | "predicted"
    where: str               # "onnxruntime, this host" | a hardware profile name
    conditions: str          # "p50, batch 1, seq 16, 2 threads"
    step: str                # the step folder it comes from; "report" when the report predicted it

    def text(self) -> str:
        return f"{fmt_ms(self.ms)} {self.label}"

    def detail(self) -> str:
        return f"{self.where}; {self.conditions}; from {self.step}"


@dataclass(frozen=True)
class Score:
    """One metric value of a model on a named split."""

    value: float
    name: str                # "accuracy"
    split: str               # "dev", "screen subset", ...
    step: str

    def text(self) -> str:
        return f"{self.name} {fmt_metric(self.value)} measured"

    def detail(self) -> str:
        return f"{self.split}; from {self.step}"


@dataclass
class Model:
    """Everything the run records about one artifact (by content hash)."""

    hash: str
    made_by: str                          # "source" or the folder of the step that wrote it
    path: Path | None = None
    format: str = ""
    precision: str = "fp32"
    parent: str | None = None
    size_bytes: int | None = None
    params: int | None = None
    scores: list[Score] = field(default_factory=list)
    measured: list[Latency] = field(default_factory=list)
    predicted: list[Latency] = field(default_factory=list)
    energy_mj: dict[str, float] = field(default_factory=dict)   # predicted, per hardware profile
    measured_by: list[str] = field(default_factory=list)        # analysis steps run on it

    def best_score(self, step: str | None = None) -> Score | None:
        """The reporting score (dev if any, else the latest), of one step's scores when `step` is given."""
        return pick_score([s for s in self.scores if step is None or s.step == step])

    def fastest_measured(self) -> Latency | None:
        return min(self.measured, key=lambda m: m.ms) if self.measured else None

    def predicted_on(self, target: str | None) -> Latency | None:
        rows = [p for p in self.predicted if p.where == target]
        return rows[0] if rows else None


@dataclass(frozen=True)
class Record:
    """One lineage.json entry with its step folder resolved and its own metrics (an analysis step's added ones)."""

    index: int
    step: str
    folder: str                           # "03-prune"; "source" for the input
    analysis: bool
    hash: str
    parent: str | None
    options: dict[str, Any]
    metrics: dict[str, Any]               # what this step recorded
    cached: bool | None
    seconds: float | None
    path: Path | None


@dataclass
class Run:
    """A run folder read into records and models; `target` and `seq_len` are what predictions are made for."""

    dir: Path
    records: list[Record]
    models: dict[str, Model]
    task: str | None
    target: str | None
    seq_len: int
    validate: dict[str, Any] | None
    optimize: dict[str, Any] | None
    recipe_text: str | None
    quantize_reports: dict[str, dict[str, Any]]      # step folder -> quantize_report.json
    notes: list[str] = field(default_factory=list)   # why a section is missing

    @property
    def final(self) -> Model | None:
        h = ((self.validate or {}).get("final") or {}).get("hash")
        if h in self.models:
            return self.models[h]
        return self.models[self.records[-1].hash] if self.records and self.records[-1].hash in self.models else None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {what} {path}: {exc}. Re-run the recipe (finished steps are reused) or "
                        "delete the file") from exc


def _optional_json(path: Path) -> Any:
    """A file the report can do without: None when absent or unreadable."""
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def _primary_metric(task: str | None) -> str | None:
    if not task:
        return None
    try:
        from ..tasks import get_task

        return get_task(task).primary
    except EdgeslimError:
        return None


def pick_score(scores: list[Score]) -> Score | None:
    """Dev (the reporting split) if any, else the latest."""
    dev = [s for s in scores if s.split.split(",")[0] == "dev"]
    return (dev or scores or [None])[-1]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def scores_in(metrics: dict[str, Any], step: str, task: str | None) -> list[Score]:
    """Scores a step recorded: `<task>/<split>` entries (eval, quantize) and a top-level primary metric with an
    `eval` record naming its split (prune, distill)."""
    out = []
    for key, val in metrics.items():
        if isinstance(val, dict) and "/" in key:
            t, split = key.split("/", 1)
            name = _primary_metric(t)
            if not (name and _number(val.get(name))):
                name = next((k for k, v in val.items() if _number(v) and k not in NOT_SCORES), None)
            if name:
                out.append(Score(float(val[name]), name, split, step))
    name = _primary_metric(task)
    if name and _number(metrics.get(name)):
        ev = metrics.get("eval") if isinstance(metrics.get("eval"), dict) else {}
        out.append(Score(float(metrics[name]), name, str(ev.get("split", "dev")), step))
    return out


def _trust_note(row: dict[str, Any], key: str = "trust_label") -> str:
    """"; trust: ±41% vs 6 published rows" for a prediction that records its trust (runs before issue #20 do not)."""
    return f"; trust: {row[key]}" if row.get(key) else ""


def _profile_facts(p: dict[str, Any], step: str, model: Model) -> None:
    m = p.get("measured") or {}
    for rt, st in (m.get("runtimes") or {}).items():
        if _number(st.get("p50_ms")):
            model.measured.append(Latency(float(st["p50_ms"]), "measured", f"{rt}, this host",
                                          f"p50, batch {m.get('batch')}, seq {m.get('seq_len')}, "
                                          f"{m.get('threads')} threads", step))
    for name, row in (p.get("hardware") or {}).items():
        if isinstance(row, dict) and _number(row.get("latency_ms")):
            model.predicted.append(Latency(float(row["latency_ms"]), "predicted", name,
                                           f"batch {row.get('batch', p.get('batch'))}, seq "
                                           f"{row.get('seq_len', p.get('seq_len'))}, {row.get('precision')}"
                                           f"{_trust_note(row)}", step))
            if _number(row.get("energy_mj")):
                model.energy_mj.setdefault(name, float(row["energy_mj"]))
    params = (p.get("cost") or {}).get("params")
    if model.params is None and _number(params):
        model.params = int(params)


def _validate_facts(v: dict[str, Any], step: str, models: dict[str, Model], fallback_hash: str) -> None:
    final_h = (v.get("final") or {}).get("hash") or fallback_hash
    teacher_h = (v.get("teacher") or {}).get("hash")
    for which, h in (("final", final_h), ("teacher", teacher_h)):
        if not h:
            continue
        model = models.setdefault(h, Model(hash=h, made_by=which))
        facts = v.get(which) or {}
        if _number(facts.get("size_bytes")) and model.size_bytes is None:
            model.size_bytes = int(facts["size_bytes"])
        if _number(facts.get("params")):
            model.params = int(facts["params"])
        if _number(facts.get("metric_batch1")) and v.get("metric_name"):
            model.scores.append(Score(float(facts["metric_batch1"]), str(v["metric_name"]), str(v.get("split", "dev")),
                                      step))
    lat = v.get("latency") or {}
    cond = f"p50, batch {lat.get('batch')}, seq {lat.get('seq_len')}, {lat.get('threads')} threads"
    for name, st in (lat.get("models") or {}).items():
        h = final_h if name == "final" else teacher_h if name.startswith("teacher") else None
        if h and isinstance(st, dict) and _number(st.get("p50_ms")):
            rt = (v.get("final") or {}).get("runtime", "final runtime") if name == "final" else name.split("-", 1)[-1]
            models[h].measured.append(Latency(float(st["p50_ms"]), "measured", f"{rt}, this host", cond, step))
    for prof, row in (v.get("predicted") or {}).items():
        if not isinstance(row, dict):
            continue
        cond_p = f"batch 1, seq {lat.get('seq_len', '?')}, {row.get('precision')}{_trust_note(row)}"
        if _number(row.get("latency_ms")):
            models[final_h].predicted.insert(0, Latency(float(row["latency_ms"]), "predicted", prof, cond_p, step))
        if _number(row.get("energy_mj")):
            models[final_h].energy_mj[prof] = float(row["energy_mj"])
        if teacher_h and _number(row.get("teacher_latency_ms")):
            models[teacher_h].predicted.insert(0, Latency(float(row["teacher_latency_ms"]), "predicted", prof,
                                                          f"batch 1, seq {lat.get('seq_len', '?')}"
                                                          f"{_trust_note(row, 'teacher_trust_label')}", step))


def _resolve(run_dir: Path, folder: str, recorded: Any) -> Path | None:
    """The artifact folder: the step's folder in this run (which may have moved), else the recorded path."""
    local = run_dir / folder
    if folder != "source" and local.is_dir():
        return local
    p = Path(str(recorded)) if recorded else None
    return p if p is not None and p.exists() else None


def load_run(run_dir: str | Path) -> Run:
    """Read a run folder into records and models; raises DataError naming the problem and the fix."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise DataError(f"run folder not found: {run_dir}. Pass the folder a recipe ran into "
                        "(`edgeslim run recipe.yaml --out DIR`)")
    if not run_dir.is_dir():
        raise DataError(f"{run_dir} is a file, not a run folder. Pass the folder given to `edgeslim run --out`")
    lineage_file = run_dir / LINEAGE
    if not lineage_file.is_file():
        raise DataError(f"{run_dir} has no {LINEAGE}, so it is not a run folder (or no step has finished yet). "
                        f"Run a recipe into it first: edgeslim run recipe.yaml --out {run_dir}")
    lineage = _read_json(lineage_file, "lineage")
    if not isinstance(lineage, list) or not lineage or not all(isinstance(r, dict) and "step" in r for r in lineage):
        raise DataError(f"{lineage_file} is not a list of step records (step, path, hash, ...). Re-run the recipe "
                        "to rewrite it (finished steps are reused)")

    records: list[Record] = []
    prev_metrics: dict[str, Any] = {}
    prev_hash = None
    for i, r in enumerate(lineage):
        folder = "source" if i == 0 else f"{i:02d}-{r['step']}"
        step_dir = run_dir / folder
        saved = _optional_json(step_dir / METRICS) if i else None
        analysis = i > 0 and ((saved is not None and not (step_dir / MANIFEST).is_file())
                              or (not step_dir.is_dir() and r.get("hash") == prev_hash))
        metrics = r.get("metrics") or {}
        if analysis:
            own = saved.get("metrics") if isinstance(saved, dict) else None
            own = own if isinstance(own, dict) else {k: v for k, v in metrics.items() if prev_metrics.get(k) != v}
        else:
            own = metrics
        records.append(Record(index=i, step=str(r["step"]), folder=folder, analysis=analysis,
                              hash=str(r.get("hash") or ""), parent=r.get("parent"), options=r.get("options") or {},
                              metrics=own, cached=r.get("cached"), seconds=r.get("seconds"),
                              path=None if analysis else _resolve(run_dir, folder, r.get("path"))))
        prev_metrics, prev_hash = metrics, r.get("hash")

    models: dict[str, Model] = {}
    task = None
    for rec in records:
        if rec.analysis:
            continue
        model = models.setdefault(rec.hash, Model(hash=rec.hash, made_by=rec.folder))
        model.path = model.path or rec.path
        model.parent = rec.parent
        if rec.path is not None and (rec.path / MANIFEST).is_file():
            try:
                art = ModelArtifact.load(rec.path)
                model.format, task = art.format, task or art.task
                model.precision = str(art.extra.get("precision") or "fp32")
            except EdgeslimError:
                pass
        elif rec.path is not None and (rec.path / "config.json").is_file():
            model.format = "hf"
        if rec.path is not None:
            model.size_bytes = folder_bytes(rec.path)
    if task is None:
        keys = [k for rec in records for k, v in rec.metrics.items() if isinstance(v, dict) and "/" in k]
        task = keys[0].split("/", 1)[0] if keys else None

    validate = None
    quantize_reports: dict[str, dict[str, Any]] = {}
    for rec in records:
        model = models.setdefault(rec.hash, Model(hash=rec.hash, made_by=rec.folder))
        if rec.analysis:
            model.measured_by.append(rec.folder)
        model.scores.extend(scores_in(rec.metrics, rec.folder, task))
        if isinstance(rec.metrics.get("profile"), dict):
            _profile_facts(rec.metrics["profile"], rec.folder, model)
        prune = rec.metrics.get("prune")
        if isinstance(prune, dict) and _number((prune.get("after") or {}).get("params")):
            model.params = int(prune["after"]["params"])
        if rec.step == "quantize" and not rec.analysis:
            if _number(rec.metrics.get("latency_p50_ms")):
                model.measured.append(Latency(float(rec.metrics["latency_p50_ms"]), "measured",
                                              "onnxruntime, this host",
                                              f"p50, batch 1, seq {rec.options.get('latency_seq_len', '?')}",
                                              rec.folder))
            q = _optional_json(rec.path / QUANTIZE_REPORT) if rec.path else None
            if isinstance(q, dict):
                quantize_reports[rec.folder] = q
        if isinstance(rec.metrics.get("validate"), dict):
            validate = rec.metrics["validate"]
            _validate_facts(validate, rec.folder, models, rec.hash)

    optimize = _optional_json(run_dir / OPTIMIZE)
    recipe_file = run_dir / RECIPE
    recipe_text = recipe_file.read_text() if recipe_file.is_file() else None
    run = Run(dir=run_dir, records=records, models=models, task=task, target=None, seq_len=DEFAULT_SEQ_LEN,
              validate=validate, optimize=optimize if isinstance(optimize, dict) else None, recipe_text=recipe_text,
              quantize_reports=quantize_reports)
    run.target, run.seq_len = _target(run)
    _predict_missing(run)
    return run


def _target(run: Run) -> tuple[str | None, int]:
    """The hardware profile predictions are for (validate's target, the optimize goal's, else the last profile
    step's first) and the sequence length (validate's latency, else that profile step's, else 128)."""
    v = run.validate or {}
    target = v.get("target")
    seq = (v.get("latency") or {}).get("seq_len")
    goal = (run.optimize or {}).get("goal") or {}
    if not target and isinstance(goal, dict):
        hw = goal.get("target") or goal.get("hardware")
        target = hw[0] if isinstance(hw, list) and hw else hw if isinstance(hw, str) else None
    for rec in reversed(run.records):
        if rec.step == "profile":
            hw = rec.options.get("hardware") or []
            hw = [hw] if isinstance(hw, str) else [h for h in hw if h != "all"]
            if not target and hw:
                target = hw[0]
            seq = seq or rec.options.get("seq_len")
            break
    return target, int(seq) if _number(seq) else DEFAULT_SEQ_LEN


def _artifact(model: Model) -> ModelArtifact | None:
    if model.path is None:
        return None
    try:
        if (model.path / MANIFEST).is_file():
            return ModelArtifact.load(model.path)
        return ModelArtifact(path=model.path, format="hf", content_hash=model.hash)
    except EdgeslimError:
        return None


def predict_on(art: ModelArtifact, target: str, seq_len: int, precision: str = "auto") -> dict[str, Any] | None:
    """The roofline model's prediction for `art` on `target` (profile_artifact, nothing measured), or None when
    the artifact's shape or the profile is unavailable."""
    from ..profile.step import ProfileConfig, profile_artifact

    try:
        cfg = ProfileConfig(hardware=(target,), seq_len=seq_len, precision=precision, measure=False)
        report = profile_artifact(art, cfg)
    except (EdgeslimError, OSError, ValueError, KeyError):
        return None
    row = report["hardware"].get(target) or {}
    return {**row, "params": report["cost"]["params"]} if _number(row.get("latency_ms")) else None


def _predict_missing(run: Run) -> None:
    """A predicted latency on the target for every model the run did not predict there (at the report's seq_len)."""
    if not run.target:
        run.notes.append("No target hardware: the run has no validate or profile step, so nothing is predicted. "
                         "Add `- profile: {hardware: [<profile>]}` to the recipe.")
        return
    for model in run.models.values():
        if model.predicted_on(run.target) is not None and model.params is not None:
            continue
        art = _artifact(model)
        row = predict_on(art, run.target, run.seq_len) if art is not None else None
        if row is None:
            continue
        if model.predicted_on(run.target) is None:
            model.predicted.append(Latency(float(row["latency_ms"]), "predicted", run.target,
                                           f"batch 1, seq {run.seq_len}, {row.get('precision')}{_trust_note(row)}",
                                           "report"))
            if _number(row.get("energy_mj")):
                model.energy_mj.setdefault(run.target, float(row["energy_mj"]))
        if model.params is None and _number(row.get("params")):
            model.params = int(row["params"])


# ---------------------------------------------------------------------------------------------------- sections

def headline(run: Run) -> dict[str, Any] | None:
    """Teacher -> final, from the validate step's metrics; None when the run has no validate step."""
    v = run.validate
    if not v:
        return None
    f, t = v.get("final") or {}, v.get("teacher") or {}
    lat = v.get("latency") or {}
    models = lat.get("models") or {}
    speed = lat.get("speedup") or {}
    ratios = v.get("ratios") or {}
    target = v.get("target")
    pred = (v.get("predicted") or {}).get(target) or {}
    metric = v.get("metric_name") or "metric"
    cond = f"batch {lat.get('batch', 1)}, seq {lat.get('seq_len', '?')}, {lat.get('threads', '?')} threads"
    drop = ratios.get("drop_points")

    def p50(name: str) -> Any:
        return (models.get(name) or {}).get("p50_ms")

    rows = [
        {"key": "size", "quantity": "size on disk", "basis": "measured",
         "teacher": fmt_bytes(t.get("size_bytes")), "final": fmt_bytes(f.get("size_bytes")),
         "change": fmt_ratio(ratios.get("size"), "smaller")},
        {"key": "params", "quantity": "parameters", "basis": "analytic" if "analytic" in str(v.get("params_label", ""))
         else "counted",
         "teacher": fmt_int(t.get("params")), "final": fmt_int(f.get("params")),
         "change": fmt_ratio(ratios.get("params"), "fewer")},
        {"key": "metric", "quantity": f"{metric} ({v.get('split', 'dev')}, batch 1)", "basis": "measured",
         "teacher": fmt_metric(t.get("metric_batch1")), "final": fmt_metric(f.get("metric_batch1")),
         "change": "—" if not _number(drop) else f"{drop:.2f} points lower" if drop >= 0 else
         f"{-drop:.2f} points higher"},
        {"key": "latency_pytorch", "quantity": f"host latency p50 vs teacher in PyTorch ({cond})",
         "basis": "measured", "teacher": fmt_ms(p50("teacher-pytorch")), "final": fmt_ms(p50("final")),
         "change": fmt_ratio(speed.get("vs_teacher_pytorch"), "faster")},
        {"key": "latency_onnxruntime", "quantity": f"host latency p50 vs teacher in ONNX Runtime ({cond})",
         "basis": "measured", "teacher": fmt_ms(p50("teacher-onnxruntime")), "final": fmt_ms(p50("final")),
         "change": fmt_ratio(speed.get("vs_teacher_onnxruntime"), "faster")},
        {"key": "device_latency", "quantity": f"device latency on {target or '—'} ({pred.get('precision', '?')}; "
         f"trust: {pred.get('trust_label', 'unchecked')})",
         "basis": "predicted", "teacher": fmt_ms(pred.get("teacher_latency_ms")), "final": fmt_ms(pred.get("latency_ms")),
         "change": "—"},
        {"key": "device_energy", "quantity": f"energy per inference on {target or '—'}", "basis": "predicted",
         "teacher": fmt_mj(pred.get("teacher_energy_mj")), "final": fmt_mj(pred.get("energy_mj")), "change": "—"},
    ]
    err = v.get("predictor_error")
    if isinstance(err, dict):
        rows.append({"key": "predictor_error", "quantity": f"predictor error on {err.get('profile', 'host')} "
                     f"(predicted {fmt_ms(err.get('predicted_ms'))} vs measured {fmt_ms(err.get('measured_ms'))})",
                     "basis": "measured", "teacher": "—",
                     "final": "—" if not _number(err.get("error_pct")) else f"{err['error_pct']:+.1f}%",
                     "change": "—"})
    d = v.get("deadline") or {}
    verdict = None
    if d:
        rng = d.get("latency_range_ms")
        band = (f"; could be {fmt_ms(rng[0])}–{fmt_ms(rng[1])}, trust: {d.get('trust_label')}"
                if isinstance(rng, list) and len(rng) == 2 else "")
        verdict = {"verdict": str(d.get("verdict", "—")), "ok": d.get("verdict") == "meets",
                   "text": f"{d.get('verdict', '—')} the {fmt_ms(d.get('deadline_ms'))} deadline on "
                           f"{d.get('target', target)}: {fmt_ms(d.get('latency_ms'))} ({d.get('basis', '?')}{band})"}
        rows.append({"key": "deadline", "quantity": f"real-time verdict ({fmt_ms(d.get('deadline_ms'))} deadline on "
                     f"{d.get('target', target)})", "basis": d.get("label") or _basis_of(str(d.get("basis", ""))),
                     "teacher": "—", "final": f"{d.get('verdict', '—')}: {fmt_ms(d.get('latency_ms'))}"
                     + (f" ({fmt_ms(rng[0])}–{fmt_ms(rng[1])})" if band else ""),
                     "change": "—"})
    return {"task": v.get("task"), "metric_name": metric, "target": target, "rows": rows, "verdict": verdict,
            "selection_note": v.get("selection_note"),
            "final": {"path": f.get("path"), "hash": short(f.get("hash")), "format": f.get("format"),
                      "runtime": f.get("runtime"), "precision": f.get("precision")},
            "teacher": {"path": t.get("path"), "hash": short(t.get("hash"))},
            "other_devices": [{"profile": name, "precision": row.get("precision"),
                               "latency": fmt_ms(row.get("latency_ms")), "teacher": fmt_ms(row.get("teacher_latency_ms")),
                               "energy": fmt_mj(row.get("energy_mj")), "trust": row.get("trust_label", "unchecked")}
                              for name, row in (v.get("predicted") or {}).items() if isinstance(row, dict)]}


def _basis_of(text: str) -> str:
    return "measured" if "measured" in text else "predicted" if "predict" in text else text or "—"


def _cell(fact: Latency | Score | None) -> dict[str, str]:
    """A table cell: the figure with its label, and where it comes from (smaller)."""
    if fact is None:
        return {"text": "—", "detail": ""}
    return {"text": fact.text(), "detail": fact.detail()}


def step_rows(run: Run) -> list[dict[str, Any]]:
    """One row per lineage record: the model it produced or measured, and what this step recorded about it."""
    rows = []
    for rec in run.records:
        model = run.models.get(rec.hash) or Model(hash=rec.hash, made_by=rec.folder)
        score = model.best_score(rec.folder) or model.best_score()
        own_meas = [m for m in model.measured if m.step == rec.folder]
        meas = min(own_meas, key=lambda m: m.ms) if own_meas else model.fastest_measured()
        pred = next((p for p in model.predicted if p.step == rec.folder and p.where == run.target), None)
        pred = pred or model.predicted_on(run.target)
        rows.append({"step": rec.step, "folder": rec.folder, "kind": "analysis" if rec.analysis else
                     ("input" if rec.index == 0 else "model"), "hash": short(rec.hash),
                     "params": fmt_int(model.params), "size": fmt_bytes(model.size_bytes),
                     "metric": _cell(score), "measured": _cell(meas), "predicted": _cell(pred),
                     "seconds": "—" if rec.seconds is None else f"{rec.seconds:.1f}",
                     "cached": "—" if rec.cached is None else ("yes" if rec.cached else "no")})
    return rows


def _candidate_metric(c: dict[str, Any], search: dict[str, Any]) -> tuple[float | None, str]:
    """A search candidate's metric, on the split the search compared candidates on (so they compare with each
    other): the selection split (`select_*`), else `dev_*` (reports before the split was carved from train, when
    dev selected), else the screening subset."""
    select = ((search.get("evaluated_on") or {}).get("select") or {}).get("split", "val")
    for key, split in (("select_metric", f"{select} (selection split)"), ("dev_metric", "dev"),
                       ("screen_metric", "screening subset")):
        if _number(c.get(key)):
            return float(c[key]), split
    return None, ""


PRECISION_OF = {"fp16": "fp16"}   # every other quantize precision tag (int8-*, mixed) is costed as int8


def candidates(run: Run) -> list[dict[str, Any]]:
    """Every candidate the run made: each model step's artifact and each quantize search candidate."""
    final = run.final
    out: list[dict[str, Any]] = []
    searched: dict[str, str] = {}        # quantize artifact hash -> its step folder (shown as the chosen candidate)
    for folder, q in run.quantize_reports.items():
        if isinstance(q.get("search"), dict) and q["search"].get("candidates"):
            rec = next(r for r in run.records if r.folder == folder)
            searched[rec.hash] = folder
    for model in run.models.values():
        if model.hash in searched or (model.path is None and model.made_by in ("final", "teacher")):
            continue
        score = model.best_score()
        out.append({"label": model.made_by, "kind": "artifact", "score": score, "measured": model.fastest_measured(),
                    "predicted": model.predicted_on(run.target), "size_bytes": model.size_bytes,
                    "size_what": "artifact folder", "chosen": False, "final": final is model})
    for folder, q in run.quantize_reports.items():
        search = q.get("search") or {}
        rec = next(r for r in run.records if r.folder == folder)
        art = _artifact(run.models[rec.hash]) if rec.hash in run.models else None
        seq = (search.get("latency") or {}).get("seq_len", "?")
        for c in search.get("candidates") or []:
            value, split = _candidate_metric(c, search)
            name = str(c.get("scheme"))
            chosen = name == search.get("chosen")
            pred = None
            if chosen and rec.hash in run.models:
                pred = run.models[rec.hash].predicted_on(run.target)
            elif art is not None and run.target:
                precision = PRECISION_OF.get(str(c.get("precision")), "int8")
                row = predict_on(art, run.target, run.seq_len, precision)
                if row:
                    pred = Latency(float(row["latency_ms"]), "predicted", run.target,
                                   f"batch 1, seq {run.seq_len}, {row.get('precision')}{_trust_note(row)}", "report")
            meas = (Latency(float(c["latency_p50_ms"]), "measured", "onnxruntime, this host",
                            f"p50, batch 1, seq {seq}, paired rounds", folder)
                    if _number(c.get("latency_p50_ms")) else None)
            score = Score(value, str((search.get("fp32") or {}).get("metric_name", "metric")), split, folder) \
                if value is not None else None
            out.append({"label": f"{folder}: {name}", "kind": "quantize candidate", "score": score,
                        "measured": meas, "predicted": pred, "size_bytes": c.get("size_bytes"),
                        "size_what": ".onnx file", "chosen": chosen,
                        "final": chosen and final is not None and final.hash == rec.hash})
    return out


def pareto_basis(points: list[dict[str, Any]], target: str | None) -> tuple[str | None, str | None]:
    """Which latency the plot uses: measured when at least two candidates have it, else predicted on the target."""
    scored = [p for p in points if p["score"] is not None]
    if sum(p["measured"] is not None for p in scored) >= 2:
        return "measured", "latency p50 (ms), measured on this host, batch 1"
    if any(p["predicted"] is not None for p in scored):
        return "predicted", f"latency (ms), predicted on {target}, batch 1"
    return None, None


def environment(run: Run) -> dict[str, Any]:
    """Library versions and CPU facts of the machine building the report, and what the run itself recorded."""
    from ..measure import host_facts

    names = list(LIBRARIES)
    try:
        for req in importlib.metadata.requires("edgeslim") or []:
            if "extra == \"dev\"" in req or "extra == \"all\"" in req:
                continue
            name = re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].strip().lower()
            if name and name not in names:
                names.append(name)
    except importlib.metadata.PackageNotFoundError:
        pass
    versions = []
    for name in names:
        try:
            versions.append({"name": name, "version": importlib.metadata.version(name)})
        except importlib.metadata.PackageNotFoundError:
            versions.append({"name": name, "version": "not installed"})
    recorded, threads = None, []
    for rec in run.records:
        prof = rec.metrics.get("profile") if isinstance(rec.metrics.get("profile"), dict) else {}
        meas = prof.get("measured") or {}
        if meas.get("host") and recorded is None:
            recorded = {"step": rec.folder, **meas["host"]}
        if meas.get("threads"):
            threads.append(f"{meas['threads']} ({rec.folder}, measured latency)")
        lat = (rec.metrics.get("validate") or {}).get("latency") if isinstance(rec.metrics.get("validate"), dict) \
            else None
        if isinstance(lat, dict) and lat.get("threads"):
            threads.append(f"{lat['threads']} ({rec.folder}, measured latency)")
    for folder, q in run.quantize_reports.items():
        host = (((q.get("search") or {}).get("latency") or {}).get("comparison") or {}).get("host")
        if host and recorded is None:
            recorded = {"step": folder, **host}
    seed, recipe_threads = _recipe_setting(run, "seed"), _recipe_setting(run, "threads")
    if recipe_threads is not None:
        threads.insert(0, f"{recipe_threads} (recipe)")
    here = host_facts()
    return {"recorded": recorded, "here": {**here, "cpu_flags": ", ".join(here.get("cpu_flags") or []) or "none",
                                           "platform": platform.platform()},
            "recorded_flags": ", ".join((recorded or {}).get("cpu_flags") or []) or "none",
            "versions": versions, "seed": "not recorded (no recipe.yaml in the run folder)" if seed is None else seed,
            "threads": threads or ["not recorded"],
            "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}}


def _recipe_setting(run: Run, key: str) -> Any:
    if run.recipe_text:
        import yaml

        try:
            data = yaml.safe_load(run.recipe_text)
        except yaml.YAMLError:
            return None
        if isinstance(data, dict):
            return data.get(key, 0 if key == "seed" else 2 if key == "threads" else None)
    return None


def recipe_view(run: Run) -> dict[str, str]:
    """The recipe: recipe.yaml as written, else the steps and options rebuilt from lineage.json."""
    if run.recipe_text is not None:
        return {"source": f"{RECIPE} in the run folder", "text": run.recipe_text}
    import yaml

    src = run.records[0]
    data = {"model": str(src.path or "?"), "task": run.task,
            "steps": [{r.step: r.options} for r in run.records[1:]]}
    return {"source": f"rebuilt from {LINEAGE} (no {RECIPE} in the run folder; seed and threads are not recorded)",
            "text": yaml.safe_dump(data, sort_keys=False, default_flow_style=None)}


def lineage_view(run: Run) -> list[dict[str, Any]]:
    """Each model of the run, the model it was made from, and the analysis steps that measured it."""
    rows = []
    for rec in run.records:
        if rec.analysis:
            continue
        model = run.models[rec.hash]
        parent = run.models.get(rec.parent or "")
        rows.append({"folder": rec.folder, "step": rec.step, "hash": short(rec.hash), "format": model.format or "?",
                     "precision": model.precision, "parent": short(rec.parent),
                     "parent_folder": parent.made_by if parent else ("" if not rec.parent else "outside this run"),
                     "measured_by": ", ".join(model.measured_by) or "—"})
    return rows


def splits_view(run: Run) -> list[str]:
    """Which data each metric in the report comes from."""
    notes = []
    note = (run.validate or {}).get("selection_note")
    if note:
        notes.append(str(note))
    seen = sorted({s.split.split(",")[0] for m in run.models.values() for s in m.scores})
    if seen:
        notes.append("Metrics in this report are on: " + ", ".join(seen) + ".")
    for folder, q in run.quantize_reports.items():
        search = q.get("search") or {}
        ev = search.get("evaluated_on") or {}
        if ev:
            parts = [f"{k}: {d.get('examples', '?')} examples" + (f" of {d['split']}" if d.get("split") else "") +
                     f", batch {d.get('batch_size', '?')}" for k, d in ev.items() if isinstance(d, dict)]
            notes.append(f"The quantize search ({folder}) scored candidates on " + "; ".join(parts) + "." +
                         (f" {search['selection'][:1].upper()}{search['selection'][1:]}." if search.get("selection")
                          else ""))
    return notes


def optimize_view(run: Run) -> dict[str, Any] | None:
    """The optimize goal and outcome (optimize.json), with every missed constraint."""
    o = run.optimize
    if not o:
        return None
    outcome = o.get("outcome") or {}
    status = str(outcome.get("status", "unknown"))
    def row(c: dict[str, Any]) -> dict[str, Any]:
        return {k: "—" if c.get(k) is None else c[k] for k in ("constraint", "limit", "value", "by", "unit", "label",
                                                                 "basis", "detail")}

    failed = [row(f) for f in outcome.get("failed") or [] if isinstance(f, dict)]
    checks = [{**row(c), "met": "yes" if c.get("met") else "no"} for c in outcome.get("checks") or []
              if isinstance(c, dict)]
    def dump(d: Any) -> str:
        return json.dumps(d, indent=2, sort_keys=True, default=str)

    goal = o.get("goal") or {}
    plan = o.get("plan") or {}
    chosen = plan.get("chosen") or {}
    key = lambda c: (c.get("layers"), c.get("ffn"), c.get("heads"))  # noqa: E731
    seen, cands = set(), []
    for c in sorted(plan.get("candidates") or [], key=lambda c: -(c.get("core_params") or 0)):
        if key(c) in seen:
            continue
        seen.add(key(c))
        cands.append({**c, "chosen": key(c) == key(chosen)})
    goal_rows = [(k, goal[k]) for k in ("model", "task", "target", "deadline_ms", "seq_len", "max_drop",
                                        "max_size_mb", "budget", "quick", "runtime", "seed", "threads") if k in goal]
    return {"status": status, "ok": status == "met", "failed": failed, "checks": checks,
            "error": outcome.get("error"), "goal_rows": goal_rows, "chosen": chosen, "candidates": cands,
            "minutes": plan.get("minutes") or {}, "rule": plan.get("rule", ""), "runtime": plan.get("runtime"),
            "vocab": plan.get("student_vocab"), "notes": plan.get("notes") or [],
            "goal": dump(goal), "plan": dump(plan)}


# ---------------------------------------------------------------------------------------------------- build

def _figures(run: Run, points: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """name -> {png bytes, caption, label}; and notes on figures that could not be drawn."""
    from .plots import ParetoPoint, pareto_png, roofline_png, sensitivity_png

    figs: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    basis, latency_label = pareto_basis(points, run.target)
    scored = [p for p in points if p["score"] is not None]
    if scored:
        metric = scored[0]["score"].name
        kinds = dict.fromkeys(p["kind"] for p in scored)
        splits = "; ".join(f"{kind}s on " + ", ".join(sorted({p["score"].split for p in scored if p["kind"] == kind}))
                           for kind in kinds)
        pp = [ParetoPoint(str(i), p["score"].value if p["score"] else None,
                          (p[basis].ms if basis and p[basis] else None), p["size_bytes"], p["kind"], p["chosen"],
                          p["final"]) for i, p in enumerate(points, 1)]
        missing = [p["label"] for p in scored if basis and p[basis] is None]
        caption = (f"Every candidate of the run, numbered as in the table below. Left: {latency_label or 'no latency'}; right: size on disk "
                   f"(measured; artifacts: whole folder, search candidates: the .onnx file). y: {metric}, measured: "
                   f"{splits}. Star: chosen by the quantize search; ring: the final model.")
        if missing:
            caption += f" Not on the latency panel (no {basis} latency): {', '.join(missing)}."
        figs["pareto"] = {"png": pareto_png(pp, metric_label=f"{metric} (measured)", latency_label=latency_label),
                          "caption": caption, "label": basis or "measured", "title": "Pareto: metric vs latency and size"}
    else:
        notes.append("No Pareto plot: no step recorded a metric (add an `eval` step after each model step).")
    final = run.final
    art = _artifact(final) if final is not None else None
    if run.target and art is not None:
        try:
            png, row = roofline_png(art, run.target, run.seq_len)
            figs["roofline"] = {"png": png, "label": "predicted", "title": f"Roofline of the final model on "
                                f"{run.target}",
                                "caption": f"Predicted (roofline model, profile {run.target}): each op of the final "
                                f"model ({final.made_by}) at batch 1, seq {run.seq_len}, {row.get('precision')}; "
                                f"bound: {row.get('bound')}; predicted latency {fmt_ms(row.get('latency_ms'))}."}
        except (EdgeslimError, OSError, ValueError, KeyError) as exc:
            notes.append(f"No roofline plot of the final model on {run.target}: {exc}")
    elif run.target:
        notes.append("No roofline plot: the final model's folder is not available to read its shape.")
    for folder, q in run.quantize_reports.items():
        sens = q.get("sensitivity") or (q.get("search") or {}).get("sensitivity")
        if isinstance(sens, dict) and sens.get("rows"):
            figs["sensitivity"] = {"png": sensitivity_png(sens), "label": "measured",
                                   "title": f"Quantization sensitivity ({folder})",
                                   "caption": f"Measured: each MatMul/Gemm group quantized alone with "
                                   f"{(sens.get('scheme') or {}).get('name', '?')}; output SQNR vs FP32 on "
                                   f"{(sens.get('evaluated_on') or {}).get('examples', '?')} examples "
                                   f"(FP32 {sens.get('metric', 'metric')} {fmt_metric(sens.get('fp32_metric'))})."}
    return figs, notes


def _point_view(i: int, p: dict[str, Any]) -> dict[str, Any]:
    return {"n": i, "label": p["label"], "kind": p["kind"], "metric": _cell(p["score"]),
            "measured": _cell(p["measured"]), "predicted": _cell(p["predicted"]),
            "size": f"{fmt_bytes(p['size_bytes'])} ({p['size_what']})" if p["size_bytes"] is not None else "—",
            "mark": ", ".join(m for m, on in (("chosen", p["chosen"]), ("final", p["final"])) if on)}


def build_context(run: Run) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Everything the templates show, and the PNGs (name -> bytes)."""
    points = candidates(run)
    figs, fig_notes = _figures(run, points)
    final = run.final
    ctx = {
        "title": f"edgeslim run report: {run.dir.name}", "run_dir": str(run.dir), "task": run.task or "—",
        "target": run.target, "seq_len": run.seq_len, "headline": headline(run), "optimize": optimize_view(run),
        "steps": step_rows(run), "candidates": [_point_view(i, p) for i, p in enumerate(points, 1)],
        "figures": {k: {kk: vv for kk, vv in v.items() if kk != "png"} for k, v in figs.items()},
        "notes": run.notes + fig_notes, "lineage": lineage_view(run), "splits": splits_view(run),
        "environment": environment(run), "recipe": recipe_view(run),
        "final": {"folder": final.made_by, "hash": short(final.hash)} if final else None,
    }
    return ctx, {k: v["png"] for k, v in figs.items()}


def _environment_jinja() -> Any:
    jinja2 = require("jinja2")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                             autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["cell"] = md_cell
    return env


def md_cell(value: Any) -> str:
    """A value safe inside a Markdown table cell (no pipe or line break ends the cell)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def render(ctx: dict[str, Any], pngs: dict[str, bytes]) -> tuple[str, str]:
    """(report.html with the PNGs inline as data URIs, report.md linking report-files/<name>.png)."""
    env = _environment_jinja()
    uris = {k: "data:image/png;base64," + base64.b64encode(v).decode("ascii") for k, v in pngs.items()}
    html = env.get_template("report.html.j2").render(**ctx, images=uris)
    md = env.get_template("report.md.j2").render(**ctx, images={k: f"{REPORT_FILES}/{k}.png" for k in pngs})
    return html, md


def build_report(run_dir: str | Path) -> dict[str, Any]:
    """Write DIR/report.html (one self-contained file) and DIR/report.md (+ DIR/report-files/*.png); returns their
    paths and the headline (None for a run without a validate step)."""
    run = load_run(run_dir)
    ctx, pngs = build_context(run)
    html, md = render(ctx, pngs)       # everything is built before the first file is written
    files = run.dir / REPORT_FILES
    with atomic_dir(files) as tmp:
        for name, data in pngs.items():
            (tmp / f"{name}.png").write_bytes(data)
    md_path = write_text(run.dir / REPORT_MD, md)
    html_path = write_text(run.dir / REPORT_HTML, html)
    return {"html": str(html_path), "md": str(md_path), "files": [str(files / f"{n}.png") for n in pngs],
            "headline": ctx["headline"], "notes": ctx["notes"]}


__all__ = ["Latency", "Model", "Record", "Run", "Score", "build_context", "build_report", "load_run", "render"]
