"""Check an exported model against its PyTorch reference on real task inputs.

Every export step calls `check_export`: it runs the same batches through the reference and the
exported file, compares the outputs (max abs diff, cosine, agreement of predicted labels) against a
tolerance stated per precision, and raises ExportMismatchError with the numbers when the file is off.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ExportMismatchError

Forward = Callable[[dict[str, Any]], np.ndarray]


@dataclass(frozen=True)
class Tolerance:
    """How far an export's outputs may drift from the FP32 PyTorch reference."""

    max_abs_diff: float | None   # on logits; None: not bounded (INT8 moves logits by design)
    min_cosine: float            # cosine of the flattened outputs
    min_agreement: float         # share of examples with the same predicted label


# Stated per precision; INT8 and FP16 are compared with the FP32 reference, so they get room.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_abs_diff=1e-3, min_cosine=0.99999, min_agreement=0.99),
    "fp16": Tolerance(max_abs_diff=5e-2, min_cosine=0.999, min_agreement=0.97),
    "int8": Tolerance(max_abs_diff=None, min_cosine=0.98, min_agreement=0.90),
}


@dataclass(frozen=True)
class ExportCheck:
    """Outputs of an export versus the reference on the same inputs."""

    n: int
    max_abs_diff: float
    mean_abs_diff: float
    cosine: float
    label_agreement: float
    precision: str
    tolerance: Tolerance
    inputs: str                 # where the inputs came from, e.g. "sst2 dev[:64]"

    @property
    def failures(self) -> list[str]:
        """Which tolerance bounds the outputs break (empty when the export is within tolerance)."""
        t, out = self.tolerance, []
        if t.max_abs_diff is not None and not self.max_abs_diff <= t.max_abs_diff:
            out.append(f"max abs diff {self.max_abs_diff:.3g} > {t.max_abs_diff:g}")
        if not self.cosine >= t.min_cosine:
            out.append(f"cosine {self.cosine:.6f} < {t.min_cosine:g}")
        if not self.label_agreement >= t.min_agreement:
            out.append(f"label agreement {self.label_agreement:.4f} < {t.min_agreement:g}")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = not self.failures
        return d


def tolerance_for(precision: str, max_abs_diff: float | None = None) -> Tolerance:
    """The stated tolerance of a precision, optionally with the max-abs-diff bound overridden."""
    base = TOLERANCES[precision]
    if max_abs_diff is None:
        return base
    return Tolerance(max_abs_diff=max_abs_diff, min_cosine=base.min_cosine, min_agreement=base.min_agreement)


def compare_outputs(ref: np.ndarray, got: np.ndarray, precision: str, tolerance: Tolerance | None = None,
                    inputs: str = "") -> ExportCheck:
    """Compare two output arrays of shape [n, classes]."""
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if ref.shape != got.shape:
        raise ExportMismatchError(f"exported outputs have shape {got.shape}, reference {ref.shape}")
    diff = np.abs(ref - got)
    finite = bool(np.isfinite(got).all())
    denom = float(np.linalg.norm(ref) * np.linalg.norm(got))
    cosine = float((ref * got).sum() / denom) if denom > 0 and finite else 0.0
    if ref.ndim == 2 and ref.shape[1] > 1:
        agree = float((ref.argmax(-1) == got.argmax(-1)).mean())
    else:  # regression: no labels to agree on
        agree = 1.0
    return ExportCheck(n=int(ref.shape[0]), max_abs_diff=float(diff.max()) if finite else float("inf"),
                       mean_abs_diff=float(diff.mean()) if finite else float("inf"), cosine=cosine,
                       label_agreement=agree, precision=precision,
                       tolerance=tolerance or TOLERANCES[precision], inputs=inputs)


def run_batches(forward: Forward, batches: Sequence[dict[str, Any]]) -> np.ndarray:
    """Concatenated outputs of `forward` over batches."""
    return np.concatenate([np.asarray(forward(b), dtype=np.float32) for b in batches], axis=0)


def check_export(reference: Forward | np.ndarray, candidate: Forward, batches: Sequence[dict[str, Any]],
                 precision: str, *, what: str, tolerance: Tolerance | None = None, inputs: str = "",
                 raise_on_fail: bool = True) -> ExportCheck:
    """Run `batches` through the reference (or take its precomputed outputs) and the export; raise on mismatch."""
    ref = reference if isinstance(reference, np.ndarray) else run_batches(reference, batches)
    got = run_batches(candidate, batches)
    check = compare_outputs(ref, got, precision, tolerance, inputs)
    if check.failures and raise_on_fail:
        raise ExportMismatchError(
            f"{what}: outputs differ from the PyTorch reference on {check.n} inputs ({inputs}): "
            f"{'; '.join(check.failures)} (max abs diff {check.max_abs_diff:.3g}, cosine {check.cosine:.6f}, "
            f"label agreement {check.label_agreement:.4f}). The exported file is not trustworthy: re-export it, "
            f"or loosen the tolerance only if this precision really needs it",
            max_abs_diff=check.max_abs_diff, tolerance=check.tolerance.max_abs_diff)
    return check


def sample_batches(tokenizer: Any, task_name: str | None, *, n: int = 64, batch_size: int = 8, max_length: int = 128,
                   split: str = "dev", settings: Any = None, seed: int = 0) -> tuple[list[dict[str, Any]], str]:
    """Padded batches of real task inputs (first `n` examples of `split`), or random token ids without a task.

    Returns the batches and a description of where they came from.
    """
    from ..training.text import Encoded, collate, encode, length_grouped_batches

    pad = tokenizer.pad_token_id or 0
    if task_name:
        from ..tasks.base import get_task

        task = get_task(task_name)
        examples = task.load(split, settings, limit=n)
        enc = encode(tokenizer, examples, max_length)
        where = f"{task.name} {split}[:{len(examples)}]"
    else:
        rng = np.random.default_rng(seed)
        vocab = len(tokenizer)
        ids, tti = [], []
        for _ in range(n):
            length = int(rng.integers(4, max(5, max_length // 2)))
            body = rng.integers(5, vocab, size=length - 2).tolist()
            ids.append([tokenizer.cls_token_id or 0] + body + [tokenizer.sep_token_id or 0])
            tti.append([0] * length)
        enc = Encoded(ids, tti, [0] * n)
        where = f"{n} random token sequences (no task given)"
    batches = [collate(enc, b, pad, with_labels=False)
               for b in length_grouped_batches(enc.lengths, batch_size, seed, shuffle=False)]
    return batches, where

