"""The latency curve fit and the batching plan chosen from it."""
from __future__ import annotations

import numpy as np
import pytest

from edgeslim.errors import ConfigError
from edgeslim.serve.curve import CurvePoint, LatencyCurve, fit_nonnegative, measure_curve, plan_batching


def synthetic(a=1.0, b=0.2, c=0.05, d=0.0) -> LatencyCurve:
    pts = [CurvePoint(B, L, 0, a + b * B + c * B * L + d * B * L * L / 1000, 5)
           for L in (16, 32, 64, 128) for B in (1, 2, 4, 8, 16)]
    return LatencyCurve.fit(pts)


def test_fit_recovers_known_coefficients_and_stays_nonnegative():
    curve = synthetic(1.0, 0.2, 0.05, 0.3)
    assert np.allclose(curve.coef, [1.0, 0.2, 0.05, 0.3], rtol=1e-6, atol=1e-9)
    assert curve.fit_error["max_rel"] < 1e-6
    assert curve.estimate_ms(4, 32) == pytest.approx(1.0 + 0.8 + 0.05 * 128 + 0.3 * 4 * 1024 / 1000)
    x = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]])
    coef = fit_nonnegative(x, np.array([3.0, 2.0, 1.0]))   # the unconstrained slope is negative
    assert (coef >= 0).all()


def test_plan_keeps_two_batches_inside_the_deadline():
    curve = synthetic(2.0, 0.1, 0.1)
    plan = plan_batching(curve, deadline_ms=50, margin_ms=2.5, typical_tokens=32)
    assert 2 * curve.estimate_ms(plan.max_batch, 32) <= 47.5
    bigger = [b for b in (1, 2, 4, 8, 16) if b > plan.max_batch]
    # every bigger size is infeasible or costs more than 5% over the best per request
    best = min(curve.estimate_ms(b, 32) / b for b in (1, 2, 4, 8, 16) if 2 * curve.estimate_ms(b, 32) <= 47.5)
    for b in bigger:
        feasible = 2 * curve.estimate_ms(b, 32) <= 47.5
        assert not feasible or curve.estimate_ms(b, 32) / b > 1.05 * best
    assert plan.max_batch > 1                              # a fixed cost of 2 ms makes batching pay here
    assert plan.predicted_rate_rps > plan.predicted_rate_unbatched_rps
    assert 0 < plan.max_wait_ms <= curve.estimate_ms(1, 32) - curve.estimate_ms(plan.max_batch, 32) / plan.max_batch + 1e-9


def test_plan_without_batching_and_with_a_cap():
    curve = synthetic(2.0, 0.1, 0.1)
    off = plan_batching(curve, deadline_ms=50, margin_ms=2.5, batching=False)
    assert off.max_batch == 1 and off.max_wait_ms == 0
    capped = plan_batching(curve, deadline_ms=50, margin_ms=2.5, max_batch=2)
    assert capped.max_batch == 2


def test_a_deadline_no_request_can_meet_is_refused():
    with pytest.raises(ConfigError, match="Raise --deadline-ms"):
        plan_batching(synthetic(20.0, 1.0, 0.1), deadline_ms=10, margin_ms=1)


def test_measure_curve_times_the_callable_with_the_shapes_asked():
    seen = []

    def run(batch, tokens):
        seen.append((batch, tokens))

    curve = measure_curve(run, deadline_ms=50, max_tokens=64, max_batch=4, budget_s=0.05)
    assert {(p.batch, p.tokens) for p in curve.points} == {(b, t) for b in (1, 2, 4) for t in (16, 32, 64)}
    assert (1, 7) in seen                                  # every request length is run once (warm-up)
    assert all(b <= 4 and t <= 64 for b, t in seen)
