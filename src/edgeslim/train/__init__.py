"""Training and evaluation loops (import torch; load lazily from the CLI and steps)."""
