"""Extractive question answering (SQuAD v1.1): features with doc stride, fine-tuning, span decoding.

Only SQuAD's dev file is in the data directory, so `--task squad` trains on the `squad-dev-train`
articles and evaluates on the held-out `squad-dev-eval` articles (see tasks/squad.py). If the user
adds train-v1.1.json, training uses it and evaluation uses the whole dev file.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError, DataError
from ..fileio import atomic_dir
from ..progress import progress_bar
from ..tasks import metrics as M
from ..tasks.base import TaskSpec, get_task
from ..tasks.squad import QAExample

MAX_ANSWER_TOKENS = 30
N_BEST = 20


@dataclass
class QAFeatures:
    """Tokenised (question, context window) pairs; several windows per long context."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    example_index: list[int]                       # feature -> example
    offsets: list[list[tuple[int, int] | None]]    # context-token char spans (None outside the context)
    start_positions: list[int]
    end_positions: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def qa_splits(task: TaskSpec, ctx: RunContext) -> tuple[list[QAExample], list[QAExample], str]:
    """(train examples, eval examples, description of the split) for a SQuAD task."""
    full = get_task("squad")
    try:
        train = full.load("train", ctx.settings)
        return train, full.load("dev", ctx.settings), "train-v1.1 -> dev-v1.1 (all articles)"
    except DataError:
        pass
    if task.name == "squad-dev-eval":
        raise ConfigError("squad-dev-eval is an evaluation split; fine-tune with --task squad")
    return (get_task("squad-dev-train").load("dev", ctx.settings), get_task("squad-dev-eval").load("dev", ctx.settings),
            "article split of dev-v1.1: train on articles i % 5 != 4, evaluate on i % 5 == 4")


def prepare_features(tokenizer: Any, examples: Sequence[QAExample], max_length: int = 384,
                     stride: int = 128) -> QAFeatures:
    """Tokenise question + context windows; label each window with the first answer's token span
    (both 0, the [CLS] position, when the answer lies outside the window). The stride (overlap of
    windows) is capped at half the window so short windows still work."""
    stride = min(stride, max_length // 2)
    enc = tokenizer([e.question.lstrip() for e in examples], [e.context for e in examples], truncation="only_second",
                    max_length=max_length, stride=stride, return_overflowing_tokens=True,
                    return_offsets_mapping=True, padding=False)
    feats = QAFeatures([], [], [], [], [], [])
    for f, ids in enumerate(enc["input_ids"]):
        ex_i = enc["overflow_to_sample_mapping"][f]
        seq_ids = enc.sequence_ids(f)
        offsets = [tuple(o) if seq_ids[k] == 1 else None for k, o in enumerate(enc["offset_mapping"][f])]
        ex = examples[ex_i]
        start_tok = end_tok = 0
        if ex.answers:
            a_start = ex.answer_starts[0]
            a_end = a_start + len(ex.answers[0])
            ctx_toks = [k for k, o in enumerate(offsets) if o is not None]
            if ctx_toks and offsets[ctx_toks[0]][0] <= a_start and offsets[ctx_toks[-1]][1] >= a_end:
                start_tok = next(k for k in ctx_toks if offsets[k][1] > a_start)
                end_tok = max(k for k in ctx_toks if offsets[k][0] < a_end)
        feats.input_ids.append(list(ids))
        feats.token_type_ids.append(list(enc["token_type_ids"][f]) if "token_type_ids" in enc else [0] * len(ids))
        feats.example_index.append(ex_i)
        feats.offsets.append(offsets)
        feats.start_positions.append(start_tok)
        feats.end_positions.append(end_tok)
    return feats


def collate_qa(feats: QAFeatures, batch: Sequence[int], pad_id: int, with_labels: bool) -> dict[str, Any]:
    """Pad a batch of QA features to its longest window."""
    import torch

    from .text import pad_batch

    out = pad_batch(feats.input_ids, feats.token_type_ids, batch, pad_id)
    if with_labels:
        out["start_positions"] = torch.tensor([feats.start_positions[i] for i in batch])
        out["end_positions"] = torch.tensor([feats.end_positions[i] for i in batch])
    return out


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

    from .text import length_grouped_batches

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


def finetune_qa(model: ModelArtifact, cfg: Any, ctx: RunContext, task: TaskSpec) -> ModelArtifact:
    """Fine-tune a QA head on SQuAD (article split of dev unless train-v1.1.json is present)."""
    import torch

    from ..models.hf import load_model, load_tokenizer, save_model
    from .finetune import lr_factor, optimizer_step
    from .text import length_grouped_batches

    ctx.seed_everything()
    train, held_out, split_desc = qa_splits(task, ctx)
    tok = load_tokenizer(model.path)
    net = load_model(model.path, "qa")
    max_length = max(cfg.max_length, 256)
    feats = prepare_features(tok, train, max_length=max_length)
    spe = math.ceil(len(feats) / cfg.batch_size)
    total = max(1, int(cfg.epochs * spe))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    budget = cfg.max_minutes * 60
    start, step, stopped_by = time.perf_counter(), 0, "epochs"
    net.train()
    with progress_bar(f"finetune {task.name}", total, ctx.quiet) as bar:
        while step < total and stopped_by == "epochs":
            epoch = step // spe
            for b in length_grouped_batches([len(x) for x in feats.input_ids], cfg.batch_size, ctx.seed + epoch)[
                    step - epoch * spe:]:
                elapsed = time.perf_counter() - start
                if elapsed >= budget:
                    stopped_by = "max_minutes"
                    break
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * lr_factor(max(step / total, elapsed / budget), cfg.warmup)
                loss = net(**collate_qa(feats, b, tok.pad_token_id, with_labels=True)).loss
                optimizer_step(loss, net.parameters(), opt)
                step += 1
                bar.advance()
                if step >= total:
                    break
    seconds = time.perf_counter() - start
    metrics = evaluate_qa_model(net, tok, held_out, cfg.eval_batch_size, max_length)
    metrics["eval"]["split"] = split_desc
    metrics["train"] = {"steps": step, "seconds": round(seconds, 1), "stopped_by": stopped_by,
                        "examples": len(train), "features": len(feats)}
    with atomic_dir(Path(ctx.out_dir)) as tmp:
        save_model(net, tmp, tok)
    return ModelArtifact.create(ctx.out_dir, "hf", task="squad", parent=model, step="finetune",
                                step_config={**dataclasses.asdict(cfg), "seed": ctx.seed}, metrics=metrics,
                                extra={"kind": "qa", "split": split_desc})
