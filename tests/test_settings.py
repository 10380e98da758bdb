import pytest

from edgeslim.errors import DataError
from edgeslim.settings import DATA_ENV, DEFAULT_DATA_DIR, get_settings


def test_env_var_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    s = get_settings()
    assert s.data_dir == tmp_path and s.data_dir_source == DATA_ENV
    assert s.require_data_dir() == tmp_path


def test_fallback_is_shared_data_beside_repo(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    s = get_settings()
    assert s.data_dir == DEFAULT_DATA_DIR and s.data_dir.parts[-2:] == ("shared", "data")


def test_missing_data_dir_names_both_places(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nope"))
    with pytest.raises(DataError) as e:
        get_settings().require_data_dir()
    msg = str(e.value)
    assert str(tmp_path / "nope") in msg and DATA_ENV in msg and str(DEFAULT_DATA_DIR) in msg
