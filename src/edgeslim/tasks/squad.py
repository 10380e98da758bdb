"""SQuAD v1.1 json, with a documented article-level split of the dev file.

Only dev-v1.1.json is in the data directory, so training and evaluating on SQuAD here uses an
article-level split of it: article i (0-based, file order) goes to `dev-eval` when i % 5 == 4,
else to `dev-train` (39 train / 9 eval articles of 48). No paragraph is in both. Every SQuAD number
edgeslim reports names the split it was measured on.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .base import TaskSpec, register_task

EVAL_EVERY = 5  # article i is held out when i % EVAL_EVERY == EVAL_EVERY - 1


@dataclass(frozen=True)
class QAExample:
    """One SQuAD question with its context and gold answers."""

    id: str
    title: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]

    @property
    def label(self) -> str:  # so label_counts and generic code work
        return self.answers[0] if self.answers else ""


def read_squad(path: Path, spec: TaskSpec) -> list[QAExample]:
    """Read SQuAD v1.1 json; the split rule in spec.options picks articles."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not SQuAD v1.1 json (needs a top-level 'data' list): {exc}") from exc
    keep = spec.options.get("articles", "all")
    out: list[QAExample] = []
    for i, article in enumerate(data):
        held_out = i % EVAL_EVERY == EVAL_EVERY - 1
        if (keep == "train" and held_out) or (keep == "eval" and not held_out):
            continue
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                out.append(QAExample(
                    id=qa["id"], title=article.get("title", ""), question=qa["question"], context=para["context"],
                    answers=tuple(a["text"] for a in qa["answers"]),
                    answer_starts=tuple(int(a["answer_start"]) for a in qa["answers"]),
                ))
    return out


for _name, _articles, _desc in [
    ("squad", "all", "SQuAD v1.1 dev, all 48 articles (EM/F1)"),
    ("squad-dev-train", "train", "SQuAD v1.1 dev, training articles (i % 5 != 4)"),
    ("squad-dev-eval", "eval", "SQuAD v1.1 dev, held-out articles (i % 5 == 4)"),
]:
    register_task(TaskSpec(
        name=_name, kind="qa", folder="squad", files={"dev": "dev-v1.1.json", "train": "train-v1.1.json"},
        reader=read_squad, metrics=("exact_match", "f1"), primary="f1", description=_desc,
        options={"articles": _articles},
    ))


def squad_split(split: str) -> tuple[str, str]:
    """Map edgeslim's QA split names to (task name, file split): train on dev-train, evaluate on dev-eval."""
    return {"train": ("squad-dev-train", "dev"), "dev": ("squad-dev-eval", "dev")}[split]
