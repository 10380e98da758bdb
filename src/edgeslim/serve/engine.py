"""The model a server runs: an artifact in its runtime, its own tokenizer, and one call from token ids to scores."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..artifact import MANIFEST, ModelArtifact
from ..errors import ConfigError, ModelError
from .config import RUNTIME_FORMATS

FORMAT_RUNTIME = {v: k for k, v in RUNTIME_FORMATS.items()}


def resolve_artifact(model: str | Path, runtime: str | None = None) -> ModelArtifact:
    """The artifact to serve: an artifact folder, an export bundle (pick the `runtime` member) or a run folder
    (its final model, from lineage.json)."""
    path = Path(model)
    if not path.exists():
        raise ModelError(f"--model {path}: not found. Pass a model artifact folder (e.g. runs/demo/05-quantize), an "
                         "export bundle or an `edgeslim optimize`/`run` output folder")
    if not (path / MANIFEST).is_file() and (path / "lineage.json").is_file():
        try:
            lineage = json.loads((path / "lineage.json").read_text())
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path / 'lineage.json'} is not valid JSON ({exc}); pass the model folder itself") from exc
        models = [e for e in lineage if e.get("path") and e.get("step") not in ("eval", "validate", "profile")]
        if not models:
            raise ModelError(f"{path / 'lineage.json'} names no model; pass the model folder itself")
        final = Path(models[-1]["path"])   # relative paths are relative to where the run was started
        path = next((c for c in (final, path / final.name) if c.exists()), final)
    art = ModelArtifact.load(path)
    want = RUNTIME_FORMATS[runtime] if runtime else None
    if want and art.format != want:
        for row in art.extra.get("exports", []):
            if row.get("format") == want:
                return ModelArtifact.load(Path(art.path) / row["export"])
        raise ConfigError(f"{art.path} is a {art.format!r} artifact; --runtime {runtime} needs a {want!r} one. "
                          f"Export it first (edgeslim export {art.path} --targets {runtime}) or drop --runtime")
    if art.format not in FORMAT_RUNTIME:
        raise ConfigError(f"{art.path} is a {art.format!r} artifact; edgeslim serve runs exported models "
                          f"({', '.join(FORMAT_RUNTIME)}). Export or quantize it first (edgeslim export / quantize)")
    return art


@dataclass
class Engine:
    """forward(token batch) -> scores for one artifact, with its tokenizer and label names."""

    artifact: ModelArtifact
    forward: Callable[[dict[str, Any]], np.ndarray]
    tokenizer: Any
    labels: list[str]
    pair: bool
    max_tokens: int
    pad_id: int
    kind: str = "classification"
    info: dict[str, Any] = field(default_factory=dict)

    def encode(self, text: str, text_pair: str | None = None) -> tuple[list[int], list[int]]:
        """Token ids and token type ids of one request (truncated to max_tokens)."""
        enc = self.tokenizer(text, text_pair, truncation=True, max_length=self.max_tokens, padding=False)
        ids = list(enc["input_ids"])
        return ids, list(enc.get("token_type_ids") or [0] * len(ids))

    def batch(self, rows: Sequence[tuple[list[int], list[int]]], width: int | None = None) -> dict[str, np.ndarray]:
        """Right-padded int64 arrays [len(rows), width] (width: the longest row)."""
        width = width or max(len(r[0]) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        tti = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, (a, t) in enumerate(rows):
            ids[i, :len(a)], tti[i, :len(t)], mask[i, :len(a)] = a, t, 1
        return {"input_ids": ids, "token_type_ids": tti, "attention_mask": mask}

    def run(self, rows: Sequence[tuple[list[int], list[int]]]) -> np.ndarray:
        """Scores [len(rows), n_labels] (logits) for a batch of encoded requests."""
        return np.asarray(self.forward(self.batch(rows)), dtype=np.float32)

    def answer(self, logits: np.ndarray) -> dict[str, Any]:
        """The response body for one row of logits."""
        if self.kind == "regression":
            return {"score": float(logits.reshape(-1)[0])}
        z = logits - logits.max()
        p = np.exp(z) / np.exp(z).sum()
        k = int(np.argmax(logits))
        return {"label": self.labels[k] if k < len(self.labels) else str(k), "label_id": k,
                "scores": [round(float(x), 6) for x in p]}


def load_engine(model: str | Path, *, runtime: str | None = None, threads: int = 2, max_tokens: int = 128) -> Engine:
    """Load the artifact to serve in its runtime, with the tokenizer saved beside it."""
    from ..models.hf import load_tokenizer
    from ..runtime import load_forward
    from ..errors import EdgeslimError
    from ..tasks import get_task

    art = resolve_artifact(model, runtime)
    kind = art.extra.get("kind", "classification")
    if kind not in ("classification", "regression"):
        raise ConfigError(f"{art.path} is a {kind!r} model; edgeslim serve answers text classification and "
                          "regression requests (question answering and images are not served yet)")
    folder = Path(art.extra.get("tokenizer_dir") or art.path)
    if not any((folder / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
        folder = Path(art.path).parent if art.step == "export" else folder
    tok = load_tokenizer(folder)
    pair = False
    labels = [str(x) for x in art.extra.get("labels", [])]
    if art.task:
        try:
            spec = get_task(art.task)
            pair = spec.options.get("text_b") is not None
            labels = labels or list(spec.labels)
        except EdgeslimError:  # a task this install does not know: serve single texts with numeric labels
            pass
    if art.format == "onnx":
        from ..runtime.onnx_rt import make_session, onnx_file, session_forward

        # no spinning: idle intra-op threads would burn the CPU the HTTP event loop needs between batches
        forward = session_forward(make_session(onnx_file(art), threads, spinning=False))
    else:
        forward = load_forward(art, threads)
    return Engine(artifact=art, forward=forward, tokenizer=tok, labels=labels, pair=pair, max_tokens=max_tokens,
                  pad_id=int(tok.pad_token_id or 0), kind=kind,
                  info={"path": str(art.path), "format": art.format, "runtime": FORMAT_RUNTIME[art.format],
                        "hash": art.content_hash, "task": art.task, "precision": art.extra.get("precision"),
                        "threads": threads})
