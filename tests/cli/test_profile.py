"""`edgeslim profile` and `edgeslim hw ...`: output labels, verdicts, plots, and clear errors."""
import json

import pytest

from edgeslim.cli import main


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_hw_list_and_show(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESLIM_HARDWARE_DIR", str(tmp_path))
    code, out, _ = run(capsys, "hw", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and rows["raspberry-pi-5"]["peak_gops"]["fp32"] == 153.6
    assert "edgeslim hw calibrate" in rows["host"]["error"]
    code, out, _ = run(capsys, "hw", "show", "jetson-orin-nano")
    assert code == 0 and "68" in out and "[estimate]" in out


def test_unknown_hardware_exit_2_with_hint(capsys, tiny_bert_dir):
    code, _, err = run(capsys, "profile", "--model", str(tiny_bert_dir), "--hardware", "rasberry-pi-5", "--no-measure")
    assert code == 2 and "unknown hardware 'rasberry-pi-5'" in err and "raspberry-pi-5" in err


@pytest.mark.parametrize("deadline", ["0", "-5"])
def test_bad_deadline_exit_2(capsys, tiny_bert_dir, deadline):
    code, _, err = run(capsys, "profile", "--model", str(tiny_bert_dir), "--hardware", "raspberry-pi-5",
                       "--deadline-ms", deadline, "--no-measure")
    assert code == 2 and "deadline must be a positive number" in err


def test_profile_predicted_and_measured(capsys, tiny_bert_dir, tmp_path, monkeypatch):
    """Tiny model on the Pi 5 (predicted) with a host measurement (ORT + PyTorch) and a roofline plot."""
    monkeypatch.setenv("EDGESLIM_HARDWARE_DIR", str(tmp_path / "hw"))
    code, out, _ = run(capsys, "profile", "--model", str(tiny_bert_dir), "--hardware", "raspberry-pi-5,jetson-orin-nano",
                       "--seq-len", "32", "--deadline-ms", "20", "--plot", str(tmp_path / "plots"), "--json")
    assert code == 0
    d = json.loads(out)
    m = d["measured"]
    assert m["label"] == "measured" and set(m["runtimes"]) == {"onnxruntime", "pytorch"}
    for st in m["runtimes"].values():
        assert 0 < st["p50_ms"] <= st["p95_ms"] <= st["p99_ms"] <= st["max_ms"]
    pi = d["hardware"]["raspberry-pi-5"]
    assert pi["label"] == "predicted" and pi["bound"] in ("memory", "compute", "overhead")
    assert pi["deadline"]["basis"] == "predicted latency" and pi["deadline"]["verdict"] == "meets"
    assert pi["deadline"]["max_seq_len"] == 128 and pi["deadline"]["seq_is_model_limit"]
    assert (tmp_path / "plots" / "roofline_raspberry-pi-5.png").stat().st_size > 5000
    assert d["cost"]["params"] > 0 and "ops" not in pi


def test_profile_host_uses_measured_p99(capsys, tiny_bert_dir, tmp_path, monkeypatch):
    from edgeslim.hardware.calibrate import host_profile_dict, write_profile

    monkeypatch.setenv("EDGESLIM_HARDWARE_DIR", str(tmp_path))
    fake_fp32 = {"gops_p50": 100.0, "gops_best": 120.0, "p50_ms": 1.0, "n": 64}   # stands in for a calibration
    fake_int8 = {"gops_p50": 300.0, "gops_best": 320.0, "p50_ms": 1.0, "n": 64}
    write_profile(host_profile_dict(fake_fp32, fake_int8, {"gbs_p50": 20.0, "gbs_best": 21.0, "p50_ms": 1.0,
                                                           "mbytes": 8}, threads=2))
    code, out, _ = run(capsys, "profile", "--model", str(tiny_bert_dir), "--hardware", "host", "--seq-len", "16",
                       "--deadline-ms", "1000")
    assert code == 0 and "MEASURED on this host" in out and "PREDICTED" in out
    assert "real-time host: MEETS 1000 ms (measured p99" in out


def test_hw_calibrate_no_fit_writes_loadable_host(capsys, tmp_path, monkeypatch):
    """A real (short) calibration: GEMM fp32/int8 and copy bandwidth measured, host.yaml written and loadable."""
    monkeypatch.setenv("EDGESLIM_HARDWARE_DIR", str(tmp_path))
    code, out, _ = run(capsys, "hw", "calibrate", "--no-fit", "--json")
    assert code == 0
    d = json.loads(out)
    assert (tmp_path / "host.yaml").is_file() and d["name"] == "host"
    from edgeslim.hardware import load_profile

    host = load_profile("host")
    assert host.peak("fp32") > 1 and host.peak("int8") > 1 and host.memory_bandwidth_gbs.value > 0.5
    assert "measured by `edgeslim hw calibrate`" in host.peak_gops["fp32"].source
    assert host.power_idle_w.estimate and not host.efficiency.fitted


def test_profile_shows_trust_and_uncertain_verdict(capsys, tiny_bert_dir):
    """Issue #20: every prediction carries its trust label; a deadline inside the band reads UNCERTAIN."""
    code, out, _ = run(capsys, "profile", "--model", str(tiny_bert_dir), "--hardware", "raspberry-pi-5",
                       "--seq-len", "32", "--precision", "int8", "--no-measure", "--json")
    pi = json.loads(out)["hardware"]["raspberry-pi-5"]
    assert code == 0 and pi["trust"]["status"] == "unchecked" and pi["trust_label"].startswith("unchecked (x3.0")
    lo, hi = pi["latency_range_ms"]
    assert lo < pi["latency_ms"] < hi and hi == pytest.approx(3 * pi["latency_ms"], rel=1e-3)
    deadline = f"{2 * pi['latency_ms']:.4f}"          # above the prediction, inside the band
    code, out, _ = run(capsys, "profile", "--model", str(tiny_bert_dir), "--hardware", "raspberry-pi-5,snapdragon-8gen3-npu",
                       "--seq-len", "32", "--precision", "int8", "--no-measure", "--deadline-ms", deadline)
    flat = " ".join(out.split())                       # rich wraps long cells and lines
    assert code == 0 and "┃ trust" in out                # the PREDICTED table has a trust column
    assert "real-time raspberry-pi-5: UNCERTAIN" in flat and "trust: unchecked (x3.0 either way" in flat
    code, out, _ = run(capsys, "profile", "--model", str(tiny_bert_dir), "--hardware", "snapdragon-8gen3-npu",
                       "--seq-len", "32", "--precision", "fp16", "--no-measure", "--json", "--deadline-ms", "1000")
    npu = json.loads(out)["hardware"]["snapdragon-8gen3-npu"]
    assert npu["trust"]["status"] == "checked" and "vs 6 published rows" in npu["trust_label"]
    assert npu["deadline"]["verdict"] == "meets" and npu["deadline"]["trust_label"] == npu["trust_label"]


def test_hw_check_prints_every_published_row(capsys):
    code, out, _ = run(capsys, "hw", "check", "--json")
    d = json.loads(out)
    assert code == 0 and len(d["rows"]) >= 12 and d["overall"]["devices"] >= 4
    assert all(r["source"] and r["url"] for r in d["rows"])
    assert d["overall"]["heldout"]["median_abs_error"] <= 0.30
    code, out, _ = run(capsys, "hw", "check", "--no-rows")
    assert code == 0 and "held-out median" in out and "median error before calibration" in out
