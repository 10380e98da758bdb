"""Hardware profiles as data: YAML files parsed into frozen dataclasses, every figure with its source.

Shipped profiles live in `edgeslim/hardware/profiles/*.yaml`. A user adds a device (and `edgeslim hw
calibrate` writes the `host` profile) by putting one YAML file in the user profiles folder:
`$EDGESLIM_HARDWARE_DIR`, default `<runs dir>/hardware/`. A user file overrides a shipped one of the same name.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import HardwareError
from ..registry import suggest

HARDWARE_DIR_ENV = "EDGESLIM_HARDWARE_DIR"
PRECISIONS = ("fp32", "fp16", "int8")
BUILTIN_DIR = Path(__file__).resolve().parent / "profiles"
KINDS = ("cpu", "gpu", "npu")
TOP_KEYS = ("name", "description", "kind", "peak_gops", "memory_bandwidth_gbs", "memory_gb", "power_active_w",
            "power_idle_w", "pj_per_mac", "pj_per_dram_byte", "efficiency", "calibration", "runtime")
RUNTIME_NAMES = ("onnxruntime", "litert", "executorch", "coreml")


@dataclass(frozen=True)
class Figure:
    """One hardware number with where it comes from; `estimate` marks figures derived rather than published."""

    value: float
    source: str
    estimate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source, "estimate": self.estimate}


@dataclass(frozen=True)
class Efficiency:
    """Achieved share of peak per op class, plus fixed overheads: the predictor's tunable part.

    `linear`: dense weight matmuls; `attention`: the two activation-activation matmuls (QK^T, PV);
    `elementwise`: softmax, GELU, layer norm, adds (share of peak vector throughput); `memory`: share of
    peak DRAM bandwidth; `op_overhead_us` per op launch; `fixed_overhead_us` once per inference.
    """

    linear: float = 0.5
    attention: float = 0.25
    elementwise: float = 0.1
    memory: float = 0.7
    op_overhead_us: float = 0.0
    fixed_overhead_us: float = 0.0
    source: str = "assumed defaults (estimate), not fitted on this device"
    fitted: bool = False

    def __post_init__(self) -> None:
        for f in ("linear", "attention", "elementwise", "memory"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or not 0 < v <= 1.5:
                raise HardwareError(f"efficiency.{f} must be a number in (0, 1.5], got {v!r}")
        for f in ("op_overhead_us", "fixed_overhead_us"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or v < 0:
                raise HardwareError(f"efficiency.{f} must be a number >= 0, got {v!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class HardwareProfile:
    """Peak compute per precision, memory, power and energy constants of one device (all with sources)."""

    name: str
    description: str
    kind: str
    peak_gops: dict[str, Figure]          # dense giga-operations/s per precision (1 MAC = 2 ops); missing = unsupported
    memory_bandwidth_gbs: Figure
    memory_gb: Figure
    power_active_w: Figure
    power_idle_w: Figure
    pj_per_mac: dict[str, Figure]         # compute energy per multiply-accumulate, per precision
    pj_per_dram_byte: Figure
    efficiency: Efficiency = field(default_factory=Efficiency)
    calibration: dict[str, Any] = field(default_factory=dict)  # host only: how and when it was measured
    path: str = ""
    runtime: str = "onnxruntime"          # the runtime a model for this device is exported to (`optimize` uses it)
    runtime_source: str = ""

    def peak(self, precision: str) -> float:
        """Peak giga-ops/s at `precision`, or HardwareError if the device does not run it."""
        check_precision(precision)
        if precision not in self.peak_gops:
            raise HardwareError(
                f"hardware {self.name!r} has no {precision} figure (it supports {', '.join(self.precisions)}); "
                f"pass --precision {self.precisions[0]}" if self.precisions else f"hardware {self.name!r} has no peaks")
        return self.peak_gops[precision].value

    @property
    def precisions(self) -> list[str]:
        return [p for p in PRECISIONS if p in self.peak_gops]

    def ridge_point(self, precision: str) -> float:
        """Arithmetic intensity (ops/byte) where the roofline turns from memory- to compute-bound."""
        return self.peak(precision) / self.memory_bandwidth_gbs.value

    def to_dict(self) -> dict[str, Any]:
        fig = lambda d: {k: v.to_dict() for k, v in d.items()}  # noqa: E731
        return {"name": self.name, "description": self.description, "kind": self.kind,
                "peak_gops": fig(self.peak_gops), "memory_bandwidth_gbs": self.memory_bandwidth_gbs.to_dict(),
                "memory_gb": self.memory_gb.to_dict(), "power_active_w": self.power_active_w.to_dict(),
                "power_idle_w": self.power_idle_w.to_dict(), "pj_per_mac": fig(self.pj_per_mac),
                "pj_per_dram_byte": self.pj_per_dram_byte.to_dict(), "efficiency": self.efficiency.to_dict(),
                "calibration": self.calibration, "runtime": {"value": self.runtime, "source": self.runtime_source}}

    def with_efficiency(self, eff: Efficiency) -> "HardwareProfile":
        return dataclasses.replace(self, efficiency=eff)


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise HardwareError(f"unknown precision {precision!r}.{suggest(precision, PRECISIONS)}")
    return precision


def user_dir() -> Path:
    """Where user profiles (and the calibrated `host`) live: $EDGESLIM_HARDWARE_DIR or <runs>/hardware."""
    env = os.environ.get(HARDWARE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    from ..settings import get_settings

    return get_settings().runs_dir / "hardware"


def _figure(raw: Any, where: str) -> Figure:
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"value", "source", "estimate"}
        if unknown:
            key = sorted(unknown, key=str)[0]
            raise HardwareError(f"{where}: unknown key {key!r}.{suggest(key, ['value', 'source', 'estimate'])}")
        if "value" not in raw:
            raise HardwareError(f"{where}: missing `value`")
        if not raw.get("source"):
            raise HardwareError(f"{where}: missing `source` (a datasheet, a published measurement, or 'estimate: why')")
        value, source, estimate = raw["value"], str(raw["source"]), raw.get("estimate", False)
    else:
        raise HardwareError(f"{where}: expected a mapping {{value: N, source: '...'}}, got {raw!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise HardwareError(f"{where}.value must be a positive number, got {value!r}")
    if not isinstance(estimate, bool):
        raise HardwareError(f"{where}.estimate must be true or false, got {estimate!r}")
    return Figure(float(value), source, estimate)


def _per_precision(raw: Any, where: str, required: bool = True) -> dict[str, Figure]:
    if not isinstance(raw, Mapping) or (required and not raw):
        raise HardwareError(f"{where}: expected a mapping of precision -> figure ({', '.join(PRECISIONS)})")
    out = {}
    for k, v in raw.items():
        if k not in PRECISIONS:
            raise HardwareError(f"{where}: unknown precision {k!r}.{suggest(str(k), PRECISIONS)}")
        if v is None:  # explicitly unsupported
            continue
        out[k] = _figure(v, f"{where}.{k}")
    return out


def parse_profile(data: Any, where: str = "profile") -> HardwareProfile:
    """Validate a profile mapping (parsed from YAML); an error names the bad field."""
    if not isinstance(data, Mapping):
        raise HardwareError(f"{where}: a hardware profile is a mapping with keys {', '.join(TOP_KEYS)}")
    for key in data:
        if key not in TOP_KEYS:
            raise HardwareError(f"{where}: unknown field {key!r}.{suggest(str(key), TOP_KEYS)}")
    required = ("name", "kind", "peak_gops", "memory_bandwidth_gbs", "memory_gb", "power_active_w", "power_idle_w",
                "pj_per_mac", "pj_per_dram_byte")
    for key in required:
        if key not in data:
            raise HardwareError(f"{where}: missing field {key!r}")
    name = data["name"]
    if not isinstance(name, str) or not name:
        raise HardwareError(f"{where}: field 'name' must be a non-empty string")
    if data["kind"] not in KINDS:
        raise HardwareError(f"{where}: field 'kind' must be one of {', '.join(KINDS)}, got {data['kind']!r}")
    eff_raw = data.get("efficiency") or {}
    if not isinstance(eff_raw, Mapping):
        raise HardwareError(f"{where}: field 'efficiency' must be a mapping")
    eff_fields = {f.name for f in dataclasses.fields(Efficiency)}
    for k in eff_raw:
        if k not in eff_fields:
            raise HardwareError(f"{where}: unknown field efficiency.{k}.{suggest(str(k), eff_fields)}")
    try:
        eff = Efficiency(**eff_raw)
    except HardwareError as exc:
        raise HardwareError(f"{where}: {exc}") from None
    peak = _per_precision(data["peak_gops"], f"{where}: field 'peak_gops'")
    if not peak:
        raise HardwareError(f"{where}: field 'peak_gops' needs at least one precision")
    calibration = data.get("calibration") or {}
    if not isinstance(calibration, Mapping):
        raise HardwareError(f"{where}: field 'calibration' must be a mapping")
    runtime, runtime_source = _runtime(data.get("runtime"), where)
    return HardwareProfile(
        runtime=runtime, runtime_source=runtime_source, name=name, description=str(data.get("description", "")), kind=data["kind"], peak_gops=peak,
        memory_bandwidth_gbs=_figure(data["memory_bandwidth_gbs"], f"{where}: field 'memory_bandwidth_gbs'"),
        memory_gb=_figure(data["memory_gb"], f"{where}: field 'memory_gb'"),
        power_active_w=_figure(data["power_active_w"], f"{where}: field 'power_active_w'"),
        power_idle_w=_figure(data["power_idle_w"], f"{where}: field 'power_idle_w'"),
        pj_per_mac=_per_precision(data["pj_per_mac"], f"{where}: field 'pj_per_mac'"),
        pj_per_dram_byte=_figure(data["pj_per_dram_byte"], f"{where}: field 'pj_per_dram_byte'"),
        efficiency=eff, calibration=dict(calibration), path=where,
    )


def _runtime(raw: Any, where: str) -> tuple[str, str]:
    """(runtime, source) from `runtime: onnxruntime` or `runtime: {value: litert, source: "..."}`."""
    if raw is None:
        return "onnxruntime", "default: ONNX Runtime (no runtime named in the profile)"
    value, source = (raw.get("value"), str(raw.get("source", ""))) if isinstance(raw, Mapping) else (raw, "")
    if value not in RUNTIME_NAMES:
        raise HardwareError(f"{where}: field 'runtime' must be one of {', '.join(RUNTIME_NAMES)}, got {value!r}")
    return str(value), source


def read_profile_file(path: str | Path) -> HardwareProfile:
    """Load and validate one profile YAML file."""
    from ..inputs import load_user_yaml

    path = Path(path)
    data = load_user_yaml(path, "hardware profile", HardwareError)
    prof = parse_profile(data, where=str(path))
    if prof.name != path.stem:
        raise HardwareError(f"{path}: field 'name' is {prof.name!r} but the file is named {path.stem!r}; "
                            "make them equal")
    return prof


def profile_files() -> dict[str, Path]:
    """name -> YAML file, shipped profiles first, then user profiles (which override)."""
    files = {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}
    ud = user_dir()
    if ud.is_dir():
        files.update({p.stem: p for p in sorted(ud.glob("*.yaml"))})
    return files


def list_profiles() -> list[str]:
    """Names of every known profile (`host` is listed even before it is calibrated)."""
    return sorted(set(profile_files()) | {"host"})


def load_profile(name: str | HardwareProfile) -> HardwareProfile:
    """A hardware profile by name; unknown names fail with a close-match hint."""
    if isinstance(name, HardwareProfile):
        return name
    files = profile_files()
    if name not in files:
        if name == "host":
            raise HardwareError(
                f"no `host` profile yet in {user_dir()}: run `edgeslim hw calibrate` on this machine first "
                "(it measures GEMM throughput and memory bandwidth and writes host.yaml)")
        raise HardwareError(f"unknown hardware {name!r}.{suggest(name, list_profiles())}")
    return read_profile_file(files[name])
