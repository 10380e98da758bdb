from dataclasses import dataclass

import pytest

from edgeslim.errors import ConfigError
from edgeslim.registry import Registry, build_config, suggest


@dataclass(frozen=True)
class Cfg:
    ratio: float
    score: str = "gradient"


def test_unknown_name_suggests_close_match():
    r = Registry("runtime")
    r.add("onnx", 1)
    r.add("litert", 2)
    with pytest.raises(ConfigError, match="Did you mean 'onnx'"):
        r.get("onnxx")
    assert r.get("litert") == 2
    with pytest.raises(ValueError, match="registered twice"):
        r.add("onnx", 3)


def test_suggest_lists_choices_when_nothing_is_close():
    assert "Choose one of: a, b" in suggest("zzzz", ["b", "a"])


def test_build_config_validates_keys():
    assert build_config(Cfg, {"ratio": 0.5}) == Cfg(0.5)
    with pytest.raises(ConfigError, match="unknown option 'scor'.*'score'"):
        build_config(Cfg, {"ratio": 0.5, "scor": "x"})
    with pytest.raises(ConfigError, match="missing required option.*ratio"):
        build_config(Cfg, {})
