"""Image-classification evaluation over image folders (no torchvision: PIL + numpy preprocessing)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..tasks.base import TaskSpec
from ..tasks.vision import ImageExample, load_image


def preprocessing(model_dir: str | Path, config: dict[str, Any]) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """(size, mean, std) from preprocessor_config.json, else the model config (ViT defaults 0.5/0.5)."""
    size = int(config.get("image_size", 224))
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    pp = Path(model_dir) / "preprocessor_config.json"
    if pp.is_file():
        d = json.loads(pp.read_text())
        mean = tuple(d.get("image_mean", mean))
        std = tuple(d.get("image_std", std))
        s = d.get("crop_size") or d.get("size") or size
        size = int(s.get("height", s.get("shortest_edge", size)) if isinstance(s, dict) else s)
    return size, mean, std


def predict_images(forward: Callable[[dict[str, Any]], np.ndarray], examples: Sequence[ImageExample], size: int,
                   mean: Sequence[float], std: Sequence[float], batch_size: int = 32) -> np.ndarray:
    """Logits for every image, in example order."""
    import torch

    outs = []
    for s in range(0, len(examples), batch_size):
        px = np.stack([load_image(e.path, size, tuple(mean), tuple(std)) for e in examples[s:s + batch_size]])
        outs.append(forward({"pixel_values": torch.from_numpy(px)}))
    return np.concatenate(outs)


def restrict_logits(task: TaskSpec, logits: np.ndarray) -> np.ndarray:
    """For an ImageNet-1K head on Imagenette, keep the 10 Imagenette classes' logits in label order."""
    index = task.options.get("imagenet_index")
    if index and logits.shape[1] == 1000:
        return logits[:, [index[w] for w in task.labels]]
    return logits


def evaluate_image_forward(forward: Callable, task: TaskSpec, examples: Sequence[ImageExample], model_dir: Path,
                           config: dict[str, Any], batch_size: int, runtime: str) -> dict[str, Any]:
    """Top-1/top-5 of a forward function on image examples."""
    from .text import score

    size, mean, std = preprocessing(model_dir, config)
    t0 = time.perf_counter()
    logits = restrict_logits(task, predict_images(forward, examples, size, mean, std, batch_size))
    result: dict[str, Any] = score(task, logits, [e.label for e in examples])
    result["eval"] = {"n": len(examples), "batch_size": batch_size, "image_size": size, "runtime": runtime,
                      "seconds": round(time.perf_counter() - t0, 2)}
    return result
