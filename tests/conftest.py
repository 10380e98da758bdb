"""Shared fixtures: tiny models and a tiny synthetic data directory (no network, seconds to build)."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REAL_DATA = Path(os.environ.get("EDGESLIM_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))

POS = ["good", "great", "best", "love", "funny", "charming", "beautiful", "fun"]
NEG = ["bad", "worst", "hate", "boring", "dull", "ugly", "not"]
FILL = ["the", "movie", "film", "story", "acting", "is", "was", "very", "a", "and", "plot", "characters"]


def synthetic_sentences(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """Sentences whose label is carried by one sentiment word (a tiny model learns it in a few steps)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = rng.sample(FILL, rng.randint(3, 8)) + [rng.choice(POS if label else NEG)]
        rng.shuffle(words)
        out.append((" ".join(words) + " ", label))
    return out


def write_sst2(folder: Path, n_train: int = 96, n_dev: int = 32) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 0), ("dev", n_dev, 1)):
        rows = ["sentence\tlabel"] + [f"{s}\t{y}" for s, y in synthetic_sentences(n, seed)]
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n")


def write_squad(path: Path, n_articles: int = 5) -> None:
    """A tiny SQuAD v1.1-format file: one paragraph and two questions per article."""
    data = []
    for a in range(n_articles):
        ctx = f"The city number {a} was founded in {1800 + a} by a man called Smith{a}. It has a big river."
        q = [
            {"id": f"q{a}a", "question": "When was the city founded?",
             "answers": [{"text": str(1800 + a), "answer_start": ctx.index(str(1800 + a))}]},
            {"id": f"q{a}b", "question": "What does it have?",
             "answers": [{"text": "a big river", "answer_start": ctx.index("a big river")}]},
        ]
        data.append({"title": f"T{a}", "paragraphs": [{"context": ctx, "qas": q}]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "1.1", "data": data}))


@pytest.fixture
def tiny_data(tmp_path, monkeypatch) -> Path:
    """A data directory with synthetic SST-2 and SQuAD files, selected through EDGESLIM_DATA."""
    root = tmp_path / "data"
    write_sst2(root / "glue" / "SST-2")
    write_squad(root / "squad" / "dev-v1.1.json")
    monkeypatch.setenv("EDGESLIM_DATA", str(root))
    return root


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A saved tiny random BERT classifier + tiny tokenizer (HF folder)."""
    from edgeslim.models.tiny import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="session")
def tiny_qa_dir(tmp_path_factory) -> Path:
    from edgeslim.models.tiny import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tinyqa") / "bert", kind="qa")


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not found at {REAL_DATA}")
    return REAL_DATA
