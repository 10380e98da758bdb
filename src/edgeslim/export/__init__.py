"""Export to edge runtimes: one module per target (each registers itself and its `export.<target>` step), the
umbrella `export` step, and validation of every file against the PyTorch reference."""
