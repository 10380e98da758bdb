"""Predictions held against published on-device measurements (issue #20): the data, the held-out fit, the
roofline floor, the trust band and the "uncertain" verdict."""
import dataclasses
import re

import pytest

from edgeslim.errors import HardwareError
from edgeslim.hardware import check as chk
from edgeslim.hardware import list_profiles, load_profile, model_cost, predict_cost
from edgeslim.hardware.check import (
    Trust,
    assumed_efficiency,
    check_published,
    deadline_verdict,
    load_published,
    published_check,
    trust_for,
)
from edgeslim.hardware.cost import BottleneckShape, bottleneck_model_cost
from edgeslim.hardware.predict import roofline_floor_ms
from edgeslim.hardware.schema import BUILTIN_DIR

MODELS, ROWS = load_published()
SHIPPED = sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def test_published_rows_meet_the_acceptance_counts():
    assert len(ROWS) >= 12 and len({r.device for r in ROWS}) >= 4


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_every_row_has_its_setting_and_source(row):
    assert row.url.startswith("https://") and len(row.source) > 40
    assert row.runtime and row.threads and row.statistic and row.batch >= 1 and row.seq_len >= 1
    assert row.device in SHIPPED                      # every published row has a profile to be predicted on
    assert row.fit or row.fit_note                    # a row left out of fitting says why
    assert MODELS[row.model].source


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_every_row_is_predictable_and_not_below_its_floor(row):
    prof = load_profile(row.device)
    cost = MODELS[row.model].cost(batch=row.batch, seq_len=row.seq_len, precision=row.precision, head=row.head)
    pred = predict_cost(cost, prof)
    floor = roofline_floor_ms(cost, prof.peak(row.precision), prof.memory_bandwidth_gbs.value)
    assert 0 < floor <= pred.latency_ms
    # a published figure below the device's floor would mean a wrong peak or a wrong shape in the data
    assert row.latency_ms >= floor, f"{row.id}: published {row.latency_ms} ms beats the floor {floor:.2f} ms"
    if row.published_flops:   # the cost model agrees with the paper's FLOP count within 10%
        assert cost.flops == pytest.approx(row.published_flops, rel=0.10)


def test_mobilebert_shapes_match_the_paper_parameter_counts():
    """Sun et al. 2020: MobileBERT 25.3M and MobileBERT-tiny 15.1M parameters (embeddings included)."""
    assert bottleneck_model_cost(BottleneckShape()).params == pytest.approx(25.3e6, rel=0.05)
    tiny = BottleneckShape(ffn_stacks=2, qkv_from_bottleneck=True)
    assert bottleneck_model_cost(tiny).params == pytest.approx(15.1e6, rel=0.05)


def test_bad_rows_fail_loudly(tmp_path):
    text = (BUILTIN_DIR.parent / "published.yaml").read_text()
    bad = tmp_path / "p.yaml"
    bad.write_text(text.replace('    url: "https://arxiv.org/abs/2004.02984"\n', "", 1))
    with pytest.raises(HardwareError, match="missing 'url'"):
        load_published(bad)
    bad.write_text(re.sub(r"(?m)^    fit_note: .*$", "    fit_note: ''", text, count=1))
    with pytest.raises(HardwareError, match="fit_note"):
        load_published(bad)


# ------------------------------------------------------------------------------------------ held out

def test_leave_one_model_out_never_fits_on_the_held_out_row(monkeypatch):
    """Spy on the fit: the held-out prediction of each row comes from a fit whose training set excludes every
    row of that model on that device (and rows marked fit: false)."""
    calls = []
    real = chk.fit_scale

    def spy(times, published, upper):
        calls.append(tuple(published))
        return real(times, published, upper)

    monkeypatch.setattr(chk, "fit_scale", spy)
    report = check_published()
    for rc in report.rows:
        if not rc.heldout_basis.startswith("fitted on"):
            continue
        r = rc.row
        train = tuple(t.latency_ms for t in ROWS if t.device == r.device and t.model != r.model and t.fit)
        assert train in calls, r.id
        assert r.latency_ms not in train


def test_held_out_prediction_changes_when_the_held_out_row_is_corrupted():
    """Corrupting a row's published latency must not move its own held-out prediction (it is not trained on),
    but does move the in-sample fit."""
    row = next(r for r in ROWS if r.id == "s24-distilbert-tflite")
    base = {r.row.id: r for r in check_published(ROWS, MODELS).rows}
    corrupted = [dataclasses.replace(r, latency_ms=r.latency_ms * 10) if r.id == row.id else r for r in ROWS]
    after = {r.row.id: r for r in check_published(corrupted, MODELS).rows}
    assert after[row.id].heldout_ms == pytest.approx(base[row.id].heldout_ms, rel=1e-9)
    assert after[row.id].fitted_ms != pytest.approx(base[row.id].fitted_ms, rel=1e-3)


def test_held_out_median_error_meets_the_bar():
    o = published_check().to_dict()["overall"]
    assert o["heldout"]["n"] == len(ROWS)
    assert o["heldout"]["median_abs_error"] <= 0.30


def test_shipped_profiles_carry_the_fit():
    """The fitted factors in the profile YAMLs are what `edgeslim hw check` fits (regenerate them if this fails)."""
    report = published_check()
    for dev, eff in report.fitted.items():
        prof = load_profile(dev)
        assert prof.efficiency.fitted and "issue #20" in prof.efficiency.source
        for f in ("linear", "attention", "elementwise", "memory", "op_overhead_us", "fixed_overhead_us"):
            assert getattr(prof.efficiency, f) == pytest.approx(getattr(eff, f), rel=0.01), (dev, f)
        assert assumed_efficiency(prof) != prof.efficiency


# ------------------------------------------------------------------------------------------ the floor

BERT = {"model_type": "bert", "num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4,
        "intermediate_size": 1024, "vocab_size": 8000, "max_position_embeddings": 512, "num_labels": 2}


@pytest.mark.parametrize("name", SHIPPED)
def test_no_prediction_beats_the_roofline_floor(name):
    """A prediction faster than the device's compute or bandwidth bound allows is a bug."""
    prof = load_profile(name)
    assert max(prof.efficiency.linear, prof.efficiency.attention, prof.efficiency.elementwise,
               prof.efficiency.memory) <= 1.0
    for prec in prof.precisions:
        for batch, seq in ((1, 16), (1, 128), (8, 128), (1, 512)):
            cost = model_cost(BERT, batch=batch, seq_len=seq, precision=prec)
            floor = roofline_floor_ms(cost, prof.peak(prec), prof.memory_bandwidth_gbs.value)
            assert predict_cost(cost, prof).latency_ms >= floor


def test_an_efficiency_above_one_is_caught_by_the_floor():
    prof = load_profile("raspberry-pi-5")
    fast = dataclasses.replace(prof.efficiency, linear=1.5, attention=1.5, elementwise=1.5, memory=1.5,
                               op_overhead_us=0, fixed_overhead_us=0)
    cost = model_cost(BERT, batch=8, seq_len=128)
    assert predict_cost(cost, prof, fast).latency_ms < roofline_floor_ms(cost, prof.peak("fp32"),
                                                                         prof.memory_bandwidth_gbs.value)


# ------------------------------------------------------------------------------------------ trust

def test_trust_labels_checked_and_unchecked():
    t = trust_for("snapdragon-8gen3-npu", "fp16")
    assert t.status == "checked" and t.rows == 6 and "vs 6 published rows" in t.label
    assert t.low <= 1 <= t.high
    rows = published_check().device_rows("snapdragon-8gen3-npu", "fp16")
    assert t.high == pytest.approx(max(1 / (1 + r.heldout_error) for r in rows))
    pi = trust_for("raspberry-pi-5", "fp32")    # no row: its kind's before-calibration band, widened
    assert pi.status == "unchecked" and pi.label.startswith("unchecked") and "raspberry-pi-5" in pi.label
    cpu = [r for r in published_check().kind_rows("cpu") if r.row.precision == "fp32" and r.row.fit]
    assert pi.high == pytest.approx(max(max(1 / (1 + r.before_error) for r in cpu), 1) ** 2)
    jet = trust_for("jetson-orin-nano", "int8")  # nothing of its kind: x3 either way
    assert (jet.low, jet.high) == pytest.approx(chk.UNCHECKED_BAND) and "x3.0 either way" in jet.label


@pytest.mark.parametrize("name", [n for n in list_profiles() if n != "host"])
def test_every_profile_has_a_trust_label(name):
    prof = load_profile(name)
    for prec in prof.precisions:
        t = trust_for(prof, prec)
        assert t.label and 0 < t.low <= 1 <= t.high


def test_verdict_inside_the_band_is_uncertain():
    """Predicted 7.0 ms with published/predicted in [0.8, 1.35]: the device may take 5.6 to 9.45 ms."""
    t = Trust("dev", "fp32", "checked", 4, 0.8, 1.35, "held-out published rows", "±35% vs 4 published rows")
    assert deadline_verdict(7.0, 9.0, t) == "uncertain"    # inside the band, above the prediction
    assert deadline_verdict(7.0, 6.0, t) == "uncertain"    # inside the band, below the prediction
    assert deadline_verdict(7.0, 10.0, t) == "meets"       # the whole band under the deadline
    assert deadline_verdict(7.0, 5.0, t) == "misses"       # the whole band over it
    assert deadline_verdict(7.0, 7.5) == "meets" and deadline_verdict(7.6, 7.5) == "misses"   # measured: as is


def test_host_bound_warning():
    prof = load_profile("raspberry-pi-5")
    cost = model_cost(BERT, batch=1, seq_len=16, precision="int8")
    pred = predict_cost(cost, prof)
    slow_host = chk.host_bound_warning(pred, prof, pred.latency_ms * 2, host_peak_gops=1e5, host_bandwidth_gbs=1e3)
    assert slow_host and "likely optimistic" in slow_host and "raspberry-pi-5" in slow_host
    # the device's bounding resource is faster than the host's: no warning
    assert chk.host_bound_warning(pred, prof, pred.latency_ms * 2, host_peak_gops=1, host_bandwidth_gbs=1) is None
    # the prediction does not beat the host: no warning
    assert chk.host_bound_warning(pred, prof, pred.latency_ms / 2, 1e5, 1e3) is None
