"""Knowledge distillation: student construction, registered losses, general (stage 1) and task (stage 2) training.

The registered recipe step and its config live in `edgeslim.distill.step`; the CLI in `edgeslim.cli.distill`.
Nothing here is imported by `import edgeslim` (torch loads inside the functions).
"""
