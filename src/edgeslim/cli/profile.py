"""Commands `edgeslim profile` and `edgeslim hw list|show|calibrate`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from .common import JsonOpt, STATE, emit

app = typer.Typer()  # commands of this group; cli/__init__.py mounts them on the main app


def _fmt(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def _render_profile(d: dict[str, Any], show_ops: bool) -> None:
    from rich.table import Table

    from rich.console import Console

    con = Console(width=None if Console().is_terminal else 160)
    c = d["cost"]
    con.print(f"[bold]{d['model']}[/] ({d['format']}): {_fmt(c['params'])} params, {_fmt(c['macs'])} MACs, "
              f"{c['model_bytes'] / 1e6:.1f} MB at {d['precision']}, batch {d['batch']}, seq {d['seq_len']}, "
              f"intensity {c['intensity']:.1f} ops/byte (analytic)")
    m = d.get("measured")
    if m:
        t = Table(title=f"MEASURED on this host ({m['host']['cpu']}, {m['threads']} threads, {m['rounds']} interleaved "
                        f"rounds x {m['iters_per_round']})")
        for col in ("runtime", "p50 ms", "p95 ms", "p99 ms", "round medians min-max ms"):
            t.add_column(col, justify="right" if col != "runtime" else "left")
        for rt, st in m["runtimes"].items():
            t.add_row(rt, f"{st['p50_ms']:.2f}", f"{st['p95_ms']:.2f}", f"{st['p99_ms']:.2f}",
                      f"{st['round_median_min_ms']:.2f}-{st['round_median_max_ms']:.2f}")
        con.print(t)
    t = Table(title="PREDICTED per hardware (roofline model; host = calibrated on this machine; trust = error vs "
                    "published on-device measurements, `edgeslim hw check`)")
    cols = ["hardware", "prec", "latency ms", "energy mJ", "bound", "util", "BW util", "ridge", "calibrated", "trust"]
    if d["deadline_ms"] is not None:
        cols += ["deadline", "max batch", "max seq"]
    for col in cols:
        t.add_column(col)
    for name, r in d["hardware"].items():
        if "skipped" in r:
            t.add_row(name, "-", r["skipped"][:60])
            continue
        row = [name, r["precision"], f"{r['latency_ms']:.2f}", f"{r['energy_mj']:.2f}",
               f"{r['bound']} ({r['memory_bound_share']:.0%} mem, {r['overhead_share']:.0%} ovh)", f"{r['utilisation']:.0%}",
               f"{r['bandwidth_utilisation']:.0%}", f"{r['ridge_point']:.0f}", "fitted" if r["calibrated"] else "assumed",
               (r.get("trust") or {}).get("short", "-")]
        if d["deadline_ms"] is not None:
            dl = r["deadline"]
            row += [f"{dl['verdict']} ({dl['latency_ms']:.1f} ms {'p99 measured' if 'measured' in dl['basis'] else 'predicted'})",
                    str(dl["max_batch"]), str(dl["max_seq_len"])]
        t.add_row(*row)
    con.print(t)
    for name, r in d["hardware"].items():
        if r.get("note"):
            con.print(f"note: {r['note']}")
        if r.get("warning"):
            con.print(f"[bold yellow]WARNING[/] {r['warning']}")
        if r.get("plot"):
            con.print(f"roofline plot ({name}): {r['plot']}")
    first = next((n for n, r in d["hardware"].items() if "skipped" not in r), None)
    if first:
        r = d["hardware"][first]
        t = Table(title=f"per layer on {first} (PREDICTED)")
        for col in ("layer", "params", "MACs", "bytes", "intensity", "bound", "time ms", "energy mJ"):
            t.add_column(col, justify="right" if col != "layer" else "left")
        for L in r["layers"]:
            t.add_row(L["layer"], _fmt(L["params"]), _fmt(L["macs"]), _fmt(L["bytes"]), f"{L['intensity']:.1f}",
                      L["bound"], f"{L['time_ms']:.3f}", f"{L['energy_mj']:.3f}")
        con.print(t)
        if show_ops:
            t = Table(title=f"per op on {first} (PREDICTED)")
            for col in ("layer", "op", "kind", "MACs", "bytes", "intensity", "bound", "time ms"):
                t.add_column(col)
            for o in r["ops"]:
                t.add_row(o["layer"], o["op"], o["kind"], _fmt(o["macs"]), _fmt(o["bytes"]), f"{o['intensity']:.1f}",
                          o["bound"], f"{o['time_ms']:.4f}")
            con.print(t)
    if d["deadline_ms"] is not None:
        for name, r in d["hardware"].items():
            if "deadline" in r:
                dl = r["deadline"]
                band = (f", range {dl['latency_range_ms'][0]:.2f}-{dl['latency_range_ms'][1]:.2f} ms, "
                        f"trust: {dl['trust_label']}" if dl.get("latency_range_ms") else "")
                con.print(f"real-time {name}: {dl['verdict'].upper()} {dl['deadline_ms']:g} ms ({dl['basis']}: "
                          f"{dl['latency_ms']:.2f} ms{band}); largest batch at seq {d['seq_len']}: {dl['max_batch']}, "
                          f"largest seq len at batch {d['batch']}: {dl['max_seq_len']}"
                          f"{' (the model limit)' if dl.get('seq_is_model_limit') else ''} ({dl['max_label']})")


@app.command("profile")
def profile_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Artifact folder, HF folder or packaged model name."),
    hardware: List[str] = typer.Option(["host"], "--hardware", "-w",
                                       help="Hardware profile(s) (repeat or comma-separate; 'all'). See `edgeslim hw list`."),
    seq_len: int = typer.Option(128, "--seq-len", help="Tokens per sequence (text models)."),
    batch: int = typer.Option(1, "--batch", help="Batch size."),
    precision: str = typer.Option("auto", "--precision", help="auto | fp32 | fp16 | int8 (auto = the artifact's)."),
    deadline_ms: Optional[float] = typer.Option(None, "--deadline-ms", help="Real-time deadline per inference."),
    measure: bool = typer.Option(True, "--measure/--no-measure", help="Time the model on this host (ORT, PyTorch)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Folder for roofline plots (roofline_<hw>.png)."),
    ops: bool = typer.Option(False, "--ops", help="Also print every op of the first hardware."),
    threads: int = typer.Option(2, help="CPU threads for measured latency."),
    as_json: bool = JsonOpt,
) -> None:
    """Cost, roofline verdict, predicted latency/energy per device, measured latency here, real-time verdict."""
    from ..pipeline import source_artifact
    from ..profile.step import ProfileConfig, profile_artifact

    names = tuple(n.strip() for h in hardware for n in h.split(",") if n.strip())
    cfg = ProfileConfig(hardware=names, batch=batch, seq_len=seq_len, precision=precision,
                        deadline_ms=deadline_ms, measure=measure)
    art = source_artifact(model)
    quiet = STATE["quiet"] or as_json
    report = profile_artifact(art, cfg, threads=threads, plot_dir=plot,
                              progress=None if quiet else (lambda s: typer.echo(s, err=True)))
    if as_json and not ops:
        for r in report["hardware"].values():
            r.pop("ops", None)
    emit(report, as_json, lambda d: _render_profile(d, ops))

hw = typer.Typer(help="Hardware profiles: list, show, calibrate this host.", no_args_is_help=True)
app.add_typer(hw, name="hw")

@hw.command("list")
def hw_list(as_json: bool = JsonOpt) -> None:
    """List hardware profiles (shipped and user) with their peaks and bandwidth."""
    from ..hardware import list_profiles, load_profile, user_dir
    from ..errors import HardwareError

    rows = []
    for name in list_profiles():
        try:
            p = load_profile(name)
            rows.append({"name": name, "kind": p.kind, "peak_gops": {k: v.value for k, v in p.peak_gops.items()},
                         "memory_bandwidth_gbs": p.memory_bandwidth_gbs.value, "path": p.path,
                         "efficiency": "fitted" if p.efficiency.fitted else "assumed", "description": p.description})
        except HardwareError as exc:
            rows.append({"name": name, "error": str(exc)})

    def render(rows: list[dict[str, Any]]) -> None:
        from rich.table import Table

        from .common import console

        t = Table(title=f"hardware profiles (user dir: {user_dir()})")
        for c in ("name", "kind", "peak GOP/s", "GB/s", "efficiency", "description"):
            t.add_column(c)
        for r in rows:
            if "error" in r:
                t.add_row(r["name"], "-", "-", "-", "-", r["error"])
            else:
                t.add_row(r["name"], r["kind"], ", ".join(f"{k} {v:g}" for k, v in r["peak_gops"].items()),
                          f"{r['memory_bandwidth_gbs']:g}", r["efficiency"], r["description"])
        console().print(t)

    emit(rows, as_json, render)

@hw.command("show")
def hw_show(name: str = typer.Argument(..., help="Profile name."), as_json: bool = JsonOpt) -> None:
    """Show every figure of a profile with its source (estimates marked)."""
    from ..hardware import load_profile

    p = load_profile(name)
    d = p.to_dict()
    d["path"] = p.path

    def render(d: dict[str, Any]) -> None:
        typer.echo(f"{d['name']} ({d['kind']}): {d['description']}\n  file: {d['path']}")
        figs = [(f"peak_gops.{k}", v) for k, v in d["peak_gops"].items()]
        figs += [(k, d[k]) for k in ("memory_bandwidth_gbs", "memory_gb", "power_active_w", "power_idle_w",
                                     "pj_per_dram_byte")]
        figs += [(f"pj_per_mac.{k}", v) for k, v in d["pj_per_mac"].items()]
        for k, f in figs:
            typer.echo(f"  {k:22s} {f['value']:>10g}  {'[estimate] ' if f['estimate'] else ''}{f['source']}")
        e = d["efficiency"]
        typer.echo(f"  efficiency: linear {e['linear']:.3g}, attention {e['attention']:.3g}, elementwise "
                   f"{e['elementwise']:.3g}, memory {e['memory']:.3g}, op overhead {e['op_overhead_us']:.3g} us, "
                   f"fixed {e['fixed_overhead_us']:.3g} us ({e['source']})")

    emit(d, as_json, render)

@hw.command("calibrate")
def hw_calibrate(
    threads: int = typer.Option(2, help="Threads to calibrate at (match the threads you will run with)."),
    fit: bool = typer.Option(True, "--fit/--no-fit", help="Also time 10 model shapes and fit efficiency factors."),
    out: Optional[Path] = typer.Option(None, "--out", help="Profiles folder [$EDGESLIM_HARDWARE_DIR or runs/hardware]."),
    as_json: bool = JsonOpt,
) -> None:
    """Measure this machine (ORT GEMM fp32/int8, copy bandwidth; optionally fit) and write the `host` profile."""
    from ..hardware.calibrate import calibrate_host

    quiet = STATE["quiet"] or as_json
    path, prof = calibrate_host(threads=threads, fit=fit, folder=out,
                                progress=None if quiet else (lambda s: typer.echo(s, err=True)))
    d = {"path": str(path), **prof.to_dict()}
    emit(d, as_json, lambda d: typer.echo(
        f"wrote {d['path']}: fp32 {d['peak_gops']['fp32']['value']:g} GFLOP/s, int8 "
        f"{d['peak_gops']['int8']['value']:g} GOP/s, {d['memory_bandwidth_gbs']['value']:g} GB/s (measured); "
        f"efficiency {'fitted' if d['efficiency']['fitted'] else 'assumed'}"))

def _check_markdown(d: dict[str, Any]) -> str:
    """The check as Markdown tables (per row, per device, overall): what docs/results.md carries."""
    out = ["| row | device | model (head) | runtime | precision | batch x seq | published ms | floor ms | before ms "
           "(err) | held-out ms (err) | fitted ms | source |", "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in d["rows"]:
        out.append(f"| {r['id']}{'' if r['fit'] else ' (not fitted)'} | {r['device_label']} | {r['model']} "
                   f"({r['head']}) | {r['runtime']} | {r['precision']} | {r['batch']} x {r['seq_len']} | "
                   f"{r['published_ms']:g} | {r['floor_ms']:.2f} | {r['before_ms']:.2f} ({r['before_error']:+.0%}) | "
                   f"{r['heldout_ms']:.2f} ({r['heldout_error']:+.0%}) | {r['fitted_ms']:.2f} | [{r['url'].split('/')[2]}]"
                   f"({r['url']}) |")
    out += ["", "| device | kind | rows | models | before: median / worst | held out: median / worst | fitted scale |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for name, v in d["devices"].items():
        b, h = v["before"], v["heldout"]
        out.append(f"| {name} | {v['kind']} | {v['rows']} | {v['models']} | {b['median_abs_error']:.0%} / "
                   f"{b['worst_abs_error']:.0%} | {h['median_abs_error']:.0%} / {h['worst_abs_error']:.0%} | "
                   f"{v['scale']:.3f} |")
    o = d["overall"]
    out.append(f"| **all** | | {o['before']['n']} | | {o['before']['median_abs_error']:.1%} / "
               f"{o['before']['worst_abs_error']:.0%} | {o['heldout']['median_abs_error']:.1%} / "
               f"{o['heldout']['worst_abs_error']:.0%} | |")
    return "\n".join(out)


@hw.command("check")
def hw_check(rows: bool = typer.Option(True, "--rows/--no-rows", help="Also print every published row."),
             markdown: bool = typer.Option(False, "--markdown", help="Print the tables as Markdown (for docs)."),
             as_json: bool = JsonOpt) -> None:
    """Predict every published on-device measurement (hardware/published.yaml): before calibration, held out
    (leave one model out) and fitted; per row and per device."""
    from ..hardware.check import published_check

    d = published_check().to_dict()
    if markdown and not as_json:
        typer.echo(_check_markdown(d))
        return

    def pct(e: float) -> str:
        return f"{e:+.0%}"

    def render(d: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.table import Table

        con = Console(width=None if Console().is_terminal else 190)
        if rows:
            t = Table(title=f"PREDICTED vs PUBLISHED per row ({d['data_file']})")
            for c in ("row", "device", "model", "runtime", "prec", "seq", "published ms", "floor ms",
                      "before ms (err)", "held-out ms (err)", "fitted ms"):
                t.add_column(c)
            for r in d["rows"]:
                t.add_row(r["id"] + ("" if r["fit"] else " (not fitted)"), r["device"], r["model"],
                          " ".join(r["runtime"].split()[:2]), r["precision"], str(r["seq_len"]), f"{r['published_ms']:g}",
                          f"{r['floor_ms']:.2f}", f"{r['before_ms']:.2f} ({pct(r['before_error'])})",
                          f"{r['heldout_ms']:.2f} ({pct(r['heldout_error'])})", f"{r['fitted_ms']:.2f}")
            con.print(t)
        t = Table(title="per device: |predicted / published - 1|, median and worst")
        for c in ("device", "kind", "rows", "models", "before median", "before worst", "held-out median",
                  "held-out worst", "fitted scale"):
            t.add_column(c)
        for name, v in d["devices"].items():
            b, h = v["before"], v["heldout"]
            t.add_row(name, v["kind"], str(v["rows"]), str(v["models"]), f"{b['median_abs_error']:.0%}",
                      f"{b['worst_abs_error']:.0%}", f"{h['median_abs_error']:.0%}", f"{h['worst_abs_error']:.0%}",
                      f"{v['scale']:.3f}")
        con.print(t)
        o = d["overall"]
        con.print(f"all {o['before']['n']} rows over {o['devices']} devices: median error before calibration "
                  f"{o['before']['median_abs_error']:.1%}, held out {o['heldout']['median_abs_error']:.1%} "
                  f"(worst {o['before']['worst_abs_error']:.0%} / {o['heldout']['worst_abs_error']:.0%})")
        con.print(d["how"])

    emit(d, as_json, render)
