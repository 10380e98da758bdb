"""Extractive question answering (SQuAD v1.1): features with doc stride, fine-tuning, span decoding.

Only SQuAD's dev file is in the data directory, so `--task squad` trains on the `squad-dev-train`
articles and evaluates on the held-out `squad-dev-eval` articles (see tasks/squad.py). If the user
adds train-v1.1.json, training uses it and evaluation uses the whole dev file.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..artifact import ModelArtifact
from ..context import RunContext
from ..errors import ConfigError, DataError
from ..evaluate.qa import evaluate_qa_model
from ..fileio import atomic_dir
from ..tasks.base import TaskSpec, get_task
from ..tasks.squad import QAExample
from ..training.loop import LoopConfig, train_loop
from ..training.qa import collate_qa, prepare_features


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


def finetune_qa(model: ModelArtifact, cfg: Any, ctx: RunContext, task: TaskSpec, loop: LoopConfig,
                checkpoint: Path, key: str) -> ModelArtifact:
    """Fine-tune a QA head on SQuAD (article split of dev unless train-v1.1.json is present); score it."""
    from ..models.hf import load_model, load_tokenizer, save_model

    train, held_out, split_desc = qa_splits(task, ctx)
    tok = load_tokenizer(model.path)
    net = load_model(model.path, "qa")
    max_length = max(cfg.max_length, 256)
    feats = prepare_features(tok, train, max_length=max_length)

    def loss_fn(b: list[int]) -> tuple[Any, dict[str, float]]:
        return net(**collate_qa(feats, b, tok.pad_token_id, with_labels=True)).loss, {}

    net.train()
    res = train_loop(net.named_parameters(), [len(x) for x in feats.input_ids], loss_fn, loop, checkpoint=checkpoint,
                     key=key, modules={"model": net}, description=f"finetune {task.name}", quiet=ctx.quiet)
    net.eval()
    metrics = evaluate_qa_model(net, tok, held_out, cfg.eval_batch_size, max_length)
    metrics["eval"]["split"] = split_desc
    metrics["train"] = {"steps": res.steps, "seconds": round(res.seconds, 1), "stopped_by": res.stopped_by,
                        "resumed": res.resumed, "examples": len(train), "features": len(feats),
                        "final_loss": res.mean_loss()}
    with atomic_dir(Path(ctx.out_dir)) as tmp:
        save_model(net, tmp, tok)
    return ModelArtifact.create(ctx.out_dir, "hf", task="squad", parent=model, step="finetune",
                                step_config={**dataclasses.asdict(cfg), "seed": ctx.seed}, metrics=metrics,
                                extra={"kind": "qa", "split": split_desc})
