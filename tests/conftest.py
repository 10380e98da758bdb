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


class TinySteps:
    """Runs registered steps on one tiny BERT with synthetic SST-2 (train 48, dev 24), each step once per session,
    so the registry tests and the export tests share the slow conversions. Data is passed through the context's
    settings, not the environment, so nothing leaks into other tests."""

    OPTIONS: dict[str, dict] = {}   # filled by tests/test_registries.py (tiny options per registered step)

    def __init__(self, root: Path):
        from edgeslim.artifact import ModelArtifact
        from edgeslim.models.tiny import save_tiny_bert
        from edgeslim.settings import Settings

        write_sst2(root / "data" / "glue" / "SST-2", n_train=48, n_dev=24)
        self.root = root
        self.settings = Settings(data_dir=root / "data", data_dir_source="test", runs_dir=root / "runs", threads=2)
        self.src = ModelArtifact.load(save_tiny_bert(root / "bert"))
        self._out: dict[str, object] = {}

    def run(self, name: str, options: dict | None = None):
        """The artifact step `name` makes from the tiny model (skips when a backend it needs is not installed)."""
        import importlib.util

        from edgeslim.context import RunContext
        from edgeslim.registry import STEPS

        if name not in self._out:
            spec = STEPS.get(name)
            cfg = spec.make_config(self.OPTIONS.get(name, {}) if options is None else options)
            absent = [m for m in spec.required_backends(cfg) if importlib.util.find_spec(m) is None]
            if absent:
                pytest.skip(f"step {name}: backend(s) {absent} not installed")
            ctx = RunContext(out_dir=self.root / "out" / name, task="sst2", quiet=True, settings=self.settings,
                             lineage=[{"step": "source", "path": str(self.src.path), "hash": self.src.content_hash}])
            self._out[name] = spec.fn(self.src, cfg, ctx)
        return self._out[name]


@pytest.fixture(scope="session")
def tiny_steps(tmp_path_factory) -> TinySteps:
    return TinySteps(tmp_path_factory.mktemp("tinysteps"))
