"""RunContext: what every step gets besides its input artifact and config."""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path

from .settings import Settings, get_settings


@dataclass
class RunContext:
    """Output folder, task, seed, threads and verbosity for one step.

    A step writes its output artifact into `out_dir` (atomically) and returns it.
    """

    out_dir: Path
    task: str | None = None
    seed: int = 0
    threads: int = 2
    quiet: bool = False
    settings: Settings = field(default_factory=get_settings)
    lineage: list = field(default_factory=list)   # the run's records so far (pipeline.run_recipe), source first

    @property
    def checkpoint_dir(self) -> Path:
        """Where a step keeps its resumable state (`<out_dir>.ckpt`); removed once its artifact is complete."""
        out = Path(self.out_dir)
        return out.with_name(out.name + ".ckpt")

    def for_step(self, out_dir: Path) -> "RunContext":
        """The same context writing to another folder (a step writes its artifact into out_dir)."""
        return dataclasses.replace(self, out_dir=Path(out_dir))

    def seed_everything(self) -> None:
        """Seed python, numpy and (if loaded) torch; pin torch threads."""
        random.seed(self.seed)
        try:
            import numpy as np

            np.random.seed(self.seed)
        except ImportError:
            pass
        import sys

        if "torch" in sys.modules:
            import torch

            torch.manual_seed(self.seed)
            torch.set_num_threads(self.threads)
