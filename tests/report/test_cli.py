"""`edgeslim report DIR` and `es.report(DIR)`: rebuild the report; a bad folder exits 2 with the reason and writes
no report."""
from __future__ import annotations

import json
import shutil

import pytest

from edgeslim.cli import main

pytestmark = pytest.mark.slow   # the session's tiny run takes ~40 s to build once


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_rebuilds_the_report(report_runs, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(report_runs.plain, run_dir)
    for name in ("report.html", "report.md"):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "report-files", ignore_errors=True)
    code, out, err = run(capsys, "report", str(run_dir))
    assert code == 0, err
    assert f"html: {run_dir / 'report.html'}" in out and f"markdown: {run_dir / 'report.md'}" in out
    assert (run_dir / "report.html").stat().st_size > 10_000
    assert sorted(p.name for p in (run_dir / "report-files").iterdir()) == ["pareto.png", "roofline.png",
                                                                           "sensitivity.png"]
    code, out, _ = run(capsys, "report", str(run_dir), "--json")
    res = json.loads(out)
    assert code == 0 and res["html"] == str(run_dir / "report.html") and res["headline"] is None


def test_python_api_builds_the_same_report(report_runs, tmp_path):
    import edgeslim as es
    import edgeslim.report.build as build

    run_dir = tmp_path / "run"
    shutil.copytree(report_runs.full, run_dir)
    res = es.report(run_dir)
    assert res["md"] == str(run_dir / "report.md") and res["headline"]["target"] == "raspberry-pi-5"
    assert es.report.build_report is build.build_report      # the subpackage stays reachable through the function


def test_bad_folder_exits_2_and_writes_no_report(tmp_path, capsys):
    code, _, err = run(capsys, "report", str(tmp_path / "absent"))
    assert code == 2 and "run folder not found" in err and "edgeslim run" in err
    assert not (tmp_path / "absent").exists()
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    code, _, err = run(capsys, "report", str(folder))
    assert code == 2 and "has no lineage.json" in err and "edgeslim run recipe.yaml --out" in err
    assert list(folder.iterdir()) == []
