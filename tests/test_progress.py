"""Progress in a log: plain flushed lines (step start/end, training heartbeats) when output is not a terminal."""
from __future__ import annotations

import io
import json
import re

import pytest

from edgeslim import progress
from edgeslim.errors import ConfigError


class Stream(io.StringIO):
    """A captured stream that says whether it is a terminal and records each write and flush in order."""

    def __init__(self, tty: bool):
        super().__init__()
        self.tty, self.events = tty, []

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> int:
        self.events.append("write")
        return super().write(s)

    def flush(self) -> None:
        self.events.append("flush")


def _stdout(monkeypatch) -> Stream:
    """A fake stdout (not a terminal). Set in the test body: pytest re-installs its own capture after fixtures."""
    s = Stream(tty=False)
    monkeypatch.setattr("sys.stdout", s)
    monkeypatch.delenv(progress.MODE_ENV, raising=False)
    monkeypatch.delenv(progress.SECONDS_ENV, raising=False)
    return s


def test_mode_follows_the_stream_and_the_environment(monkeypatch):
    out = _stdout(monkeypatch)
    assert progress.progress_mode() == "plain" and progress.progress_mode(quiet=True) == "off"
    out.tty = True
    assert progress.progress_mode() == "rich"
    monkeypatch.setenv(progress.MODE_ENV, "plain")
    assert progress.progress_mode() == "plain"
    monkeypatch.setenv(progress.MODE_ENV, "fancy")
    with pytest.raises(ConfigError, match="EDGESLIM_PROGRESS must be one of auto, plain, rich"):
        progress.progress_mode()
    monkeypatch.setenv(progress.SECONDS_ENV, "0")
    with pytest.raises(ConfigError, match="EDGESLIM_PROGRESS_SECONDS must be a number of seconds > 0"):
        progress.heartbeat_seconds()
    monkeypatch.setenv(progress.SECONDS_ENV, "2.5")
    assert progress.heartbeat_seconds() == 2.5


def test_lines_are_flushed_and_go_to_stderr_when_asked(monkeypatch):
    out = _stdout(monkeypatch)
    err = Stream(tty=False)
    monkeypatch.setattr("sys.stderr", err)
    progress.progress_line("[1/2] finetune: start")
    assert out.getvalue() == "[1/2] finetune: start\n" and out.events[-1] == "flush"
    progress.progress_line("hidden", quiet=True)
    try:
        progress.progress_to_stderr()
        progress.progress_line("[1/2] finetune: done in 3 s")
    finally:
        progress.progress_to_stderr(False)
    assert "hidden" not in out.getvalue() and err.getvalue() == "[1/2] finetune: done in 3 s\n"


def test_time_left_from_rate_or_budget(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    bar = progress._PlainBar("train", 100, 0, None, "steps", 30.0)
    bar.done, now[0] = 25, 110.0                  # 25 steps in 10 s -> 75 more take 30 s
    assert bar.time_left(now[0]) == (30.0, False)
    budgeted = progress._PlainBar("train", 100, 0, 20.0, "steps", 30.0)
    budgeted.t0, budgeted.done = 100.0, 25          # the same rate, but only 10 s of the 20 s budget remain
    assert budgeted.time_left(110.0) == (10.0, True)
    resumed = progress._PlainBar("train", 100, 50, None, "steps", 30.0)
    resumed.t0, resumed.done = 100.0, 60          # resumed at 50: 10 steps in 10 s -> 40 s for the last 40
    assert resumed.time_left(110.0) == (40.0, False)
    assert progress.duration(42) == "42 s" and progress.duration(541) == "9 min 01 s"
    assert progress.duration(7500) == "2 h 05 min"


def test_heartbeat_lines_in_plain_mode(monkeypatch):
    out = _stdout(monkeypatch)
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    monkeypatch.setenv(progress.SECONDS_ENV, "30")
    with progress.progress_bar("finetune sst2", 10, time_budget=600) as bar:
        for i in range(10):
            now[0] += 10.0                          # one step every 10 s -> a line every 3 steps
            bar.set(f"loss {1 / (i + 1):.4f}")
            bar.advance()
    lines = out.getvalue().splitlines()
    assert lines[0] == "  finetune sst2: 3/10 steps (30%), loss 0.3333, 30 s elapsed, ~1 min 10 s left"
    assert len(lines) == 4 and lines[-1] == "  finetune sst2: finished 10/10 steps (100%) in 1 min 40 s, loss 0.1000"
    with progress.progress_bar("quiet one", 10, quiet=True) as bar:
        bar.advance(10)
    assert len(out.getvalue().splitlines()) == 4


RECIPE = """model: {model}
task: sst2
steps:
  - finetune: {{epochs: 2, batch_size: 8, lr: 0.001}}
  - eval: {{limit: 8}}
"""


def _run(capsys, *args):
    from edgeslim.cli import main

    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_run_prints_step_and_heartbeat_lines_to_a_log(tiny_data, tiny_bert_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(progress.MODE_ENV, raising=False)
    monkeypatch.setenv(progress.SECONDS_ENV, "0.000001")     # every training step is a heartbeat
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(model=tiny_bert_dir))
    code, out, err = _run(capsys, "run", str(recipe), "--out", str(tmp_path / "run"))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "[1/2] finetune: start"
    beats = [ln for ln in lines if ln.startswith("  finetune sst2: ") and "finished" not in ln]
    # 77 train examples (96 minus 19 carved for val) -> 10 steps an epoch, 20 steps
    assert re.fullmatch(r"  finetune sst2: 1/20 steps \(5%\), loss \d+\.\d{4}, \d+ s elapsed, ~\d+ s left", beats[0])
    assert len(beats) >= 10
    assert re.search(r"^\[1/2\] finetune: done in \d+ s$", out, re.MULTILINE) and "[1/2] finetune -> " in out
    assert lines.index("[2/2] eval: start") > lines.index("[1/2] finetune: start")
    assert re.search(r"^\[2/2\] eval: done in \d+ s$", out, re.MULTILINE)

    code, out, _ = _run(capsys, "run", str(recipe), "--out", str(tmp_path / "run"))
    assert code == 0 and "[1/2] finetune: cached" in out and "[2/2] eval: cached" in out and "start" not in out

    code, out, err = _run(capsys, "run", str(recipe), "--out", str(tmp_path / "json"), "--json")
    assert code == 0 and json.loads(out)["out"] == str(tmp_path / "json")      # stdout is only the JSON
    assert "[1/2] finetune: start" in err and "  finetune sst2: 1/20 steps" in err


def test_quiet_run_prints_no_progress(tiny_data, tiny_bert_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(progress.SECONDS_ENV, "0.000001")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(model=tiny_bert_dir))
    code, out, err = _run(capsys, "-q", "run", str(recipe), "--out", str(tmp_path / "run"))
    assert code == 0, err
    progress_lines = [ln for ln in (out + err).splitlines()
                      if re.search(r": (start|cached|done in .*)$", ln) or ln.startswith("  finetune sst2: ")]
    assert progress_lines == []
    assert "[1/2] finetune -> " in out          # the result lines stay


def test_a_failing_step_says_so_in_the_log(tiny_data, tiny_bert_dir, tmp_path, capsys):
    from edgeslim.errors import DataError
    from edgeslim.pipeline import run_recipe
    from edgeslim.recipe import parse_recipe

    r = parse_recipe({"model": str(tiny_bert_dir), "task": "sst2", "steps": [{"eval": {"split": "test"}}]})
    with pytest.raises(DataError, match="no split 'test'"):
        run_recipe(r, tmp_path / "run")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[1/1] eval: start" and re.fullmatch(r"\[1/1\] eval: failed after \d+ s", out[1])
