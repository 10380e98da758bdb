"""Scoring a model on a task in the runtime of its format (text, QA, images) and the `eval` analysis step."""
