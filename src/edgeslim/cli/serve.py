"""`edgeslim serve`: serve a model over HTTP within a deadline (micro-batching, admission control, metrics)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import JsonOpt, emit

app = typer.Typer()  # commands of this group; cli/__init__.py mounts them on the main app


@app.command("serve")
def serve_cmd(
    model: Path = typer.Option(..., "--model", help="Artifact folder (ONNX, .tflite or .pte), export bundle, or "
                                                    "an optimize/run output folder (its final model)."),
    deadline_ms: float = typer.Option(..., "--deadline-ms", help="End-to-end budget per request, ms."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="onnx | litert | executorch (default: the "
                                                                  "artifact's own)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    threads: int = typer.Option(2, "--threads", help="Intra-op threads of the runtime."),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", help="Cap on requests per call (default: from "
                                                                      "the measured latency curve)."),
    max_wait_ms: Optional[float] = typer.Option(None, "--max-wait-ms", help="Longest wait to fill a batch "
                                                                            "(default: from the curve)."),
    no_batching: bool = typer.Option(False, "--no-batching", help="One request per model call."),
    max_queue: int = typer.Option(1024, "--max-queue", help="Hard cap on waiting requests."),
    max_body_kb: int = typer.Option(64, "--max-body-kb", help="Largest request body accepted (413 above)."),
    max_tokens: int = typer.Option(128, "--max-tokens", help="Texts are truncated to this many tokens."),
    typical_tokens: int = typer.Option(32, "--typical-tokens", help="Request length the batching plan assumes."),
    margin_ms: Optional[float] = typer.Option(None, "--margin-ms", help="Safety margin before the deadline "
                                                                        "(default 5%, at least 1 ms)."),
    plan_only: bool = typer.Option(False, "--plan-only", help="Measure the curve, print the plan, do not serve."),
    as_json: bool = JsonOpt,
) -> None:
    """Serve MODEL on http://HOST:PORT: POST /predict {"text": ...}, GET /health, GET /metrics (Prometheus)."""
    from ..serve import ServeConfig
    from ..serve.app import build_server, run_server

    cfg = ServeConfig(model=str(model), deadline_ms=deadline_ms, runtime=runtime, host=host, port=port,
                      threads=threads, max_batch=max_batch, max_wait_ms=max_wait_ms, batching=not no_batching,
                      max_queue=max_queue, max_body_bytes=max_body_kb * 1024, max_tokens=max_tokens,
                      typical_tokens=typical_tokens, margin_ms=margin_ms)
    server = build_server(cfg, progress=lambda msg: typer.echo(msg, err=True))
    summary = {"model": server.engine.info, "deadline_ms": deadline_ms, "plan": server.plan.to_dict(),
               "curve": server.curve.to_dict(), "url": f"http://{host}:{port}"}

    def render(r: dict) -> None:
        p = r["plan"]
        typer.echo(f"plan: {p['reason']}")
        typer.echo(f"  max batch {p['max_batch']}, max wait {p['max_wait_ms']} ms; predicted sustainable rate at "
                   f"{deadline_ms:g} ms: {p['predicted_rate_rps']:.0f} req/s at {p['typical_tokens']} tokens "
                   f"(unbatched {p['predicted_rate_unbatched_rps']:.0f} req/s); curve fit error median "
                   f"{r['curve']['fit_error']['median_rel']:.1%} (measured in {r['curve']['seconds']} s)")

    emit(summary, as_json, render)
    if not plan_only:
        run_server(server, on_ready=lambda: typer.echo(
            f"serving {summary['url']}  (POST /predict, GET /health, GET /metrics; Ctrl-C or SIGTERM stops after "
            "the accepted requests)", err=as_json))
