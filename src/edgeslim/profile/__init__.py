"""Profiling: cost, roofline, predicted latency/energy per hardware profile, measured host latency, deadline
verdict; the `profile` analysis step."""
