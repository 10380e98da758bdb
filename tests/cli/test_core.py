import json

import pytest

from edgeslim.cli import main


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_and_unknown_option(capsys):
    assert run(capsys, "--help")[0] == 0
    code, _, err = run(capsys, "eval", "--bogus")
    assert code == 2 and "No such option: --bogus" in err


def test_tasks_json(capsys, tiny_data):
    code, out, _ = run(capsys, "tasks", "--json")
    rows = {r["task"]: r for r in json.loads(out)}
    assert code == 0 and rows["sst2"]["splits"] == {"train": True, "val": True, "dev": True,
                                                        "train-full": True}
    assert rows["cola"]["metrics"][0] == "matthews_corr"


def test_unknown_task_exits_2(capsys, tiny_bert_dir):
    code, _, err = run(capsys, "eval", "--model", str(tiny_bert_dir), "--task", "sst3")
    assert code == 2 and "unknown task 'sst3'" in err and "sst2" in err


def test_missing_data_dir_exits_2(capsys, tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESLIM_DATA", str(tmp_path / "absent"))
    code, _, err = run(capsys, "eval", "--model", str(tiny_bert_dir), "--task", "sst2")
    assert code == 2 and "data directory not found" in err and "EDGESLIM_DATA" in err


def test_malformed_tsv_exits_2(capsys, tiny_bert_dir, tiny_data):
    (tiny_data / "glue" / "SST-2" / "dev.tsv").write_text("sentence\tlabel\nfine\t1\nbroken row\n")
    code, _, err = run(capsys, "eval", "--model", str(tiny_bert_dir), "--task", "sst2")
    assert code == 2 and "dev.tsv:3" in err


def test_model_without_weights_exits_2(capsys, tiny_bert_dir, tmp_path, tiny_data):
    import shutil

    bad = tmp_path / "m"
    shutil.copytree(tiny_bert_dir, bad)
    (bad / "model.safetensors").unlink()
    code, _, err = run(capsys, "eval", "--model", str(bad), "--task", "sst2")
    assert code == 2 and "has no weights" in err


def test_eval_json(capsys, tiny_bert_dir, tiny_data):
    code, out, _ = run(capsys, "eval", "--model", str(tiny_bert_dir), "--task", "sst2", "--json")
    d = json.loads(out)
    assert code == 0 and d["metrics"]["eval"]["n"] == 32 and 0 <= d["metrics"]["accuracy"] <= 1


@pytest.mark.parametrize("cmd", [["steps", "--json"], ["models", "--json"]])
def test_listing_commands_print_json(capsys, cmd):
    code, out, _ = run(capsys, *cmd)
    assert code == 0 and isinstance(json.loads(out), list)


def test_steps_listing_shows_factory_defaults(capsys):
    code, out, _ = run(capsys, "steps", "--json")
    distill = next(r for r in json.loads(out) if r["step"] == "distill")
    assert code == 0 and distill["options"]["task_losses"] == {"kl": 1.0, "ce": 0.5}
