"""SQuAD v1.1 json, with a documented article-level split of the dev file.

Only dev-v1.1.json is in the data directory, so training and evaluating on SQuAD here uses an
article-level split of it: article i (0-based, file order) goes to `dev-eval` when i % 5 == 4,
else to `dev-train` (39 train / 9 eval articles of 48). No paragraph is in both. Every SQuAD number
edgeslim reports names the split it was measured on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..inputs import load_user_json, type_name
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
    """Read SQuAD v1.1 json; the split rule in spec.options picks articles. A malformed entry raises DataError
    naming the file and its place (data[3].paragraphs[0].qas[1].answers[0].answer_start)."""
    keep = spec.options.get("articles", "all")
    out: list[QAExample] = []
    for i, article in enumerate(squad_articles(path)):
        held_out = i % EVAL_EVERY == EVAL_EVERY - 1
        if (keep == "train" and held_out) or (keep == "eval" and not held_out):
            continue
        at = f"data[{i}]"
        title = article.get("title", "")
        for j, para in enumerate(_items(path, article, "paragraphs", at)):
            where = f"{at}.paragraphs[{j}]"
            context = _text(path, para, "context", where)
            for k, qa in enumerate(_items(path, para, "qas", where)):
                q_at = f"{where}.qas[{k}]"
                answers = [(_text(path, a, "text", f"{q_at}.answers[{n}]"),
                            _start(path, a, f"{q_at}.answers[{n}]")) for n, a in enumerate(_items(path, qa, "answers", q_at))]
                out.append(QAExample(
                    id=str(_field(path, qa, "id", q_at, (str, int))), title=str(title),
                    question=_text(path, qa, "question", q_at), context=context,
                    answers=tuple(a for a, _ in answers), answer_starts=tuple(s for _, s in answers),
                ))
    return out


def squad_articles(path: Path) -> list[dict[str, Any]]:
    """The `data` list of a SQuAD v1.1 file, each article checked to be a mapping."""
    doc = load_user_json(path, "SQuAD file")
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise DataError(f"{path} is not SQuAD v1.1 json: it needs a top-level 'data' list of articles, got "
                        f"{type_name(data if isinstance(doc, dict) else doc)}; fix: pass the official dev-v1.1.json")
    for i, article in enumerate(data):
        if not isinstance(article, dict):
            raise DataError(f"{path}: data[{i}] must be a mapping with 'title' and 'paragraphs', got "
                            f"{type_name(article)}; fix: correct or remove that article")
    return data


def _field(path: Path, node: Any, key: str, where: str, types: tuple[type, ...]) -> Any:
    if not isinstance(node, dict):
        raise DataError(f"{path}: {where} must be a mapping, got {type_name(node)}; fix: correct or remove it")
    if key not in node:
        raise DataError(f"{path}: {where} has no '{key}'; fix: add it or remove that entry")
    value = node[key]
    if not isinstance(value, types) or isinstance(value, bool):
        raise DataError(f"{path}: {where}.{key} must be {' or '.join(type_name(t()) for t in types)}, got "
                        f"{type_name(value)}; fix: correct it")
    return value


def _items(path: Path, node: Any, key: str, where: str) -> list[Any]:
    return _field(path, node, key, where, (list,))


def _text(path: Path, node: Any, key: str, where: str) -> str:
    return _field(path, node, key, where, (str,))


def _start(path: Path, answer: Any, where: str) -> int:
    value = _field(path, answer, "answer_start", where, (int, str))
    try:
        start = int(value)
    except ValueError:
        start = -1
    if start < 0:
        raise DataError(f"{path}: {where}.answer_start must be a character offset >= 0, got {value!r}; fix: correct it")
    return start


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
