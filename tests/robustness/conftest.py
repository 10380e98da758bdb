"""Hypothesis profiles for the fuzz tests, and a per-reader tally of what the fuzzers tried.

HYPOTHESIS_PROFILE=ci (the default) runs a bounded number of examples per reader, derandomised so CI is repeatable;
HYPOTHESIS_PROFILE=fuzz (`make fuzz`) runs many more with fresh randomness. EDGESLIM_FUZZ_REPORT=path writes the
tally as JSON; EDGESLIM_FUZZ_RECORD_ONLY=1 counts crashes instead of failing on the first (to measure a reader).
"""
from __future__ import annotations

import json
import os
from collections import Counter, defaultdict

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                      HealthCheck.data_too_large, HealthCheck.filter_too_much],
               print_blob=True)
settings.register_profile("ci", max_examples=40, derandomize=True, **_COMMON)
settings.register_profile("fuzz", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# input kind -> Counter(tried, ok, clear_error, crash); crash kinds -> Counter of exception type names
TALLY: dict[str, Counter] = defaultdict(Counter)
CRASH_TYPES: dict[str, Counter] = defaultdict(Counter)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not TALLY:
        return
    rows = [f"{'input kind':28s} {'tried':>6s} {'ok':>6s} {'clear':>6s} {'crash':>6s}"]
    for kind, c in sorted(TALLY.items()):
        rows.append(f"{kind:28s} {c['tried']:6d} {c['ok']:6d} {c['clear_error']:6d} {c['crash']:6d}"
                    + (f"  {dict(CRASH_TYPES[kind])}" if CRASH_TYPES[kind] else ""))
    terminalreporter.write_sep("-", "fuzzed readers")
    terminalreporter.write_line("\n".join(rows))
    out = os.environ.get("EDGESLIM_FUZZ_REPORT")
    if out:
        with open(out, "w") as f:
            json.dump({k: {**v, "crash_types": dict(CRASH_TYPES[k])} for k, v in TALLY.items()}, f, indent=2)
