"""GLUE tasks in the standard glue_data TSV layout (quoting off, as the files need).

Every GLUE task with a train file also has a "val" split carved from it (and "train" excludes it): see tasks/base.py.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..errors import DataError
from ..inputs import read_user_text
from .base import TaskSpec, TextExample, register_task


def read_glue_tsv(path: Path, spec: TaskSpec) -> list[TextExample]:
    """Read a GLUE TSV; a malformed row raises DataError naming file, line and fix."""
    o = spec.options
    ncols, a_col, b_col, y_col = o["ncols"], o["text_a"], o.get("text_b"), o["label"]
    label_ids = {name: i for i, name in enumerate(spec.labels)}
    out: list[TextExample] = []
    text = read_user_text(path, f"{spec.name} data file")
    rows = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        for lineno, row in enumerate(rows, start=1):
            if lineno == 1 and o.get("header", True):
                continue
            if not row or row == [""]:
                continue
            if len(row) < ncols:
                raise DataError(
                    f"{path}:{lineno}: expected {ncols} tab-separated columns for {spec.name}, got {len(row)}. "
                    "Fix or remove that row (GLUE files are tab-separated, one example per line)"
                )
            raw = row[y_col].strip()
            if spec.kind == "regression":
                try:
                    label: int | float = float(raw)
                except ValueError:
                    label = math.nan
                if not math.isfinite(label):
                    raise DataError(f"{path}:{lineno}: score {raw!r} is not a number; fix: put the similarity score "
                                    "(0-5) in the last column")
            else:
                if raw not in label_ids:
                    raise DataError(
                        f"{path}:{lineno}: label {raw!r} is not one of {', '.join(spec.labels)} for {spec.name}; "
                    "fix: correct or remove that row"
                    )
                label = label_ids[raw]
            out.append(TextExample(row[a_col], row[b_col] if b_col is not None else None, label))
    except csv.Error as exc:   # e.g. a field longer than csv's limit (131,072 characters): no tab or newline
        raise DataError(f"{path}:{rows.line_num}: unreadable row ({exc}); fix: check that row's tabs and newlines "
                        "(GLUE files are tab-separated, one example per line)") from None
    return out


def _glue(name: str, folder: str, *, labels: tuple[str, ...], ncols: int, text_a: int, label: int,
          text_b: int | None = None, header: bool = True, splits: tuple[str, ...] = ("train", "dev"),
          metrics: tuple[str, ...] = ("accuracy",), primary: str = "accuracy", kind: str = "classification",
          description: str = "") -> TaskSpec:
    return register_task(TaskSpec(
        name=name, kind=kind, folder=f"glue/{folder}", files={s: f"{s}.tsv" for s in splits},
        reader=read_glue_tsv, labels=labels, metrics=metrics, primary=primary, description=description,
        options=dict(ncols=ncols, text_a=text_a, text_b=text_b, label=label, header=header), carve_val=True,
    ))


BINARY = ("0", "1")
NLI2 = ("entailment", "not_entailment")

_glue("sst2", "SST-2", labels=BINARY, ncols=2, text_a=0, label=1,
      description="SST-2 sentiment, single sentence, accuracy")
_glue("cola", "CoLA", labels=BINARY, ncols=4, text_a=3, label=1, header=False,
      metrics=("matthews_corr", "accuracy"), primary="matthews_corr",
      description="CoLA acceptability, single sentence, Matthews correlation")
_glue("mrpc", "MRPC", labels=BINARY, ncols=5, text_a=3, text_b=4, label=0,
      metrics=("accuracy", "f1"), primary="accuracy", description="MRPC paraphrase pairs, accuracy and F1")
_glue("qnli", "QNLI", labels=NLI2, ncols=4, text_a=1, text_b=2, label=3, splits=("dev",),
      description="QNLI question/sentence entailment (only dev is in the data directory)")
_glue("rte", "RTE", labels=NLI2, ncols=4, text_a=1, text_b=2, label=3,
      description="RTE entailment pairs, accuracy")
_glue("wnli", "WNLI", labels=BINARY, ncols=4, text_a=1, text_b=2, label=3,
      description="WNLI Winograd pairs, accuracy")
# STS-B is not shipped in the data directory; users who bring glue/STS-B/{train,dev}.tsv get it.
_glue("stsb", "STS-B", labels=(), kind="regression", ncols=10, text_a=7, text_b=8, label=-1,
      metrics=("pearson", "spearman"), primary="pearson",
      description="STS-B similarity score 0-5 (bring the files), Pearson/Spearman")
