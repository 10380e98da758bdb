"""Score extractive QA models: best valid span per question over its windows, official v1.1 EM/F1."""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError
from ..tasks import metrics as M
from ..tasks.base import TaskSpec
from ..tasks.squad import QAExample
from ..training.qa import QAFeatures, collate_qa, prepare_features


MAX_ANSWER_TOKENS = 30


N_BEST = 20


def decode_answers(examples: Sequence[QAExample], feats: QAFeatures, start_logits: list[np.ndarray],
                   end_logits: list[np.ndarray]) -> dict[str, str]:
    """Best valid span per question over all its windows (start <= end, <= 30 tokens, in context)."""
    best: dict[int, tuple[float, str]] = {}
    for f in range(len(feats)):
        ex_i = feats.example_index[f]
        offs = feats.offsets[f]
        s_log, e_log = start_logits[f], end_logits[f]
        starts = np.argsort(-s_log)[:N_BEST]
        ends = np.argsort(-e_log)[:N_BEST]
        for s in starts:
            if s >= len(offs) or offs[s] is None:
                continue
            for e in ends:
                if e >= len(offs) or offs[e] is None or e < s or e - s + 1 > MAX_ANSWER_TOKENS:
                    continue
                sc = float(s_log[s] + e_log[e])
                if ex_i not in best or sc > best[ex_i][0]:
                    best[ex_i] = (sc, examples[ex_i].context[offs[s][0]:offs[e][1]])
    return {ex.id: best.get(i, (0.0, ""))[1] for i, ex in enumerate(examples)}


def evaluate_qa_model(model: Any, tokenizer: Any, examples: Sequence[QAExample], batch_size: int = 16,
                      max_length: int = 384, stride: int = 128) -> dict[str, Any]:
    """EM/F1 (official v1.1 normalisation) of a PyTorch QA model on `examples`."""
    import torch

    from ..training.text import length_grouped_batches

    feats = prepare_features(tokenizer, examples, max_length, stride)
    starts: list[np.ndarray] = [np.zeros(0)] * len(feats)
    ends: list[np.ndarray] = [np.zeros(0)] * len(feats)
    t0 = time.perf_counter()
    model.eval()
    with torch.inference_mode():
        for b in length_grouped_batches([len(x) for x in feats.input_ids], batch_size, 0, shuffle=False):
            out = model(**collate_qa(feats, b, tokenizer.pad_token_id, with_labels=False))
            for r, i in enumerate(b):
                n = len(feats.input_ids[i])
                starts[i] = out.start_logits[r, :n].numpy()
                ends[i] = out.end_logits[r, :n].numpy()
    preds = decode_answers(examples, feats, starts, ends)
    result: dict[str, Any] = M.squad_scores(preds, {e.id: list(e.answers) for e in examples})
    result["eval"] = {"n": len(examples), "features": len(feats), "batch_size": batch_size, "max_length": max_length,
                      "stride": stride, "seconds": round(time.perf_counter() - t0, 2), "runtime": "pytorch-fp32"}
    return result


def evaluate_qa_artifact(art: ModelArtifact, task: TaskSpec, cfg: Any, ctx: RunContext) -> dict[str, Any]:
    """Score an HF QA artifact on a SQuAD task (the split the task names)."""
    from ..models.hf import load_model, load_tokenizer

    if art.format != "hf":
        raise ConfigError(f"QA evaluation runs on HF PyTorch artifacts so far, not {art.format!r}")
    examples = task.load("dev", ctx.settings, limit=cfg.limit)
    res = evaluate_qa_model(load_model(art.path, "qa"), load_tokenizer(art.path), examples, cfg.batch_size)
    res["eval"]["split"] = task.name
    return res
