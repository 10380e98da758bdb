"""Load-test `edgeslim serve` on loopback: open-loop Poisson arrivals at several rates, a burst and slow clients,
with and without micro-batching, side by side in one run.

    .venv/bin/python benchmarks/bench_serve.py [--model runs/demo] [--deadline-ms 50] [--rates 50,100,...]
        [--duration 8] [--threads 2] [--out benchmarks/out/serve]

Both servers (batching on / off) run at once on two ports (an idle one costs nothing: no spinning threads); each
rate is sent to one then the other, the order alternating per rate, so drift hits both. Per rate and mode: the
throughput, p50/p99 end-to-end latency seen by the client (from each request's scheduled send time), deadline-miss
rate among accepted requests (client clock and server clock), rejection rate (503). The knee is the highest rate
with < 1% misses and < 1% rejections; the server's own prediction of it (from its measured latency curve) is
reported beside it. Writes <out>.json, <out>.md and <out>.png. The client shares the 2 cores with the server.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sst2_texts(limit: int = 872) -> list[str]:
    data = Path(os.environ.get("EDGESLIM_DATA") or ROOT.parent / "shared" / "data")
    lines = (data / "glue" / "SST-2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [ln.split("\t")[0] for ln in lines if ln.strip()][:limit]


class ServerProcess:
    """`edgeslim serve` in a subprocess; its plan from --json on stdout, its log and shutdown line on stderr."""

    def __init__(self, model: str, deadline_ms: float, threads: int, batching: bool, log: Path):
        self.port = free_port()
        cmd = [sys.executable, "-m", "edgeslim", "serve", "--model", model, "--deadline-ms", str(deadline_ms),
               "--port", str(self.port), "--threads", str(threads), "--json"]
        if not batching:
            cmd.append("--no-batching")
        self.cmd = cmd
        self.log = log
        self.out = log.with_suffix(".json")
        with log.open("w") as err, self.out.open("w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        t0 = time.time()
        while "serving http" not in log.read_text():
            if self.proc.poll() is not None or time.time() - t0 > 120:
                raise SystemExit(f"bench_serve: server did not start ({' '.join(cmd)}):\n{log.read_text()}")
            time.sleep(0.2)
        self.plan = json.loads(self.out.read_text())

    def health(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
            return json.loads(r.read())

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        line = next((ln for ln in self.log.read_text().splitlines() if ln.startswith("shutdown:")), None)
        return {"exit": self.proc.returncode, **(json.loads(line.split(":", 1)[1]) if line else {})}


def knee(rows: list[dict[str, Any]]) -> float | None:
    """Highest offered rate with < 1% deadline misses (client clock) and < 1% rejections, below any failing rate."""
    best = None
    for r in sorted(rows, key=lambda r: r["rate_rps"]):
        if r["miss_rate"] < 0.01 and r["rejection_rate"] < 0.01 and not r["errors"]:
            best = r["rate_rps"]
        else:
            break
    return best


def plot(rows: dict[str, list[dict[str, Any]]], deadline_ms: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for mode, rs in rows.items():
        rs = sorted(rs, key=lambda r: r["rate_rps"])
        x = [r["rate_rps"] for r in rs]
        a.plot(x, [r["p99_ms"] or float("nan") for r in rs], marker="o", label=f"{mode}: p99 (accepted)")
        a.plot(x, [r["p50_ms"] or float("nan") for r in rs], marker=".", linestyle=":", label=f"{mode}: p50")
        b.plot(x, [100 * r["miss_rate"] for r in rs], marker="o", label=f"{mode}: misses % of accepted")
        b.plot(x, [100 * r["rejection_rate"] for r in rs], marker="x", linestyle="--", label=f"{mode}: rejected %")
    a.axhline(deadline_ms, color="red", linewidth=0.8, label=f"deadline {deadline_ms:g} ms")
    a.set_xlabel("offered rate (req/s, Poisson)")
    a.set_ylabel("end-to-end latency (ms, client)")
    b.axhline(1, color="red", linewidth=0.8, label="1%")
    b.set_xlabel("offered rate (req/s, Poisson)")
    b.set_ylabel("%")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    from edgeslim.measure import host_facts
    from edgeslim.serve.loadgen import run_load

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="runs/demo")
    ap.add_argument("--deadline-ms", type=float, default=50.0)
    ap.add_argument("--rates", default="50,100,150,200,250,300,400,600")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--burst", type=int, default=300)
    ap.add_argument("--slow-clients", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "serve"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rates = [float(r) for r in args.rates.split(",")]
    texts = sst2_texts()
    t_start = time.time()
    servers = {mode: ServerProcess(args.model, args.deadline_ms, args.threads, mode == "batching",
                                   out.parent / f"serve-{mode}.log") for mode in ("batching", "no-batching")}
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in servers}
    extra: dict[str, dict[str, Any]] = {m: {} for m in servers}
    try:
        for i, rate in enumerate(rates):
            order = list(servers) if i % 2 == 0 else list(servers)[::-1]
            for mode in order:
                s = run_load("127.0.0.1", servers[mode].port, texts, rate=rate, duration_s=args.duration,
                             deadline_ms=args.deadline_ms, seed=i).to_dict()
                rows[mode].append(s)
                print(f"{mode:12s} {rate:6.0f}/s  ok {s['ok']:5d} rej {100 * s['rejection_rate']:5.1f}%  "
                      f"miss {100 * s['miss_rate']:5.2f}%  p50 {s['p50_ms'] or 0:6.1f}  p99 {s['p99_ms'] or 0:6.1f} ms"
                      f"  batch {s['mean_batch'] or 0:.2f}", flush=True)
                time.sleep(1.0)
        for mode, srv in servers.items():   # a burst, then slow clients beside a moderate Poisson stream
            k = knee(rows[mode]) or rates[0]
            extra[mode]["burst"] = run_load("127.0.0.1", srv.port, texts, rate=0, duration_s=0.1,
                                            deadline_ms=args.deadline_ms, burst=args.burst).to_dict()
            time.sleep(1.0)
            extra[mode]["slow_clients"] = run_load("127.0.0.1", srv.port, texts, rate=0.5 * k,
                                                   duration_s=args.duration, deadline_ms=args.deadline_ms,
                                                   slow_clients=args.slow_clients, slow_seconds=2.0).to_dict()
            extra[mode]["health"] = {k2: v for k2, v in srv.health().items() if k2 != "curve"}
    finally:
        for mode, srv in servers.items():
            extra[mode]["shutdown"] = srv.stop()
    knees = {m: knee(rows[m]) for m in rows}
    result = {
        "model": servers["batching"].plan["model"], "deadline_ms": args.deadline_ms, "duration_s": args.duration,
        "rates": rates, "threads": args.threads, "host": host_facts(), "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                            time.gmtime()),
        "wall_s": round(time.time() - t_start, 1), "command": " ".join(["benchmarks/bench_serve.py"] + (argv or sys.argv[1:])),
        "plans": {m: s.plan["plan"] for m, s in servers.items()},
        "curve": servers["batching"].plan["curve"], "rows": rows, "extra": extra, "knee_rps": knees,
        "knee_factor": (knees["batching"] / knees["no-batching"]) if knees["batching"] and knees["no-batching"]
        else None,
    }
    (out.with_suffix(".json")).write_text(json.dumps(result, indent=2))
    md = [f"# edgeslim serve load test ({result['date']})", "",
          f"Model `{result['model']['path']}` ({result['model']['precision']}), deadline {args.deadline_ms:g} ms, "
          f"{args.threads} threads, {args.duration:g} s per rate; host {result['host']['cpu']} "
          f"({', '.join(result['host']['cpu_flags'])}); client and server share the machine's "
          f"{result['host']['cpus']} cores.", "",
          "| mode | offered req/s | served req/s | p50 ms | p99 ms (client) | p99 ms (server) | misses % of accepted | "
          "rejected % | mean batch |", "|---|---|---|---|---|---|---|---|---|"]
    for mode in rows:
        for r in rows[mode]:
            md.append(f"| {mode} | {r['rate_rps']:.0f} | {r['throughput_rps']:.0f} | {r['p50_ms'] or 0:.1f} | "
                      f"{r['p99_ms'] or 0:.1f} | {r['server_p99_ms'] or 0:.1f} | {100 * r['miss_rate']:.2f} | "
                      f"{100 * r['rejection_rate']:.1f} | {r['mean_batch'] or 0:.2f} |")
    md += ["", "| mode | measured knee req/s | predicted sustainable req/s (server's curve) | plan |", "|---|---|---|---|"]
    for mode in rows:
        p = result["plans"][mode]
        pred = p["predicted_rate_rps"]
        md.append(f"| {mode} | {knees[mode] if knees[mode] is not None else 'below the lowest rate'} | {pred:.0f} | "
                  f"max batch {p['max_batch']}, max wait {p['max_wait_ms']} ms |")
    if result["knee_factor"]:
        md.append(f"\nBatching raises the knee {result['knee_factor']:.2f}x (rate resolution: the offered rates above).")
    md += ["", "| mode | case | sent | ok | rejected % | misses % of accepted (client / server clock) | p99 ms (client / "
           "server) | note |", "|---|---|---|---|---|---|---|---|"]
    for mode in rows:
        bst, slw = extra[mode]["burst"], extra[mode]["slow_clients"]
        md.append(f"| {mode} | burst of {args.burst} at once | {bst['sent']} | {bst['ok']} | "
                  f"{100 * bst['rejection_rate']:.1f} | {100 * bst['miss_rate']:.1f} / {100 * bst['server_miss_rate']:.1f} | "
                  f"{bst['p99_ms'] or 0:.1f} / {bst['server_p99_ms'] or 0:.1f} | "
                  f"Retry-After on every 503: {bst['retry_after_ok']} |")
        sc = slw.get("slow_clients", {})
        md.append(f"| {mode} | {args.slow_clients} slow clients (2 s each) + Poisson {slw['rate_rps']:.0f}/s | "
                  f"{slw['sent']} | {slw['ok']} | {100 * slw['rejection_rate']:.1f} | {100 * slw['miss_rate']:.1f} / "
                  f"{100 * slw['server_miss_rate']:.1f} | {slw['p99_ms'] or 0:.1f} / {slw['server_p99_ms'] or 0:.1f} | "
                  f"slow clients answered: {sc.get('ok')}/{sc.get('n')} |")
    md.append(f"\nShutdown (SIGTERM): " + "; ".join(f"{m}: {extra[m]['shutdown']}" for m in rows))
    md.append(f"\nWall time {result['wall_s']} s. Command: `{result['command']}`")
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    plot(rows, args.deadline_ms, out.with_suffix(".png"))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
