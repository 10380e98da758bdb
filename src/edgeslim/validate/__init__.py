"""Validation (the survey's sixth step): the final model in its runtime against the baseline, measured and
predicted; the `validate` analysis step."""
