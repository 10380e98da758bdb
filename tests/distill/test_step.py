"""The distill step end to end on a tiny teacher: both stages run, the loss falls, the artifact is a smaller model
with a pruned vocabulary, crashes resume, and bad requests fail before training."""
import json

import pytest

from edgeslim.artifact import ModelArtifact
from edgeslim.context import RunContext
from edgeslim.errors import ConfigError
from edgeslim.distill.step import DistillConfig, distill, prepare


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    from edgeslim.models.tiny import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("teacher") / "bert", layers=4, hidden=32, heads=4, ffn=64)


def ctx(tmp_path, **kw):
    return RunContext(out_dir=tmp_path / "student", task="sst2", quiet=True, **kw)


def test_two_stage_distillation_lowers_loss_and_saves_student(tiny_data, teacher_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESLIM_RUNS", str(tmp_path / "runs"))
    src = ModelArtifact.load(teacher_dir)
    cfg = DistillConfig(student_layers=2, student_hidden=16, student_ffn=32, general_epochs=20, task_epochs=4,
                        general_minutes=10, task_minutes=10, lr=3e-3, batch_size=8,
                        task_losses={"kl": 1.0, "ce": 0.5, "hidden_mse": 0.1})
    art = distill(src, cfg, ctx(tmp_path))
    d = art.metrics["distill"]
    general, task = d["stages"]["general"], d["stages"]["task"]
    assert general["steps"] == 20 and general["stopped_by"] == "epochs"     # 6 SQuAD sentences, batch 8
    assert general["final_loss"]["total"] < 0.7 * general["first_loss"]["total"]
    # 77 train examples (96 rows minus 19 carved for val), batch 8: 10 steps an epoch; generous budgets: epochs end both
    assert task["steps"] == 40 and task["stopped_by"] == "epochs"
    assert task["teacher_logits"] == "online"      # hidden loss: teacher runs online
    assert task["final_loss"]["total"] < task["first_loss"]["total"]
    # sizes: counted over all parameters; the vocabulary is the task train text's ids + specials
    student = ModelArtifact.load(tmp_path / "student")
    assert student.parent_hash == src.content_hash and student.step == "distill"
    from edgeslim.models.hf import load_model, load_tokenizer

    net = load_model(student.path, "classification", num_labels=2)
    assert sum(p.numel() for p in net.parameters()) == d["student_params"]
    assert d["ratio"] == pytest.approx(d["teacher_params"] / d["student_params"], abs=1e-3)
    assert d["student_vocab"] == len(load_tokenizer(student.path)) < d["teacher_vocab"]
    assert net.config.num_hidden_layers == 2 and net.config.hidden_size == 16
    assert 0 <= art.metrics["accuracy"] <= 1 and d["retention"] is not None
    assert not (tmp_path / "student.ckpt").exists()


def test_task_stage_uses_cached_teacher_logits(tiny_data, teacher_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESLIM_RUNS", str(tmp_path / "runs"))
    src = ModelArtifact.load(teacher_dir)
    cfg = DistillConfig(student_layers=[1, 3], stages=("task",), task_epochs=1, batch_size=16, vocab="full")
    art = distill(src, cfg, ctx(tmp_path))
    assert art.metrics["distill"]["stages"]["task"]["teacher_logits"] == "cached"
    assert len(list((tmp_path / "runs" / ".cache" / "distill").glob("teacher-logits-*.pt"))) == 1
    assert art.metrics["distill"]["student_vocab"] == art.metrics["distill"]["teacher_vocab"]


def test_resume_after_crash(tiny_data, teacher_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESLIM_RUNS", str(tmp_path / "runs"))
    import edgeslim.distill.train as T

    src = ModelArtifact.load(teacher_dir)
    cfg = DistillConfig(student_layers=2, stages=("task",), task_epochs=2, batch_size=16, checkpoint_minutes=1e-6)
    real, calls = T.collate, {"n": 0}

    def crashing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt("simulated crash")
        return real(*a, **k)

    monkeypatch.setattr(T, "collate", crashing)
    with pytest.raises(KeyboardInterrupt):
        distill(src, cfg, ctx(tmp_path))
    state = tmp_path / "student.ckpt" / "state.pt"
    assert state.is_file() and not (tmp_path / "student").exists()
    monkeypatch.setattr(T, "collate", real)
    art = distill(src, cfg, ctx(tmp_path))
    task = art.metrics["distill"]["stages"]["task"]
    assert art.metrics["distill"]["resumed"] and task["steps"] == 10 == task["planned_steps"]   # 2 epochs of 77 / 16


def test_bad_requests_fail_before_training(tiny_data, teacher_dir, tmp_path):
    src = ModelArtifact.load(teacher_dir)
    with pytest.raises(ConfigError, match="larger than teacher"):
        prepare(src, DistillConfig(student_layers=5), ctx(tmp_path))
    with pytest.raises(ConfigError, match="out of range"):
        prepare(src, DistillConfig(student_layers=[0, 7]), ctx(tmp_path))
    with pytest.raises(ConfigError, match="width mismatch without projection"):
        prepare(src, DistillConfig(student_hidden=16, projection=False), ctx(tmp_path))
    with pytest.raises(ConfigError, match="unknown stage 'genral'"):
        DistillConfig(stages=["genral", "task"])
    with pytest.raises(ConfigError, match="ordered subset"):
        DistillConfig(stages=["task", "general"])
    with pytest.raises(ConfigError, match="cannot use 'ce'"):
        DistillConfig(general_losses={"ce": 1})
    with pytest.raises(ConfigError, match="needs a task"):
        prepare(src, DistillConfig(), RunContext(out_dir=tmp_path / "x", quiet=True))
    assert not (tmp_path / "student").exists()


def test_recipe_and_cli(tiny_data, teacher_dir, tmp_path, capsys):
    from edgeslim.cli import main
    from edgeslim.recipe import parse_recipe

    r = parse_recipe({"model": str(teacher_dir), "task": "sst2",
                      "steps": [{"distill": {"student_layers": [0, 2], "stages": ["task"], "task_losses": {"kl": 1}}}]})
    assert r.steps[0].config.student_layers == (0, 2) and r.steps[0].config.stages == ("task",)
    assert main(["distill", "--teacher", str(teacher_dir), "--task", "sst2", "--student-layers", "2",
                 "--student-hidden", "16", "--plan", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["plan"]["layer_map"] == [0, 3] and plan["plan"]["heads"] == 2 and plan["ratio"] > 2
    assert main(["distill", "--teacher", str(teacher_dir), "--task", "sst2", "--layer-map", "0,9", "--plan"]) == 2
    assert "out of range" in capsys.readouterr().err
