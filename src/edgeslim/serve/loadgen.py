"""Open-loop load on loopback: Poisson arrivals at a fixed rate, bursts and slow clients, against a running server.

Open loop: each request is sent at its scheduled arrival time whether or not earlier ones were answered, and its
latency is counted from that scheduled time (so a client that falls behind shows up as latency, not as a lower
rate: no coordinated omission). The client is a small HTTP/1.1 keep-alive pool on asyncio streams: it must cost
far less CPU than the server it loads, on the same 2 cores (a general client library costs several times more per
request).
"""
from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence


@dataclass
class Result:
    scheduled: float
    status: int
    latency_ms: float
    deadline_met: bool | None = None    # the server's own verdict (200 only)
    server_ms: float | None = None      # the server's own latency (arrival to answer)
    batch_size: int = 0
    retry_after: str | None = None
    error: str = ""


class Client:
    """HTTP/1.1 keep-alive connections to one host:port (opened on demand, reused when idle)."""

    def __init__(self, host: str, port: int, timeout_s: float = 10.0):
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, body: bytes = b"", content_type: str = "application/json",
                      headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
        reader, writer = conn
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        if content_type:
            head.append(f"Content-Type: {content_type}")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            status, hdrs, data = await asyncio.wait_for(self._read(reader), self.timeout_s)
        except BaseException:
            writer.close()
            raise
        if hdrs.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append(conn)
        return status, hdrs, data

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        status = int(line.split()[1])
        hdrs: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            data = await reader.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    await reader.readline()
                    break
                parts.append(await reader.readexactly(size))
                await reader.readline()
            data = b"".join(parts)
        else:
            data = await reader.read()
        return status, hdrs, data

    def close(self) -> None:
        for _, w in self.idle:
            w.close()
        self.idle.clear()


def _body(text: str) -> bytes:
    return json.dumps({"text": text}).encode()


async def _one(client: Client, body: bytes, scheduled: float, out: list[Result]) -> None:
    try:
        status, hdrs, data = await client.request("POST", "/predict", body)
        lat = (time.perf_counter() - scheduled) * 1000
        met, bs, server = None, 0, None
        if status == 200:
            d = json.loads(data)
            met, bs, server = d.get("deadline_met"), d.get("batch_size", 0), d.get("latency_ms")
        out.append(Result(scheduled, status, lat, met, server, bs, hdrs.get("retry-after")))
    except Exception as exc:  # a timeout or dropped connection is a result too (error), not a crash of the test
        out.append(Result(scheduled, 0, (time.perf_counter() - scheduled) * 1000, error=f"{type(exc).__name__}: {exc}"))


async def _slow_client(host: str, port: int, body: bytes, seconds: float, out: list[Result]) -> None:
    """A client that trickles its request over `seconds` (one chunk at a time) and then reads the answer."""
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        head = (f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        data = head + body
        step = max(1, len(data) // 20)
        for i in range(0, len(data), step):
            writer.write(data[i:i + step])
            await writer.drain()
            await asyncio.sleep(seconds / 20)
        status, _, _ = await asyncio.wait_for(Client._read(reader), 10)
        writer.close()
        out.append(Result(t0, status, (time.perf_counter() - t0) * 1000))
    except Exception as exc:
        out.append(Result(t0, 0, (time.perf_counter() - t0) * 1000, error=f"{type(exc).__name__}: {exc}"))


async def _open_loop(host: str, port: int, texts: Sequence[str], rate: float, duration_s: float, seed: int,
                     burst: int, slow_clients: int, slow_seconds: float) -> tuple[list[Result], list[Result]]:
    client = Client(host, port)
    rng = random.Random(seed)
    bodies = [_body(t) for t in texts]
    results: list[Result] = []
    slow: list[Result] = []
    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(slow_clients):   # slow clients start spread over the first half of the run
        tasks.append(asyncio.ensure_future(_delayed(start + duration_s * i / max(1, 2 * slow_clients),
                                                    _slow_client(host, port, bodies[i % len(bodies)], slow_seconds,
                                                                 slow))))
    t = start
    k = 0
    if burst:   # a burst: `burst` requests at the same instant, then the Poisson stream
        for _ in range(burst):
            tasks.append(asyncio.ensure_future(_one(client, bodies[k % len(bodies)], start, results)))
            k += 1
    while rate > 0:
        t += rng.expovariate(rate)
        if t > start + duration_s:
            break
        delay = t - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(_one(client, bodies[k % len(bodies)], t, results)))
        k += 1
    await asyncio.gather(*tasks)
    client.close()
    return results, slow


async def _delayed(when: float, coro: Any) -> None:
    await asyncio.sleep(max(0.0, when - time.perf_counter()))
    await coro


@dataclass
class LoadSummary:
    rate_rps: float
    duration_s: float
    sent: int
    ok: int
    rejected: int
    errors: int
    throughput_rps: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    server_p99_ms: float | None     # p99 by the server's clock
    miss_rate: float              # accepted requests answered after the deadline (client-side time), / accepted
    server_miss_rate: float       # the same by the server's own clock (arrival at the server to answer)
    rejection_rate: float         # 503 / sent
    mean_batch: float | None
    deadline_ms: float
    retry_after_ok: bool          # every 503 carried a Retry-After header
    slow_clients: dict[str, Any] = field(default_factory=dict)
    first_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _pct(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(round(q / 100 * (len(sorted_values) - 1))))]


def summarise(results: Sequence[Result], slow: Sequence[Result], *, rate: float, duration_s: float,
              deadline_ms: float) -> LoadSummary:
    ok = [r for r in results if r.status == 200]
    rej = [r for r in results if r.status == 503]
    err = [r for r in results if r.status not in (200, 503)]
    lats = sorted(r.latency_ms for r in ok)

    def pct(q: float) -> float | None:
        return _pct(lats, q)

    span = (max(r.scheduled + r.latency_ms / 1000 for r in results) - min(r.scheduled for r in results)
            if results else 0.0)
    return LoadSummary(
        rate_rps=rate, duration_s=duration_s, sent=len(results), ok=len(ok), rejected=len(rej), errors=len(err),
        throughput_rps=len(ok) / span if span > 0 else 0.0, p50_ms=pct(50), p99_ms=pct(99),
        max_ms=lats[-1] if lats else None,
        server_p99_ms=_pct(sorted(r.server_ms for r in ok if r.server_ms is not None), 99),
        miss_rate=sum(r.latency_ms > deadline_ms for r in ok) / len(ok) if ok else 0.0,
        server_miss_rate=sum(r.deadline_met is False for r in ok) / len(ok) if ok else 0.0,
        rejection_rate=len(rej) / len(results) if results else 0.0,
        mean_batch=statistics.fmean(r.batch_size for r in ok) if ok else None, deadline_ms=deadline_ms,
        retry_after_ok=all(r.retry_after for r in rej),
        slow_clients=({"n": len(slow), "ok": sum(r.status == 200 for r in slow),
                       "median_ms": statistics.median(r.latency_ms for r in slow)} if slow else {}),
        first_error=err[0].error or f"HTTP {err[0].status}" if err else "")


def run_load(host: str, port: int, texts: Sequence[str], *, rate: float, duration_s: float, deadline_ms: float,
             seed: int = 0, burst: int = 0, slow_clients: int = 0, slow_seconds: float = 1.0) -> LoadSummary:
    """Send Poisson arrivals at `rate` req/s for `duration_s` (plus an optional burst and slow clients)."""
    try:
        import uvloop  # type: ignore[import-not-found]
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    results, slow = runner(_open_loop(host, port, texts, rate, duration_s, seed, burst, slow_clients, slow_seconds))
    return summarise(results, slow, rate=rate, duration_s=duration_s, deadline_ms=deadline_ms)
