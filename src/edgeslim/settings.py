"""Process-wide settings resolved from the environment: data directory, output root, threads."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

DATA_ENV = "EDGESLIM_DATA"
RUNS_ENV = "EDGESLIM_RUNS"
THREADS_ENV = "EDGESLIM_THREADS"

# src/edgeslim/settings.py -> repo root is three levels up; ../shared/data is beside the repo.
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class Settings:
    """Resolved settings; build with `Settings.from_env()`."""

    data_dir: Path
    data_dir_source: str  # "EDGESLIM_DATA" or "default"
    runs_dir: Path
    threads: int

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ.get(DATA_ENV)
        data_dir = Path(env).expanduser() if env else DEFAULT_DATA_DIR
        runs = Path(os.environ.get(RUNS_ENV, "runs")).expanduser()
        threads = int(os.environ.get(THREADS_ENV, "2"))
        return cls(data_dir=data_dir, data_dir_source=DATA_ENV if env else "default", runs_dir=runs, threads=threads)

    def require_data_dir(self) -> Path:
        """Return the data directory or raise DataError naming both places it was looked for."""
        if not self.data_dir.is_dir():
            raise DataError(
                f"data directory not found: {self.data_dir} (from {self.data_dir_source}). "
                f"Set {DATA_ENV}=/path/to/data or place the data at {DEFAULT_DATA_DIR}"
            )
        return self.data_dir


def get_settings() -> Settings:
    """Settings as the environment says now (re-read on each call so tests can monkeypatch env)."""
    return Settings.from_env()
