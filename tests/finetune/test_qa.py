import numpy as np

from edgeslim.artifact import ModelArtifact
from edgeslim.context import RunContext
from edgeslim.models.hf import load_tokenizer
from edgeslim.tasks import get_task
from edgeslim.tasks.metrics import normalize_answer
from edgeslim.finetune import step as F
from edgeslim.evaluate.qa import decode_answers
from edgeslim.training.qa import prepare_features


def test_features_point_at_the_answers(tiny_data, tiny_qa_dir):
    ex = get_task("squad").load("dev")
    tok = load_tokenizer(tiny_qa_dir)
    f = prepare_features(tok, ex, max_length=64, stride=16)
    assert len(f) == len(ex) == 10
    for i in range(len(f)):
        e = ex[f.example_index[i]]
        s, t = f.start_positions[i], f.end_positions[i]
        assert 0 < s <= t
        assert normalize_answer(e.context[f.offsets[i][s][0]:f.offsets[i][t][1]]) == normalize_answer(e.answers[0])


def test_decode_picks_best_valid_span(tiny_data, tiny_qa_dir):
    ex = get_task("squad").load("dev")[:1]
    f = prepare_features(load_tokenizer(tiny_qa_dir), ex, max_length=64)
    n = len(f.input_ids[0])
    s, e = np.full(n, -5.0), np.full(n, -5.0)
    s[f.start_positions[0]], e[f.end_positions[0]] = 5.0, 5.0
    s[0] = e[0] = 100.0  # [CLS] is outside the context: never an answer
    assert decode_answers(ex, f, [s], [e]) == {ex[0].id: ex[0].answers[0]}


def test_squad_finetune_uses_article_split(tiny_data, tiny_qa_dir, tmp_path):
    cfg = F.FinetuneConfig(epochs=1, batch_size=4, max_length=64, eval_batch_size=4)
    art = F.finetune(ModelArtifact.load(tiny_qa_dir), cfg, RunContext(out_dir=tmp_path / "qa", task="squad", quiet=True))
    # 5 articles: article 4 (i % 5 == 4) is held out -> 8 train questions, 2 eval questions
    assert art.metrics["train"]["examples"] == 8 and art.metrics["eval"]["n"] == 2
    assert "article split" in art.metrics["eval"]["split"] and art.extra["kind"] == "qa"
    assert 0.0 <= art.metrics["f1"] <= 100.0
