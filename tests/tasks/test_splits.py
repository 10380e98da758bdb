"""The val split carved from the train file: size, determinism, disjointness (duplicates too), errors."""
from __future__ import annotations

import random

import pytest

from edgeslim.errors import DataError
from edgeslim.tasks import get_task
from edgeslim.tasks.base import TextExample, carve_val, example_text, val_size

from ..conftest import synthetic_sentences, write_sst2


def _examples(n: int, seed: int = 0) -> list[TextExample]:
    return [TextExample(f"sentence {i} {random.Random(seed + i).random():.6f}", None, i % 2) for i in range(n)]


@pytest.mark.parametrize("n,k", [(67349, 1000), (3668, 734), (8551, 1000), (5000, 1000), (4998, 1000),
                                 (96, 19), (48, 10), (3, 1), (2, 0)])
def test_val_size_is_a_fifth_up_to_1000(n, k):
    assert val_size(n) == k


def test_carve_is_deterministic_and_independent_of_file_order():
    ex = _examples(200)
    a, b = carve_val(ex), carve_val(list(ex))
    assert a == b and len(a.val) == 40 and len(a.train) == 160 and a.dropped == 0
    shuffled = carve_val(random.Random(1).sample(ex, len(ex)))
    assert {example_text(e) for e in shuffled.val} == {example_text(e) for e in a.val}
    # both parts keep file order
    pos = {id(e): i for i, e in enumerate(ex)}
    assert [pos[id(e)] for e in a.train] == sorted(pos[id(e)] for e in a.train)
    assert [pos[id(e)] for e in a.val] == sorted(pos[id(e)] for e in a.val)


def test_val_is_the_lowest_sha256_ranks():
    import hashlib

    ex = _examples(50)
    ranked = sorted(ex, key=lambda e: hashlib.sha256(example_text(e).encode()).hexdigest())
    assert {id(e) for e in carve_val(ex).val} == {id(e) for e in ranked[:10]}


def test_duplicates_of_a_val_text_are_dropped_from_train():
    import hashlib

    # 10 copies of one text: k = 2 of them go to val (index breaks the tie), the other 8 leave train
    same = [TextExample("a film", "and its twin", i % 2) for i in range(10)]
    only = carve_val(same)
    assert [e.label for e in only.val] == [0, 1] and only.train == [] and only.dropped == 8
    # the lowest-ranked of 40 texts, 14 more copies at the end: n = 54, k = 11, so the cut falls inside its group
    others = _examples(40)
    first = min(others, key=lambda e: hashlib.sha256(example_text(e).encode()).digest())
    c = carve_val(others + [TextExample(first.text_a, None, 1 - first.label)] * 14)
    assert len(c.val) == 11 and {example_text(e) for e in c.val} == {example_text(first)}
    assert c.val[0] is first and c.dropped == 4 and c.train == [e for e in others if e is not first]


@pytest.fixture
def dup_data(tmp_path, monkeypatch):
    """Synthetic SST-2 (train 96 + 4 exact duplicates of train rows, dev 32) selected by EDGESLIM_DATA."""
    root = tmp_path / "data"
    write_sst2(root / "glue" / "SST-2", 96, 32)
    train = root / "glue" / "SST-2" / "train.tsv"
    rows = [f"{s}\t{y}" for s, y in synthetic_sentences(96, 0)]
    train.write_text(train.read_text() + "\n".join(rows[:4]) + "\n")
    monkeypatch.setenv("EDGESLIM_DATA", str(root))
    return root


def test_task_splits_train_val_train_full(dup_data):
    task = get_task("sst2")
    assert task.splits == ("train", "val", "dev", "train-full")
    full, train, val = task.load("train-full"), task.load("train"), task.load("val")
    assert len(full) == 100 and len(val) == 20
    carved = carve_val(full)
    assert (train, val) == (carved.train, carved.val)
    assert len(train) + len(val) + carved.dropped == len(full)
    val_texts = {example_text(e) for e in val}
    assert not val_texts & {example_text(e) for e in train}
    # every train-full example is in exactly one of train / val, or is a dropped duplicate of a val text
    rest = [e for e in full if e not in train and example_text(e) not in val_texts]
    assert rest == []
    assert task.path("val") == task.path("train") == task.path("train-full") == dup_data / "glue/SST-2/train.tsv"
    assert task.load("val", limit=5) == val[:5]


def test_val_of_a_task_without_train_names_the_splits(dup_data):
    with pytest.raises(DataError, match=r"no split 'val' \(val is carved from the train file, which qnli does not "
                                        r"have\); available: dev"):
        get_task("qnli").path("val")
    with pytest.raises(DataError, match="no split 'test'; available: train, val, dev, train-full"):
        get_task("sst2").load("test")
    # SQuAD and image folders keep their own splits
    assert get_task("squad").splits == ("dev", "train") and get_task("imagenette").splits == ("val",)
    with pytest.raises(DataError, match="no split 'val'; available: dev, train"):
        get_task("squad").path("val")


def test_eval_step_scores_val(dup_data, tiny_bert_dir, tmp_path):
    from edgeslim.artifact import ModelArtifact
    from edgeslim.context import RunContext
    from edgeslim.evaluate.step import EvaluateConfig, evaluate

    art = evaluate(ModelArtifact.load(tiny_bert_dir), EvaluateConfig(split="val", batch_size=8),
                   RunContext(tmp_path / "out", task="sst2", quiet=True))
    assert art.metrics["sst2/val"]["eval"]["n"] == 20 and art.metrics["sst2/val"]["eval"]["split"] == "val"


# (task, train-full rows, val, train) on ../shared/data; no exact duplicate straddles the cut in these files
REAL_SPLITS = [("sst2", 67349, 1000, 66349), ("mrpc", 3668, 734, 2934), ("cola", 8551, 1000, 7551),
               ("rte", 2490, 498, 1992), ("wnli", 635, 127, 508)]


@pytest.mark.realdata
@pytest.mark.parametrize("task,n,k,rest", REAL_SPLITS)
def test_real_val_counts_and_disjoint(real_data, monkeypatch, task, n, k, rest):
    monkeypatch.setenv("EDGESLIM_DATA", str(real_data))
    spec = get_task(task)
    full, train, val = spec.load("train-full"), spec.load("train"), spec.load("val")
    assert (len(full), len(val), len(train)) == (n, k, rest)
    assert not {example_text(e) for e in val} & {example_text(e) for e in train}
