"""One error hierarchy for edgeslim: every failure a user can cause is an EdgeslimError.

The CLI turns an EdgeslimError into a one-line message and exit code 2; anything else is a bug.
"""
from __future__ import annotations


class EdgeslimError(Exception):
    """Base class of every error edgeslim raises on purpose."""


class ConfigError(EdgeslimError):
    """A setting, option or argument is invalid (names the option and the fix)."""


class RecipeError(ConfigError):
    """A recipe file is malformed: unknown step or key, bad value, bad step order."""


class DataError(EdgeslimError):
    """A data file or directory is missing or malformed."""


class ModelError(EdgeslimError):
    """A model folder or artifact cannot be loaded (missing weights, bad config)."""


class StepError(EdgeslimError):
    """An optimisation step failed for a reason the user can act on."""


class ResourceError(StepError):
    """Not enough disk or memory for a step: raised before work where it can be predicted, else on the write that
    failed (with nothing partial left behind); names what was needed, what is free, and where."""


class ExportMismatchError(StepError):
    """An exported model's outputs differ from the reference beyond the stated tolerance."""

    def __init__(self, message: str, *, max_abs_diff: float | None = None, tolerance: float | None = None):
        super().__init__(message)
        self.max_abs_diff = max_abs_diff
        self.tolerance = tolerance


class HardwareError(ConfigError):
    """A hardware profile is unknown or malformed."""


class MissingBackendError(EdgeslimError):
    """An optional backend is not installed; the message names the pip extra to install."""

    def __init__(self, backend: str, extra: str, detail: str = ""):
        self.backend = backend
        self.extra = extra
        msg = f"{backend} is not installed; install it with: pip install 'edgeslim[{extra}]'"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class HubAccessError(ModelError):
    """Something tried to reach a model hub; edgeslim runs offline only."""
