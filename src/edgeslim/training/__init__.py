"""What every training step shares: the one training loop (`loop`), text batching (`text`), task calibration
batches (`calibration`) and QA features (`qa`). Torch loads inside the functions."""
