"""Structured pruning: heads, FFN neurons, layers and vocabulary physically removed, then recovery; the `prune` step."""
