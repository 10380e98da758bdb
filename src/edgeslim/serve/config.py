"""The serving settings: one dataclass shared by the CLI, the Python API and the tests."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

RUNTIME_FORMATS = {"onnx": "onnx", "litert": "tflite", "executorch": "pte"}


@dataclass(frozen=True)
class ServeConfig:
    """How `edgeslim serve` runs a model.

    deadline_ms: end-to-end budget per request (arrival at the server to the response being ready).
    max_batch / max_wait_ms: None = chosen from the measured latency curve (see curve.plan_batching).
    batching: False serves one request at a time (the comparison the load test makes).
    max_queue: hard cap on waiting requests (admission control also rejects earlier, from the predicted finish).
    margin_ms: safety margin kept between a batch's predicted end and the earliest deadline in it.
    """

    model: str
    deadline_ms: float
    runtime: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int = 2
    max_batch: int | None = None
    max_wait_ms: float | None = None
    batching: bool = True
    max_queue: int = 1024
    max_body_bytes: int = 64 * 1024
    max_text_chars: int = 10_000
    max_tokens: int = 128
    margin_ms: float | None = None
    typical_tokens: int = 32
    calibration_seconds: float = 6.0
    shutdown_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.deadline_ms > 0:
            raise ConfigError(f"--deadline-ms must be > 0 (got {self.deadline_ms}): the end-to-end budget per "
                              "request in milliseconds, e.g. --deadline-ms 50")
        if self.runtime is not None and self.runtime not in RUNTIME_FORMATS:
            raise ConfigError(f"--runtime {self.runtime!r} is not one of {', '.join(RUNTIME_FORMATS)}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"--port {self.port} is not a TCP port (1-65535)")
        for name in ("threads", "max_queue", "max_body_bytes", "max_text_chars", "max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.max_batch is not None and self.max_batch < 1:
            raise ConfigError(f"--max-batch must be >= 1 (got {self.max_batch})")
        if self.max_wait_ms is not None and self.max_wait_ms < 0:
            raise ConfigError(f"--max-wait-ms must be >= 0 (got {self.max_wait_ms})")
        if self.max_tokens < 4:
            raise ConfigError(f"--max-tokens must be >= 4 (got {self.max_tokens}): [CLS] text [SEP] needs room")

    @property
    def margin_s(self) -> float:
        """Safety margin: given, or 5% of the deadline (at least 1 ms) for the HTTP work outside the model."""
        return (self.margin_ms if self.margin_ms is not None else max(1.0, 0.05 * self.deadline_ms)) / 1000
