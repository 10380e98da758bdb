"""Unlabelled text for general (stage 1) distillation, from what is available offline.

Default sources, all read from the data directory (`EDGESLIM_DATA`):
- `squad`: the paragraphs of SQuAD v1.1 dev (Wikipedia prose), cut into sentences;
- `glue`: the sentences of every GLUE task in the data directory except the one being distilled (their labels are
  not used), i.e. CoLA, MRPC, QNLI, RTE, WNLI (+ SST-2 / STS-B when another task is the target).
Plus any text file the user passes (one passage per line; blank lines skipped).
"""
from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Sequence

from ..errors import DataError
from ..settings import Settings, get_settings
from ..tasks.squad import squad_articles

SOURCES = ("squad", "glue")
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def split_sentences(paragraph: str) -> list[str]:
    """Cut prose at sentence ends (., !, ? followed by a capital or digit); keeps sentences of >= 3 words."""
    return [s.strip() for s in _SENT_END.split(paragraph) if len(s.split()) >= 3]


def squad_sentences(settings: Settings) -> list[str]:
    """Sentences of the SQuAD paragraphs (each paragraph once)."""
    path = settings.require_data_dir() / "squad" / "dev-v1.1.json"
    if not path.is_file():
        raise DataError(f"general corpus source 'squad' needs {path}; drop 'squad' from corpus or add the file")
    data = squad_articles(path)
    return [s for art in data for p in art["paragraphs"] for s in split_sentences(p["context"])]


def glue_sentences(settings: Settings, exclude: str | None) -> list[str]:
    """Sentences of the GLUE tasks present in the data directory, except `exclude` (the task being distilled)."""
    from ..tasks.base import TASKS

    out: list[str] = []
    for name in TASKS.names():
        spec = TASKS.get(name)
        if spec.kind not in ("classification", "regression") or not spec.folder.startswith("glue/"):
            continue
        if exclude and name == exclude:
            continue
        for split in spec.files:
            if not (settings.data_dir / spec.folder / spec.files[split]).is_file():
                continue
            # the whole train file (val included): another task's text, not its training data
            for e in spec.load("train-full" if split == "train" and spec.carves_val else split, settings):
                out.append(e.text_a)
                if e.text_b:
                    out.append(e.text_b)
    return out


def text_file_lines(path: str | Path) -> list[str]:
    """Non-blank lines of a user text file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"corpus file not found: {p}; pass a UTF-8 text file with one passage per line")
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"corpus file {p} has no text lines")
    return lines


def general_corpus(sources: Sequence[str] = SOURCES, files: Sequence[str] = (), *, exclude_task: str | None = None,
                   settings: Settings | None = None, limit: int | None = None, seed: int = 0) -> list[str]:
    """The stage-1 corpus: named sources plus files, de-duplicated, shuffled with `seed`, optionally cut to `limit`."""
    settings = settings or get_settings()
    texts: list[str] = []
    for src in sources:
        if src == "squad":
            texts += squad_sentences(settings)
        elif src == "glue":
            texts += glue_sentences(settings, exclude_task)
        else:
            from ..registry import suggest

            raise DataError(f"unknown corpus source {src!r}.{suggest(src, SOURCES)} Pass text files with corpus_files")
    for f in files:
        texts += text_file_lines(f)
    texts = list(dict.fromkeys(t for t in texts if t.strip()))
    if not texts:
        raise DataError("the general-distillation corpus is empty; name sources (squad, glue) or pass corpus files")
    random.Random(seed).shuffle(texts)
    return texts[:limit] if limit else texts
