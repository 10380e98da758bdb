"""Task metrics per GLUE / SQuAD / ImageNet convention, in plain numpy (hand-checkable)."""
from __future__ import annotations

import collections
import re
import string
from typing import Sequence

import numpy as np


def accuracy(preds: Sequence[int], labels: Sequence[int]) -> float:
    """Share of predictions equal to labels."""
    p, y = np.asarray(preds), np.asarray(labels)
    _check_same_length(p, y)
    return float((p == y).mean()) if len(y) else 0.0


def f1_binary(preds: Sequence[int], labels: Sequence[int], positive: int = 1) -> float:
    """F1 of the positive class (GLUE MRPC/QQP convention)."""
    p, y = np.asarray(preds), np.asarray(labels)
    _check_same_length(p, y)
    tp = int(((p == positive) & (y == positive)).sum())
    fp = int(((p == positive) & (y != positive)).sum())
    fn = int(((p != positive) & (y == positive)).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def matthews_corr(preds: Sequence[int], labels: Sequence[int]) -> float:
    """Matthews correlation coefficient for binary labels (GLUE CoLA); 0 when undefined."""
    p, y = np.asarray(preds), np.asarray(labels)
    _check_same_length(p, y)
    tp = float(((p == 1) & (y == 1)).sum())
    tn = float(((p == 0) & (y == 0)).sum())
    fp = float(((p == 1) & (y == 0)).sum())
    fn = float(((p == 0) & (y == 1)).sum())
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denom == 0 else float((tp * tn - fp * fn) / denom)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; 0 when either side is constant."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    _check_same_length(a, b)
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return 0.0 if denom == 0 else float((a * b).sum() / denom)


def rankdata(x: Sequence[float]) -> np.ndarray:
    """Ranks starting at 1, ties sharing their average rank (as scipy.stats.rankdata)."""
    a = np.asarray(x, dtype=float)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), dtype=float)
    sorted_a = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson of average ranks)."""
    return pearson(rankdata(x), rankdata(y))


def topk_accuracy(logits: np.ndarray, labels: Sequence[int], k: int) -> float:
    """Share of rows whose label is among the k highest logits."""
    logits = np.asarray(logits)
    y = np.asarray(labels)
    if logits.shape[0] != len(y):
        raise ValueError(f"{logits.shape[0]} predictions for {len(y)} labels")
    k = min(k, logits.shape[1])
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float((top == y[:, None]).any(axis=1).mean()) if len(y) else 0.0


# --- SQuAD v1.1 (the official evaluate-v1.1.py normalisation) ---------------------------------

def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_f1(prediction: str, ground_truth: str) -> float:
    """Token-overlap F1 between one prediction and one answer."""
    pred_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(pred_tokens) & collections.Counter(truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_em(prediction: str, ground_truth: str) -> float:
    """1.0 when normalised texts are equal."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def squad_scores(predictions: dict[str, str], answers: dict[str, list[str]]) -> dict[str, float]:
    """EM and F1 in percent, max over each question's answers (official v1.1 script)."""
    missing = [qid for qid in answers if qid not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} questions have no prediction (e.g. {missing[0]})")
    if not answers:
        return {"exact_match": 0.0, "f1": 0.0}
    em = f1 = 0.0
    for qid, truths in answers.items():
        pred = predictions[qid]
        em += max(squad_em(pred, t) for t in truths)
        f1 += max(squad_f1(pred, t) for t in truths)
    return {"exact_match": 100.0 * em / len(answers), "f1": 100.0 * f1 / len(answers)}


def _check_same_length(a: np.ndarray, b: np.ndarray) -> None:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} predictions for {len(b)} labels")


METRICS = {
    "accuracy": accuracy,
    "f1": f1_binary,
    "matthews_corr": matthews_corr,
    "pearson": pearson,
    "spearman": spearman,
}
