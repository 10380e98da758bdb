"""The HTTP side: a FastAPI app with /predict, /health and /metrics, run by uvicorn.

Bad input never reaches the model and never gives a 500: wrong content type 415, a body over the limit 413 (from
Content-Length before reading, or while reading a chunked body), malformed JSON 400, a wrong or empty field 422,
each with {"error": <what is wrong and how to fix it>}. Overload gives 503 with Retry-After (see batcher).
"""
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from .._compat import require
from .batcher import Batcher, Overloaded, Pending
from .config import ServeConfig
from .curve import BatchPlan, LatencyCurve
from .engine import Engine

FIELDS = {"text", "text_pair"}


class LoopLag:
    """How late the event loop runs its callbacks now: a task sleeps 2 ms and measures the overshoot."""

    def __init__(self, period_s: float = 0.002):
        self.period_s = period_s
        self.current = 0.0

    async def watch(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(self.period_s)
            over = time.perf_counter() - t0 - self.period_s
            # rise at once, decay over ~10 periods: a request stamped now has waited about this long
            self.current = max(over, 0.8 * self.current)


class ShedLoad:
    """ASGI middleware: under overload, answer POST /predict with 503 + Retry-After before reading the body or
    routing, when even a short request (half the plan's typical length) could not finish in its deadline. Requests
    that pass still get the full admission check with their real length."""

    def __init__(self, app: Any, batcher: Batcher, metrics: Any, tokens: int):
        self.app, self.batcher, self.metrics, self.tokens = app, batcher, metrics, tokens

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/predict":
            wait = self.batcher.overloaded(self.tokens)
            if wait:
                retry = Overloaded("", "deadline", wait).retry_after_header
                self.metrics["rejections"].labels("deadline").inc()
                self.metrics["requests"].labels("503").inc()
                body = json.dumps({"error": "overloaded: the queue cannot meet the deadline; retry after "
                                            f"{retry} s"}).encode()
                await send({"type": "http.response.start", "status": 503,
                            "headers": [(b"content-type", b"application/json"), (b"retry-after", retry.encode()),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Server:
    """Everything one running server holds (the app reads it; tests and the CLI build it)."""

    engine: Engine
    curve: LatencyCurve
    plan: BatchPlan
    config: ServeConfig
    batcher: Batcher
    metrics: Any
    started: float = 0.0
    answered: int = 0           # accepted requests answered (200 or the model's 500)


def parse_request(body: bytes, engine: Engine, cfg: ServeConfig) -> tuple[str, str | None]:
    """(text, text_pair) from a JSON body, or BadRequest naming the problem."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"the body is not valid JSON ({exc}); send e.g. {{\"text\": \"a great movie\"}}")
    if not isinstance(data, dict):
        raise BadRequest(422, f"the body must be a JSON object like {{\"text\": \"...\"}}, not {type(data).__name__}")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise BadRequest(422, f"unknown field(s) {', '.join(unknown)}; the fields are text"
                              f"{' and text_pair' if engine.pair else ''}")
    texts = {}
    for name in ("text", "text_pair"):
        v = data.get(name)
        if v is None:
            continue
        if not isinstance(v, str):
            raise BadRequest(422, f"{name} must be a string, not {type(v).__name__}")
        if not v.strip():
            raise BadRequest(422, f"{name} is empty; send the text to classify")
        if len(v) > cfg.max_text_chars:
            raise BadRequest(413, f"{name} has {len(v)} characters, over the limit of {cfg.max_text_chars}; "
                                  "split it or raise --max-text-chars")
        texts[name] = v
    if "text" not in texts:
        raise BadRequest(422, "missing field text; send {\"text\": \"...\"}")
    if engine.pair and "text_pair" not in texts:
        raise BadRequest(422, f"this model ({engine.info.get('task')}) classifies sentence pairs: send text and "
                              "text_pair")
    if not engine.pair and "text_pair" in texts:
        raise BadRequest(422, "this model classifies single sentences: drop text_pair")
    return texts["text"], texts.get("text_pair")


def make_metrics(deadline_s: float) -> Any:
    """The Prometheus metrics of one server, in their own registry."""
    pc = require("prometheus_client")
    reg = pc.CollectorRegistry()
    buckets = sorted({round(deadline_s * f, 6) for f in (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.25, 1.5, 2, 4)})
    m = {
        "registry": reg,
        "requests": pc.Counter("edgeslim_requests", "Requests answered, by HTTP status", ["code"], registry=reg),
        "latency": pc.Histogram("edgeslim_request_latency_seconds",
                                "Server-side latency of accepted requests (arrival to answer)", buckets=buckets,
                                registry=reg),
        "queue": pc.Gauge("edgeslim_queue_depth", "Requests waiting for a batch", registry=reg),
        "batch": pc.Histogram("edgeslim_batch_size", "Requests per model call", buckets=(1, 2, 4, 8, 16, 32, 64),
                              registry=reg),
        "batch_time": pc.Histogram("edgeslim_batch_seconds", "Model time per batch", buckets=buckets, registry=reg),
        "misses": pc.Counter("edgeslim_deadline_misses", "Accepted requests answered after their deadline",
                             registry=reg),
        "rejections": pc.Counter("edgeslim_rejections", "Requests rejected by admission control (503)", ["reason"],
                                 registry=reg),
        "correction": pc.Gauge("edgeslim_latency_correction", "Observed / curve-predicted batch time (p90)",
                               registry=reg),
        "deadline": pc.Gauge("edgeslim_deadline_seconds", "The deadline requests are served in", registry=reg),
        "headroom": pc.Gauge("edgeslim_deadline_headroom", "Share of the deadline admission plans against",
                             registry=reg),
    }
    m["deadline"].set(deadline_s)
    return m


def create_app(server: Server) -> Any:
    """The FastAPI app of `server` (its lifespan starts the batcher and, on shutdown, drains it)."""
    fastapi = require("fastapi")
    from contextlib import asynccontextmanager

    from fastapi.responses import JSONResponse, PlainTextResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    pc = require("prometheus_client")
    cfg, engine, batcher, metrics = server.config, server.engine, server.batcher, server.metrics
    metrics["queue"].set_function(batcher.depth)

    loop_lag = LoopLag()

    @asynccontextmanager
    async def lifespan(app):
        if not batcher.thread.is_alive():
            batcher.start()
        server.started = time.time()
        watcher = asyncio.ensure_future(loop_lag.watch())
        yield
        watcher.cancel()
        # uvicorn has stopped accepting and waited for open requests; finish anything still queued
        await asyncio.get_running_loop().run_in_executor(None, batcher.stop, cfg.shutdown_timeout_s)

    app = fastapi.FastAPI(title="edgeslim serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(ShedLoad, batcher=batcher, metrics=metrics, tokens=max(4, server.plan.typical_tokens // 2))

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
        metrics["requests"].labels(str(status)).inc()
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: fastapi.Request, exc: StarletteHTTPException):
        hint = " (POST /predict, GET /health, GET /metrics)" if exc.status_code in (404, 405) else ""
        return error(exc.status_code, f"{exc.detail}{hint}")

    async def read_body(request: fastapi.Request) -> bytes:
        ctype = request.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            raise BadRequest(415, f"Content-Type must be application/json (got {ctype or 'none'})")
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise BadRequest(400, f"Content-Length {length!r} is not a number")
            if int(length) > cfg.max_body_bytes:
                raise BadRequest(413, f"the body is {int(length)} bytes, over the {cfg.max_body_bytes}-byte limit "
                                      "(--max-body-kb); send one text per request")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cfg.max_body_bytes:
                raise BadRequest(413, f"the body is over the {cfg.max_body_bytes}-byte limit (--max-body-kb)")
            chunks.append(chunk)
        return b"".join(chunks)

    @app.post("/predict")
    async def predict(request: fastapi.Request):
        try:
            body = await read_body(request)
            # the deadline starts when the request reached the server: now, less the time the busy event loop took
            # to get to it (its current lag)
            arrival = batcher.clock() - loop_lag.current
            text, pair = parse_request(body, engine, cfg)
            row = engine.encode(text, pair)
        except BadRequest as exc:
            return error(exc.status, str(exc))
        fut = asyncio.get_running_loop().create_future()
        p = Pending(row=row, arrival=arrival, deadline=arrival + batcher.deadline_s, done=fut)
        try:
            batcher.submit(p)
        except Overloaded as exc:
            metrics["rejections"].labels(exc.kind).inc()
            return error(503, str(exc), {"Retry-After": exc.retry_after_header})
        result = await fut
        server.answered += 1
        if isinstance(result, Exception):
            return error(500, f"the model failed on this batch: {result}")
        answered = batcher.clock()
        met = batcher.answered(p, answered)
        latency = answered - arrival
        metrics["latency"].observe(latency)
        if not met:
            metrics["misses"].inc()
        metrics["requests"].labels("200").inc()
        return JSONResponse({**engine.answer(result), "tokens": p.tokens, "batch_size": p.batch_size,
                             "queue_ms": round((p.started - arrival) * 1000, 3),
                             "model_ms": round((p.finished - p.started) * 1000, 3),
                             "latency_ms": round(latency * 1000, 3), "deadline_ms": cfg.deadline_ms,
                             "deadline_met": met})

    @app.get("/health")
    async def health():
        return {"status": "ok" if batcher.accepting else "draining", "model": engine.info,
                "deadline_ms": cfg.deadline_ms, "plan": server.plan.to_dict(), "queue_depth": batcher.depth(),
                "latency_correction": round(batcher.correction.factor, 3), "batches": batcher.batches,
                "headroom": round(batcher.headroom.current(), 4), "answer_lag_ms": round(batcher.lag.seconds * 1000, 3),
                "curve": server.curve.to_dict()}

    @app.get("/metrics")
    async def prometheus():
        metrics["correction"].set(batcher.correction.factor)
        metrics["headroom"].set(batcher.headroom.current())
        return Response(pc.generate_latest(metrics["registry"]), media_type=pc.CONTENT_TYPE_LATEST)

    return app


def deliver_to_loop(batch: list[Pending], out: Any, err: Exception | None) -> None:
    """Resolve a finished batch's futures (Pending.done) with one wakeup of their event loop."""
    def resolve() -> None:
        for i, p in enumerate(batch):
            if not p.done.done():          # a client that went away cancelled its future
                p.done.set_result(err if err is not None else out[i])

    batch[0].done.get_loop().call_soon_threadsafe(resolve)


def build_server(cfg: ServeConfig, progress: Any = None, engine: Engine | None = None) -> Server:
    """Load the model (or take `engine`), measure its latency curve, plan batching; the batcher is started by the
    app's lifespan."""
    from .curve import measure_curve, plan_batching
    from .engine import load_engine

    import sys

    # the worker thread needs the GIL back quickly after each batch while the event loop parses requests: a 0.5 ms
    # switch interval instead of Python's 5 ms (this process is the server; nothing else shares it)
    sys.setswitchinterval(0.0005)
    say = progress or (lambda msg: None)
    engine = engine or load_engine(cfg.model, runtime=cfg.runtime, threads=cfg.threads, max_tokens=cfg.max_tokens)
    say(f"model {engine.info['path']} ({engine.info['runtime']}, {engine.info.get('precision') or 'fp32'}), "
        f"{cfg.threads} threads; timing its batch latency curve (about {cfg.calibration_seconds:g} s)")
    vocab = max(len(engine.tokenizer), 10)

    def timed(batch: int, tokens: int) -> Any:
        import numpy as np

        rng = np.random.default_rng(batch * 1000 + tokens)
        rows = [(list(rng.integers(5, vocab, tokens)), [0] * tokens) for _ in range(batch)]
        return engine.run(rows)

    curve = measure_curve(timed, deadline_ms=cfg.deadline_ms, max_tokens=cfg.max_tokens,
                          max_batch=cfg.max_batch or 64, budget_s=cfg.calibration_seconds)
    plan = plan_batching(curve, deadline_ms=cfg.deadline_ms, margin_ms=cfg.margin_s * 1000, batching=cfg.batching,
                         max_batch=cfg.max_batch, max_wait_ms=cfg.max_wait_ms, typical_tokens=cfg.typical_tokens)
    metrics = make_metrics(cfg.deadline_ms / 1000)

    def on_batch(n: int, seconds: float) -> None:
        metrics["batch"].observe(n)
        metrics["batch_time"].observe(seconds)

    batcher = Batcher(engine.run, curve, plan, deadline_s=cfg.deadline_ms / 1000, margin_s=cfg.margin_s,
                      max_queue=cfg.max_queue, on_batch=on_batch, deliver=deliver_to_loop)
    return Server(engine=engine, curve=curve, plan=plan, config=cfg, batcher=batcher, metrics=metrics)


def run_server(server: Server, on_ready: Any = None) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn: stop accepting, finish open requests, then drain the queue).

    `on_ready()` is called once the socket listens (and the signal handlers are installed)."""
    import threading

    uvicorn = require("uvicorn")
    cfg = server.config
    uv = uvicorn.Server(uvicorn.Config(create_app(server), host=cfg.host, port=cfg.port, log_level="warning",
                                       access_log=False, timeout_graceful_shutdown=int(cfg.shutdown_timeout_s),
                                       lifespan="on"))

    def announce() -> None:
        while not uv.started and not uv.should_exit:
            time.sleep(0.02)
        if uv.started and on_ready:
            on_ready()

    if on_ready:
        threading.Thread(target=announce, daemon=True).start()
    # uvicorn re-raises the stop signal after its graceful shutdown; with these handlers that ends here, so the
    # process prints its shutdown summary and exits 0 instead of dying by the signal
    import signal

    stops: list[int] = []
    previous = {s: signal.signal(s, lambda sig, frame: stops.append(sig)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        uv.run()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    b = server.batcher
    print("shutdown: " + json.dumps({"accepted": b.accepted, "answered": server.answered, "batches": b.batches,
                                     "queued": b.depth()}), file=sys.stderr, flush=True)
