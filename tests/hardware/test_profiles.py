"""Hardware profiles as data: every shipped profile loads and cites its figures; bad files fail clearly."""
import pytest

from edgeslim.errors import ConfigError, HardwareError
from edgeslim.hardware import list_profiles, load_profile
from edgeslim.hardware.schema import BUILTIN_DIR, parse_profile

SHIPPED = sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def test_required_devices_shipped_and_host_not():
    assert {"jetson-orin-nano", "snapdragon-8gen3-cpu", "snapdragon-8gen3-npu", "apple-a17-pro-ane",
            "raspberry-pi-5"} <= set(SHIPPED)
    assert "host" not in SHIPPED    # host is calibrated per machine, never shipped


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads_with_sources(name):
    p = load_profile(name)
    assert p.name == name and p.precisions
    figs = list(p.peak_gops.values()) + list(p.pj_per_mac.values()) + [
        p.memory_bandwidth_gbs, p.memory_gb, p.power_active_w, p.power_idle_w, p.pj_per_dram_byte]
    for f in figs:
        assert f.value > 0 and len(f.source) > 10
        if "estimate" in f.source.lower():
            assert f.estimate, f"{name}: a figure whose source says 'estimate' must be marked estimate: true"
    assert p.power_active_w.value > p.power_idle_w.value
    assert all(pr in p.pj_per_mac for pr in p.precisions)


def test_unknown_hardware_suggests_close_match():
    with pytest.raises(HardwareError, match="Did you mean 'jetson-orin-nano'"):
        load_profile("jetson-orin-nan")


def test_missing_host_tells_to_calibrate(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESLIM_HARDWARE_DIR", str(tmp_path))
    assert "host" in list_profiles()
    with pytest.raises(HardwareError, match="edgeslim hw calibrate"):
        load_profile("host")


def _valid(**over):
    import yaml

    d = yaml.safe_load((BUILTIN_DIR / "raspberry-pi-5.yaml").read_text())
    d.update(over)
    return d


def test_user_profile_added_by_one_file(tmp_path, monkeypatch):
    import yaml

    monkeypatch.setenv("EDGESLIM_HARDWARE_DIR", str(tmp_path))
    (tmp_path / "my-board.yaml").write_text(yaml.safe_dump(_valid(name="my-board")))
    assert "my-board" in list_profiles()
    assert load_profile("my-board").memory_bandwidth_gbs.value == 17.1


@pytest.mark.parametrize("bad,match", [
    (dict(memory_bandwidth_gbs={"value": -3, "source": "x"}), "field 'memory_bandwidth_gbs'.value must be a positive"),
    (dict(memory_bandwidth_gbs={"value": 3}), "memory_bandwidth_gbs': missing `source`"),
    (dict(peak_gops={"fp64": {"value": 1, "source": "x"}}), "peak_gops': unknown precision 'fp64'"),
    (dict(kind="fpga"), "field 'kind' must be one of"),
    (dict(bandwidth=3), "unknown field 'bandwidth'"),
    (dict(efficiency={"linear": 3.0}), "efficiency.linear must be"),
    (dict(efficiency={"lineer": 0.3}), "efficiency.lineer.*Did you mean 'linear'"),
])
def test_schema_errors_name_the_field(bad, match):
    with pytest.raises(HardwareError, match=match):
        parse_profile(_valid(**bad), where="x.yaml")


def test_missing_field_named():
    d = _valid()
    del d["power_idle_w"]
    with pytest.raises(HardwareError, match="missing field 'power_idle_w'"):
        parse_profile(d)


def test_malformed_yaml_and_name_mismatch(tmp_path, monkeypatch):
    import yaml

    monkeypatch.setenv("EDGESLIM_HARDWARE_DIR", str(tmp_path))
    (tmp_path / "broken.yaml").write_text("name: broken\npeak_gops: {fp32: [1, 2\n")
    with pytest.raises(HardwareError, match="broken.yaml: not valid YAML"):
        load_profile("broken")
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(_valid(name="something")))
    with pytest.raises(HardwareError, match="file is named 'other'"):
        load_profile("other")
    assert issubclass(HardwareError, ConfigError)


def test_unsupported_precision_names_supported():
    p = load_profile("apple-a17-pro-ane")
    with pytest.raises(HardwareError, match="supports fp16, int8"):
        p.peak("fp32")
