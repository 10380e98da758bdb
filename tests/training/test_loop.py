"""The one training loop: schedule, parameter groups, budget, atomic checkpoints and exact resume, and that
the training paths built on it (SQuAD fine-tuning, prune recovery) resume after a crash."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from edgeslim.artifact import ModelArtifact
from edgeslim.context import RunContext
from edgeslim.errors import ConfigError
from edgeslim.training import loop as L
from edgeslim.training.text import length_grouped_batches

from . import loop_job

JOB = Path(__file__).with_name("loop_job.py")


def max_diff(a, b) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa if sa[k].numel())


class FakeClock:
    """Stands in for time.perf_counter: each training step takes `dt` seconds."""

    def __init__(self, dt: float):
        self.t, self.dt = 1000.0, dt

    def __call__(self) -> float:
        return self.t


def scripted_run(monkeypatch, cfg, n_examples, dt):
    """Run the loop on one scalar parameter with a fake clock; returns (result, lr per step, batches)."""
    clock = FakeClock(dt)
    monkeypatch.setattr(L, "time", SimpleNamespace(perf_counter=clock))   # only the loop's clock
    lrs, batches = [], []
    real_step = L.optimizer_step

    def recording_step(loss, params, opt, max_grad_norm=1.0):
        lrs.append(opt.param_groups[0]["lr"])
        real_step(loss, params, opt, max_grad_norm)

    monkeypatch.setattr(L, "optimizer_step", recording_step)
    w = torch.nn.Parameter(torch.ones(()))

    def loss_fn(b):
        batches.append(list(b))
        clock.t += clock.dt
        return (w * w).sum(), {}

    res = L.train_loop([("w", w)], [1] * n_examples, loss_fn, cfg, quiet=True)
    return res, lrs, batches


def test_lr_factor_warms_up_then_decays_to_zero():
    assert L.lr_factor(0.0, 0.1) == 0.0
    assert L.lr_factor(0.05, 0.1) == pytest.approx(0.5)
    assert L.lr_factor(0.1, 0.1) == pytest.approx(1.0)
    assert L.lr_factor(0.55, 0.1) == pytest.approx(0.5)
    assert L.lr_factor(1.0, 0.1) == 0.0 and L.lr_factor(1.2, 0.1) == 0.0
    assert L.lr_factor(0.0, 0.0) == 1.0


def test_schedule_follows_steps_or_time_whichever_is_further(monkeypatch):
    cfg = L.LoopConfig(lr=1.0, epochs=1, max_minutes=1, batch_size=1, warmup=0.0)
    # 3 s per step: 10 planned steps end before the 60 s budget; progress = steps / 10
    res, lrs, _ = scripted_run(monkeypatch, cfg, 10, dt=3.0)
    assert res.steps == 10 == res.planned_steps and res.stopped_by == "epochs" and not res.resumed
    assert lrs == pytest.approx([1 - k / 10 for k in range(10)])
    # 12 s per step: time runs ahead (progress = elapsed / 60) and the budget stops the run after 5 steps
    res, lrs, _ = scripted_run(monkeypatch, cfg, 10, dt=12.0)
    assert res.steps == 5 and res.stopped_by == "max_minutes" and res.seconds == pytest.approx(60.0)
    assert lrs == pytest.approx([1 - k / 5 for k in range(5)])


def test_time_only_run_spans_epochs_with_seed_plus_epoch_order(monkeypatch):
    cfg = L.LoopConfig(lr=1.0, epochs=None, max_minutes=1, batch_size=1, warmup=0.5, seed=7)
    res, lrs, batches = scripted_run(monkeypatch, cfg, 4, dt=6.0)
    assert res.steps == 10 and res.planned_steps is None and res.stopped_by == "max_minutes"
    assert lrs == pytest.approx([L.lr_factor(k / 10, 0.5) for k in range(10)])
    expect = [b for e in range(3) for b in length_grouped_batches([1] * 4, 1, 7 + e)]
    assert batches == expect[:10]


def test_budget_stops_a_real_run_by_max_minutes():
    w = torch.nn.Parameter(torch.ones(3))

    def loss_fn(b):
        time.sleep(0.01)
        return (w * w).sum(), {}

    t0 = time.perf_counter()
    res = L.train_loop([("w", w)], [1] * 8, loss_fn, L.LoopConfig(lr=1e-3, epochs=1000, max_minutes=0.005),
                       quiet=True)
    assert res.stopped_by == "max_minutes" and 0 < res.steps < res.planned_steps
    assert 0.3 <= res.seconds < 3 and time.perf_counter() - t0 < 5


def test_param_groups_exclude_bias_and_layernorm_from_decay():
    model = loop_job.tiny_model()
    named = list(model.named_parameters())
    decayed, plain = L.param_groups(named, 0.01)
    assert decayed["weight_decay"] == 0.01 and plain["weight_decay"] == 0.0
    name_of = {id(p): n for n, p in named}
    d_names, p_names = [name_of[id(p)] for p in decayed["params"]], [name_of[id(p)] for p in plain["params"]]
    assert len(d_names) + len(p_names) == len(named)
    assert p_names and all(n.endswith("bias") or "LayerNorm" in n for n in p_names)
    assert not any(n.endswith("bias") or "LayerNorm" in n for n in d_names)
    assert "bert.embeddings.LayerNorm.weight" in p_names and "classifier.weight" in d_names
    assert L.no_decay("vit.encoder.layer.0.layernorm_before.weight") and L.no_decay("ln.layer_norm.weight")
    assert len(L.param_groups([("x.bias", named[0][1])], 0.1)) == 1      # empty groups are dropped


def test_bad_loop_config():
    with pytest.raises(ConfigError, match="warmup must be in"):
        L.LoopConfig(lr=1e-3, warmup=1.0)
    with pytest.raises(ConfigError, match="epochs must be > 0 or None"):
        L.LoopConfig(lr=1e-3, epochs=0)
    with pytest.raises(ConfigError, match="lr must be > 0"):
        L.LoopConfig(lr=0)


def test_resume_after_crash_equals_uninterrupted_run(tmp_path):
    ckpt = tmp_path / "run.ckpt" / "state.pt"
    _, straight = loop_job.run(None)
    with pytest.raises(RuntimeError, match="simulated crash"):
        loop_job.run(ckpt, crash_at=8)                     # 7 steps done, each checkpointed
    saved = L.read_checkpoint(ckpt, "job")
    assert saved["step"] == 7 and not saved["finished"] and saved["optimizer"] is not None
    assert len(saved["recent_losses"]) == 7 and set(saved["recent_losses"][0]) == {"ce", "total"}
    res, resumed = loop_job.run(ckpt)
    assert res.resumed and res.steps == res.planned_steps == 12 and res.stopped_by == "epochs"
    assert max_diff(resumed, straight) < 1e-6
    assert len(res.first_losses) == len(res.recent_losses) == 12     # the losses before the crash are kept
    # a finished run is not trained again: its final weights come back as they were
    again_res, again = loop_job.run(ckpt)
    assert again_res.resumed and again_res.steps == 12 and max_diff(again, straight) == 0.0
    assert L.read_checkpoint(ckpt, "job")["optimizer"] is None
    # another key (changed input or option) never resumes from this file
    other_res, _ = loop_job.run(ckpt, key="other")
    assert not other_res.resumed and other_res.steps == 12
    assert L.read_checkpoint(ckpt, "job") is None and L.read_checkpoint(ckpt)["key"] == "other"


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    ckpt = tmp_path / "kill.ckpt" / "state.pt"
    proc = subprocess.Popen([sys.executable, str(JOB), str(ckpt), "0.1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            saved = L.read_checkpoint(ckpt, "job")
            if saved is not None and saved["step"] >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"job ended before it was killed: {proc.stderr.read().decode()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = L.read_checkpoint(ckpt, "job")
    assert proc.returncode == -signal.SIGKILL and 3 <= killed_at["step"] < 12 and not killed_at["finished"]
    res, resumed = loop_job.run(ckpt)
    assert res.resumed and res.steps == 12
    _, straight = loop_job.run(None)
    assert max_diff(resumed, straight) < 1e-6


def _crash_on_call(monkeypatch, module, name, at):
    real, calls = getattr(module, name), {"n": 0}

    def crashing(*a, **k):
        calls["n"] += 1
        if calls["n"] == at:
            raise KeyboardInterrupt("simulated kill")
        return real(*a, **k)

    monkeypatch.setattr(module, name, crashing)
    return lambda: monkeypatch.setattr(module, name, real)


def test_squad_finetune_resumes_after_kill(tiny_data, tiny_qa_dir, tmp_path, monkeypatch):
    import edgeslim.finetune.qa as QA
    from edgeslim.finetune.step import FinetuneConfig, finetune
    from edgeslim.models.hf import load_model

    src = ModelArtifact.load(tiny_qa_dir)
    # a budget far away keeps the clock out of the schedule (progress = steps / total), so runs are repeatable
    cfg = FinetuneConfig(epochs=2, max_minutes=1e9, batch_size=2, lr=1e-3, max_length=64, eval_batch_size=4,
                         checkpoint_minutes=1e-6)
    ctx = RunContext(out_dir=tmp_path / "qa", task="squad", quiet=True)
    straight = finetune(src, cfg, RunContext(out_dir=tmp_path / "straight", task="squad", quiet=True))
    assert straight.metrics["train"]["resumed"] is False
    restore = _crash_on_call(monkeypatch, QA, "collate_qa", 4)
    with pytest.raises(KeyboardInterrupt):
        finetune(src, cfg, ctx)
    assert (tmp_path / "qa.ckpt" / "state.pt").is_file() and not (tmp_path / "qa").exists()
    restore()
    art = finetune(src, cfg, ctx)
    train = art.metrics["train"]
    assert train["resumed"] is True and train["steps"] == straight.metrics["train"]["steps"] == 8
    assert train["stopped_by"] == "epochs" and not (tmp_path / "qa.ckpt").exists()
    assert max_diff(load_model(art.path, "qa"), load_model(straight.path, "qa")) < 1e-6


def test_prune_recovery_resumes_after_kill(tiny_data, tiny_bert_dir, tmp_path, monkeypatch):
    import edgeslim.prune.step as P
    import edgeslim.training.text as T

    src = ModelArtifact.load(tiny_bert_dir)
    cfg = P.PruneConfig(heads=0.5, score="magnitude", recover_minutes=0.05, eval=False, checkpoint_minutes=1e-6)
    ctx = RunContext(out_dir=tmp_path / "pruned", task="sst2", quiet=True)
    restore = _crash_on_call(monkeypatch, T, "collate", 3)      # magnitude scores: collate only feeds recovery
    with pytest.raises(KeyboardInterrupt):
        P.prune(src, cfg, ctx)
    files = list((tmp_path / "pruned.ckpt").glob("recovery-*.pt"))
    assert len(files) == 1 and not (tmp_path / "pruned").exists()
    saved = L.read_checkpoint(files[0])
    assert saved["step"] == 2 and saved["elapsed"] < 3.0
    restore()
    art = P.prune(src, cfg, ctx)
    rec = art.metrics["prune"]["rounds"][0]["recovery"]
    assert set(rec) == {"steps", "seconds", "final_loss", "distill", "resumed"}
    # time-only: the resumed run spends the rest of the 3 s budget, counting the steps before the crash
    assert rec["resumed"] is True and rec["steps"] > 2 and rec["seconds"] >= 3.0 and rec["distill"] is True
    assert not (tmp_path / "pruned.ckpt").exists()


def test_two_stage_distillation_resumes_in_either_stage(tiny_data, tmp_path, monkeypatch):
    import edgeslim.distill.train as DT
    from edgeslim.distill.step import DistillConfig, distill
    from edgeslim.models.hf import load_model
    from edgeslim.models.tiny import save_tiny_bert

    monkeypatch.setenv("EDGESLIM_RUNS", str(tmp_path / "runs"))
    src = ModelArtifact.load(save_tiny_bert(tmp_path / "teacher", layers=4, hidden=32, heads=4, ffn=64))
    # 6 SQuAD sentences, batch 8: 2 general steps; then 77 SST-2 train examples (96 minus 19 val), batch 16: 5 steps
    cfg = DistillConfig(student_layers=2, student_hidden=16, general_epochs=2, task_epochs=1, batch_size=16,
                        general_minutes=1e9, task_minutes=1e9, checkpoint_minutes=1e-6)
    straight = distill(src, cfg, RunContext(out_dir=tmp_path / "straight", task="sst2", quiet=True))
    want = straight.metrics["distill"]["stages"]
    assert not straight.metrics["distill"]["resumed"] and [want[s]["steps"] for s in ("general", "task")] == [2, 5]
    for crash_at in (3, 6):        # at the first task step (general finished), and mid task stage
        ctx = RunContext(out_dir=tmp_path / f"s{crash_at}", task="sst2", quiet=True)
        restore = _crash_on_call(monkeypatch, DT, "collate", crash_at)
        with pytest.raises(KeyboardInterrupt):
            distill(src, cfg, ctx)
        restore()
        art = distill(src, cfg, ctx)
        d = art.metrics["distill"]
        assert d["resumed"] and d["stages"]["task"]["steps"] == 5 == d["stages"]["task"]["planned_steps"]
        for s in ("general", "task"):
            assert d["stages"][s]["first_loss"] == want[s]["first_loss"]
            assert d["stages"][s]["final_loss"] == pytest.approx(want[s]["final_loss"], abs=1e-4)
        assert d["stages"]["general"]["corpus_texts"] == want["general"]["corpus_texts"]
        assert max_diff(load_model(art.path, "classification"), load_model(straight.path, "classification")) < 1e-6
        assert not (tmp_path / f"s{crash_at}.ckpt").exists()
