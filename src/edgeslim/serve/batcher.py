"""Deadline-aware micro-batching and admission control, on one worker thread.

Every accepted request carries its deadline (arrival + deadline_ms). The worker forms a batch around the oldest
request, adding the queued ones that pay to join it (the measured curve says running them together costs less than
apart: a long request does not pad a batch of short ones), and waits for more requests only while the oldest one
would still finish in time with the bigger batch (and at most the plan's max wait); of those it runs the number
with the fewest predicted deadline misses over the whole queue. Admission control runs before a request is queued: it predicts when the request would finish
(the batch in flight, then the queue cut into batches) and rejects it at once when that is past its deadline, so
an overloaded server answers 503 + Retry-After instead of answering late.

Predictions come from the measured latency curve scaled by a correction: the 90th percentile of (observed batch
time / curve estimate) over the last 5 s, so load on the machine (the HTTP work, neighbours) is learned; plus the
answer lag, the 98th percentile over the last 2 s of the time from a batch's end to its response being ready (the
event loop is busy with other requests under load), which every deadline check subtracts from the budget. Both
forget: a burst's spike cannot lock the server out. What these
estimates still miss (batch times swing by half on 2 shared cores) a headroom controller absorbs: each answered
miss shrinks the budget the checks plan against by 5% of the deadline (at most once per 4 deadlines: correlated
misses count once), each request answered in time gives back 0.025% and time 2% per second (AIMD on the miss rate).
"""
from __future__ import annotations

import collections
import itertools
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .curve import BatchPlan, LatencyCurve


class Overloaded(Exception):
    """The request is rejected before queueing (503): why, and when to retry."""

    def __init__(self, reason: str, kind: str, retry_after_s: float):
        super().__init__(reason)
        self.kind = kind
        self.retry_after_s = retry_after_s

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after_s)))   # Retry-After is whole seconds (RFC 9110)


@dataclass
class Pending:
    """One accepted request waiting for its answer."""

    row: tuple[list[int], list[int]]
    arrival: float
    deadline: float
    # where the answer goes: a callable done(logits row or exception, pending) called on the worker thread, or
    # (with the app's deliver) an asyncio future resolved on its event loop
    done: Any
    started: float = 0.0
    finished: float = 0.0
    batch_size: int = 0

    @property
    def tokens(self) -> int:
        return len(self.row[0])


class Recent:
    """A quantile of the values seen in the last `window_s` seconds (`empty` when fewer than `min_n`): estimates
    that follow the machine now and forget a burst, so a spike cannot lock the server out (no answers -> no
    update -> rejected forever)."""

    def __init__(self, q: float, window_s: float, empty: float, lo: float = float("-inf"), hi: float = float("inf"),
                 min_n: int = 1):
        self.q, self.window_s, self.empty, self.lo, self.hi, self.min_n = q, window_s, empty, lo, hi, min_n
        self.samples: collections.deque = collections.deque(maxlen=512)
        self._value, self._at, self._new = empty, -1.0, 0

    def observe(self, value: float, now: float | None = None) -> None:
        self.samples.append((time.perf_counter() if now is None else now, value))
        self._new += 1

    def value(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        if now - self._at < 0.05 and self._new < 16:    # recomputed every 50 ms or 16 new samples
            return self._value
        while self.samples and now - self.samples[0][0] > self.window_s:
            self.samples.popleft()
        vals = [v for _, v in self.samples]
        self._value = (float(min(self.hi, max(self.lo, np.quantile(vals, self.q)))) if len(vals) >= self.min_n
                       else self.empty)
        self._at, self._new = now, 0
        return self._value


class Correction(Recent):
    """Scale for the curve: p90 of observed/estimated batch times over the last 5 s (1.0 with fewer than 16
    batches); the tail beyond it is the headroom controller's job."""

    def __init__(self) -> None:
        super().__init__(0.9, 5.0, 1.0, lo=0.5, hi=5.0, min_n=16)

    def record(self, observed_ms: float, estimated_ms: float, now: float | None = None) -> None:
        if estimated_ms > 0:
            self.observe(observed_ms / estimated_ms, now)

    @property
    def factor(self) -> float:
        return self.value()


class Lag(Recent):
    """p98 of the answer lags (seconds) over the last 2 s (0 with fewer than 20): batch end to response ready on the
    event loop."""

    def __init__(self) -> None:
        super().__init__(0.98, 2.0, 0.0, min_n=20)   # fewer answers than that: one GC pause is no trend

    @property
    def seconds(self) -> float:
        return self.value()


@dataclass
class Headroom:
    """The share of the deadline the checks plan against: AIMD on the miss rate. A miss takes 5% off, at most once
    per `window_s` (correlated misses, e.g. a burst, count once, as TCP cuts its window once per round trip); each
    request answered in time gives back 0.025% and time gives back 2% per second (a server that rejects everything
    still recovers)."""

    value: float = 1.0
    floor: float = 0.3
    down: float = 0.05
    up: float = 0.00025
    per_second: float = 0.02
    window_s: float = 0.1
    last: float = field(default_factory=time.perf_counter)
    last_cut: float = float("-inf")

    def observe(self, met: bool, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        self.value = min(1.0, self.value + self.per_second * max(0.0, now - self.last) + (self.up if met else 0.0))
        self.last = now
        if not met and now - self.last_cut >= self.window_s:
            self.value = max(self.floor, self.value - self.down)
            self.last_cut = now

    def current(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        return min(1.0, self.value + self.per_second * max(0.0, now - self.last))


class Batcher:
    """The queue, the admission check and the worker thread that runs batches."""

    def __init__(self, run: Callable[[Sequence[tuple[list[int], list[int]]]], np.ndarray], curve: LatencyCurve,
                 plan: BatchPlan, *, deadline_s: float, margin_s: float, max_queue: int,
                 on_batch: Callable[[int, float], None] | None = None, clock: Callable[[], float] = time.perf_counter,
                 deliver: Callable[[list[Pending], Any, Exception | None], None] | None = None):
        self.run, self.curve, self.plan = run, curve, plan
        self.deadline_s, self.margin_s, self.max_queue = deadline_s, margin_s, max_queue
        self.on_batch = on_batch
        self.clock = clock
        self.correction = Correction()
        self.lag = Lag()
        self.headroom = Headroom(window_s=max(0.1, 4 * deadline_s))
        # deliver(batch, outputs, error): hand a finished batch back (the app does it with one event-loop wakeup);
        # by default each request's own `done` callback is called
        self.deliver = deliver or self._deliver_each
        self.queue: collections.deque[Pending] = collections.deque()
        self.cond = threading.Condition()
        self.busy_until = 0.0            # predicted end of the batch in flight (clock seconds); 0 when idle
        self.wait_until = 0.0            # while the worker waits to fill a batch: when it will start at the latest
        self.accepting = True
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="edgeslim-batcher", daemon=True)
        self.batches = 0
        self.accepted = 0

    # -- predictions ----------------------------------------------------------------------------------------------
    def estimate_s(self, batch: int, tokens: int) -> float:
        return self.curve.estimate_ms(batch, tokens) * self.correction.factor / 1000

    def predicted_finish(self, now: float, extra: Pending | None = None) -> float:
        """When the last queued request (or `extra`, queued last) would finish, FIFO in max_batch chunks."""
        items = list(self.queue) + ([extra] if extra is not None else [])
        b = self.plan.max_batch
        t = max(now, self.busy_until, self.wait_until if len(items) < b else 0.0)
        for i in range(0, len(items), b):
            t += self.chunk_s(items[i:i + b])
        return t

    def chunk_s(self, chunk: Sequence[Pending]) -> float:
        """Predicted time to serve `chunk`: as one padded batch, or one by one when padding would cost more (the
        worker only batches requests that pay to join, see _compose)."""
        together = self.estimate_s(len(chunk), max(p.tokens for p in chunk))
        if len(chunk) == 1:
            return together
        return min(together, sum(self.estimate_s(1, p.tokens) for p in chunk))

    def _plan_with(self, now: float, p: Pending) -> tuple[float, float]:
        """(predicted end of the chunk `p` would join, the earliest due time in that chunk): `p` may join only if
        the chunk still ends in time for every request in it (a bigger last batch takes longer for all of it)."""
        items = list(self.queue) + [p]
        b = self.plan.max_batch
        last = (len(items) - 1) // b * b
        finish = self.predicted_finish(now, p)
        return finish, min(self.due(x) for x in items[last:])

    # -- the request side (event loop thread) ----------------------------------------------------------------------
    def due(self, p: Pending) -> float:
        """The time `p` must be answered by, as the checks plan it: its share of the deadline, less the margin and
        the answer lag."""
        return p.arrival + self.headroom.current() * self.deadline_s - self.margin_s - self.lag.seconds

    def answered(self, p: Pending, when: float) -> bool:
        """Record that `p` was answered at `when` (lag and headroom learn from it); True when in its deadline."""
        self.lag.observe(when - p.finished)
        met = when <= p.deadline
        self.headroom.observe(met)
        return met

    def submit(self, p: Pending) -> None:
        """Queue `p` or raise Overloaded (queue full, predicted miss, shutting down)."""
        try:
            self._admit(p)
        finally:
            # let the worker in: a thread that submits in a burst holds the GIL and retakes the lock at once, and
            # would starve the worker of both (it then starts its batch tens of ms late)
            time.sleep(0)

    def _admit(self, p: Pending) -> None:
        with self.cond:
            if not self.accepting:
                raise Overloaded("the server is shutting down", "shutting_down", 1.0)
            now = self.clock()
            if len(self.queue) >= self.max_queue:
                raise Overloaded(f"queue full ({self.max_queue} waiting)", "queue_full",
                                 self.predicted_finish(now) - now)
            finish, due = self._plan_with(now, p)
            if finish > due:
                late = (finish - p.arrival) * 1000
                raise Overloaded(f"the queue cannot meet the deadline: this request would finish {late:.1f} ms after "
                                 f"arrival (deadline {self.deadline_s * 1000:g} ms)", "deadline",
                                 self.predicted_finish(now) - now)
            self.queue.append(p)
            self.accepted += 1
            self.cond.notify()

    def overloaded(self, tokens: int) -> float:
        """Seconds until the queue drains if a `tokens`-long request arriving now could not finish in time, else 0:
        the cheap check the HTTP layer makes before it reads a body (a rejection must cost little, or rejecting
        under overload steals the CPU the accepted requests need)."""
        now = self.clock()
        probe = Pending(row=([0] * tokens, [0] * tokens), arrival=now, deadline=now + self.deadline_s, done=None)
        with self.cond:
            if not self.queue and not self.busy_until:
                return 0.0
            finish, due = self._plan_with(now, probe)
            return max(1e-3, self.predicted_finish(now) - now) if finish > due else 0.0

    def depth(self) -> int:
        return len(self.queue)

    # -- the worker ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, finish every queued request, end the worker."""
        with self.cond:
            self.accepting = False
            self.stopping = True
            self.cond.notify_all()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _take(self, now: float) -> list[Pending] | None:
        """The next batch, or None to wait (called with the lock held)."""
        q, plan = self.queue, self.plan
        head = q[0]
        n = min(len(q), plan.max_batch)
        if n < plan.max_batch and not self.stopping and plan.max_wait_ms > 0:
            width = max(q[i].tokens for i in range(n))
            latest = self.due(head) - self.estimate_s(n + 1, width)
            wait_until = min(head.arrival + plan.max_wait_ms / 1000, latest)
            if now < wait_until:
                self._wait = wait_until - now
                self.wait_until = wait_until
                return None
        self.wait_until = 0.0
        members = self._compose(n)
        take = self._best_prefix(now, members)
        batch = members[:take]
        self.busy_until = now + self.estimate_s(take, max(p.tokens for p in batch))
        chosen = {id(p) for p in batch}
        self.queue = collections.deque(p for p in q if id(p) not in chosen)
        return batch

    def _compose(self, n: int) -> list[Pending]:
        """The head plus the queued requests that pay to join it, in FIFO order: a request joins when running it in
        the batch costs less than running it alone (curve: t(k+1, max len) <= t(k, len) + t(1, its len)), so one
        long request does not pad a batch of short ones. At most n (max_batch) requests."""
        q = self.queue
        head = q[0]
        members, width = [head], head.tokens
        for p in itertools.islice(q, 1, 4 * self.plan.max_batch):
            if len(members) >= n:
                break
            w = max(width, p.tokens)
            if self.estimate_s(len(members) + 1, w) <= (self.estimate_s(len(members), width)
                                                          + self.estimate_s(1, p.tokens)):
                members.append(p)
                width = w
        return members

    def _misses(self, start: float, items: Sequence[Pending]) -> int:
        """Predicted deadline misses when `items` are served from `start` in FIFO chunks of max_batch."""
        t, late, b = start, 0, self.plan.max_batch
        for i in range(0, len(items), b):
            chunk = items[i:i + b]
            t += self.chunk_s(chunk)
            late += sum(t > p.deadline for p in chunk)
        return late

    def _best_prefix(self, now: float, members: list[Pending]) -> int:
        """How many of `members` to run now: the size with the fewest predicted misses over the queue (this batch,
        then the rest in max_batch chunks, as admission planned), the largest on a tie."""
        chosen = {id(p) for p in members}
        rest = [p for p in itertools.islice(self.queue, 4 * self.plan.max_batch) if id(p) not in chosen]
        best, best_late = len(members), None
        for k in range(len(members), 0, -1):
            head = members[:k]
            end = now + self.estimate_s(k, max(p.tokens for p in head))
            late = sum(end > p.deadline for p in head) + self._misses(end, members[k:] + rest)
            if best_late is None or late < best_late:
                best, best_late = k, late
            if late == 0:
                break
        return best

    def _loop(self) -> None:
        while True:
            with self.cond:
                batch = None
                while batch is None:
                    if not self.queue:
                        if self.stopping:
                            return
                        self.cond.wait()
                        continue
                    self._wait = 0.0
                    batch = self._take(self.clock())
                    if batch is None:
                        self.cond.wait(self._wait)
            self._run(batch)

    def _run(self, batch: list[Pending]) -> None:
        t0 = self.clock()
        for p in batch:
            p.started, p.batch_size = t0, len(batch)
        width = max(p.tokens for p in batch)
        try:
            out: Any = self.run([p.row for p in batch])
            err = None
        except Exception as exc:   # a model failure answers every request of the batch with 500; the worker lives
            out, err = None, exc
        t1 = self.clock()
        self.correction.record((t1 - t0) * 1000, self.curve.estimate_ms(len(batch), width))
        with self.cond:
            self.busy_until = 0.0
        self.batches += 1
        for p in batch:
            p.finished = t1
        self.deliver(batch, out, err)
        if self.on_batch:
            self.on_batch(len(batch), t1 - t0)

    @staticmethod
    def _deliver_each(batch: list[Pending], out: Any, err: Exception | None) -> None:
        for i, p in enumerate(batch):
            p.done(err if err is not None else out[i], p)
