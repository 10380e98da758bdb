"""A real server on loopback: the tiny model quantized to ONNX, the FastAPI app run by uvicorn in a thread."""
from __future__ import annotations

import socket
import threading
import time

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    def __init__(self, server, port):
        import uvicorn

        from edgeslim.serve.app import create_app

        self.server, self.port = server, port
        self.uv = uvicorn.Server(uvicorn.Config(create_app(server), host="127.0.0.1", port=port, log_level="error",
                                                lifespan="on", timeout_graceful_shutdown=10))
        self.thread = threading.Thread(target=self.uv.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.uv.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.uv.should_exit = True
        self.thread.join(20)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_steps):
    pytest.importorskip("onnxruntime")
    return tiny_steps.run("quantize", {"scheme": "dynamic"})


@pytest.fixture(scope="session")
def served(tiny_onnx):
    pytest.importorskip("fastapi")
    from edgeslim.serve import ServeConfig
    from edgeslim.serve.app import build_server

    port = free_port()
    cfg = ServeConfig(model=str(tiny_onnx.path), deadline_ms=200, port=port, max_body_bytes=64 * 1024,
                      calibration_seconds=0.5, max_tokens=32)
    running = Running(build_server(cfg), port)
    yield running
    running.stop()
