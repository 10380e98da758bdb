"""Image-folder classification tasks (Imagenette, CIFAR-10): <root>/<class>/<image>."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .base import TaskSpec, register_task

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}

# Imagenette wnid -> ImageNet-1K index, so ImageNet-pretrained models can be scored on it
IMAGENETTE_TO_IMAGENET = {
    "n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491, "n03028079": 497,
    "n03394916": 566, "n03417042": 569, "n03425413": 571, "n03445777": 574, "n03888257": 701,
}


@dataclass(frozen=True)
class ImageExample:
    """One image file and its class index."""

    path: Path
    label: int


def read_image_folder(root: Path, spec: TaskSpec) -> list[ImageExample]:
    """List <root>/<class>/<image> files; classes are spec.labels in order (sorted folder names)."""
    out: list[ImageExample] = []
    for idx, cls in enumerate(spec.labels):
        d = root / cls
        if not d.is_dir():
            raise DataError(f"{root} has no class folder {cls!r}; expected one folder per class: {', '.join(spec.labels)}")
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        out.extend(ImageExample(p, idx) for p in files)
    return out


register_task(TaskSpec(
    name="imagenette", kind="image-classification", folder="vision", files={"val": "imagenette-val-224-subset"},
    reader=read_image_folder, labels=tuple(sorted(IMAGENETTE_TO_IMAGENET)), metrics=("top1", "top5"),
    primary="top1", description="Imagenette val subset, 10 ImageNet classes x 200 images (224x224)",
    options={"imagenet_index": IMAGENETTE_TO_IMAGENET},
))
register_task(TaskSpec(
    name="cifar10", kind="image-classification", folder="vision", files={"test": "cifar10-test-jpg"},
    reader=read_image_folder,
    labels=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    metrics=("top1", "top5"), primary="top1", description="CIFAR-10 test set, 10,000 32x32 JPEG images",
))


def load_image(path: Path, size: int, mean: tuple[float, ...], std: tuple[float, ...]):
    """Decode an image to a normalised float32 CHW array: RGB, resize shorter side, centre crop."""
    import numpy as np

    from .._compat import require

    Image = require("PIL.Image")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
            w, h = im.size
            left, top = (w - size) // 2, (h - size) // 2
            im = im.crop((left, top, left + size, top + size))
            arr = np.asarray(im, dtype=np.float32) / 255.0
    # PIL: UnidentifiedImageError (an OSError) for unknown bytes, OSError/ValueError/SyntaxError for a truncated or
    # corrupt file, DecompressionBombError for absurd sizes; ZeroDivisionError for an image of width or height 0
    except (OSError, ValueError, SyntaxError, ZeroDivisionError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path} is not a readable image ({type(exc).__name__}: {exc}); fix: replace or remove "
                        "that file") from None
    arr = (arr - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return arr.transpose(2, 0, 1)
