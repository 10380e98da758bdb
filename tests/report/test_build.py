"""The report built from real tiny run folders: headline numbers equal the run's JSON, every step and candidate is
there, a plain run and a one-step run still give a report, bad input fails clearly and writes nothing."""
from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from edgeslim.errors import DataError
from edgeslim.report import build_report

pytestmark = pytest.mark.slow   # the session's tiny run takes ~40 s to build once


class Tables(HTMLParser):
    """Every <table id=...> as rows of (row attributes, [(cell attributes, cell text)]); <img> sources."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, list[tuple[dict, list[tuple[dict, str]]]]] = {}
        self.images: list[str] = []
        self.ids: set[str] = set()
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append((a, []))
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
            self.tables[self._table][-1][1].append((a, ""))
        elif tag == "img":
            self.images.append(a.get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            row = self.tables[self._table][-1][1]
            row[-1] = (row[-1][0], re.sub(r"\s+", " ", "".join(self._cell)).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def body_rows(tables: Tables, table: str) -> list[list[str]]:
    return [[text for _, text in cells] for _, cells in tables.tables[table][1:]]


# The formats the templates promise, written out again here so a template that shows another number fails.
def size(n: int) -> str:
    return f"{n / 1e3:.1f} kB" if n < 1e6 else f"{n / 1e6:.2f} MB"


def ms(v: float) -> str:
    return (f"{v:.3f}" if abs(v) < 1 else f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}") + " ms"


def mj(v: float) -> str:
    return (f"{v:.3f}" if abs(v) < 1 else f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}") + " mJ"


def times(v: float, what: str) -> str:
    return f"{v:.2f}× {what}" if v >= 1 else f"{v:.2f}× (not {what})"


def validate_metrics(run: Path) -> dict:
    folder = next(run.glob("*-validate"))
    return json.loads((folder / "metrics.json").read_text())["metrics"]["validate"]


@pytest.fixture(scope="module")
def full_report(report_runs):
    result = build_report(report_runs.full)
    html = Path(result["html"]).read_text()
    return result, html, Tables(html)


def test_headline_numbers_equal_the_validate_metrics(full_report, report_runs):
    result, html, tables = full_report
    v = validate_metrics(report_runs.full)
    f, t, lat, r = v["final"], v["teacher"], v["latency"], v["ratios"]
    m = lat["models"]
    pred = v["predicted"][v["target"]]
    drop = r["drop_points"]
    expected = {
        "size": (size(t["size_bytes"]), size(f["size_bytes"]), times(r["size"], "smaller")),
        "params": (f"{t['params']:,}", f"{f['params']:,}", times(r["params"], "fewer")),
        "metric": (f"{t['metric_batch1']:.4f}", f"{f['metric_batch1']:.4f}",
                   f"{drop:.2f} points lower" if drop >= 0 else f"{-drop:.2f} points higher"),
        "latency_pytorch": (ms(m["teacher-pytorch"]["p50_ms"]), ms(m["final"]["p50_ms"]),
                            times(lat["speedup"]["vs_teacher_pytorch"], "faster")),
        "latency_onnxruntime": (ms(m["teacher-onnxruntime"]["p50_ms"]), ms(m["final"]["p50_ms"]),
                                times(lat["speedup"]["vs_teacher_onnxruntime"], "faster")),
        "device_latency": (ms(pred["teacher_latency_ms"]), ms(pred["latency_ms"]), "—"),
        "device_energy": (mj(pred["teacher_energy_mj"]) if pred.get("teacher_energy_mj") is not None else "—",
                          mj(pred["energy_mj"]), "—"),
        "deadline": ("—", f"{v['deadline']['verdict']}: {ms(v['deadline']['latency_ms'])}"
                     + (" ({}–{})".format(*map(ms, v["deadline"]["latency_range_ms"]))
                        if v["deadline"].get("latency_range_ms") else ""), "—"),
    }
    if v.get("predictor_error"):
        expected["predictor_error"] = ("—", f"{v['predictor_error']['error_pct']:+.1f}%", "—")
    shown = {}
    for attrs, cells in tables.tables["headline"][1:]:
        by_col = {a.get("data-col"): text for a, text in cells}
        shown[attrs["data-key"]] = (by_col["teacher"], by_col["final"], by_col["change"])
    assert shown == expected
    # the numbers exist (a missing key would show "—" on both sides and still compare equal)
    assert all(re.search(r"\d", cell) for key in ("size", "params", "metric", "latency_pytorch", "device_latency")
               for cell in expected[key][:2 if key == "device_latency" else 3])
    basis = {attrs["data-key"]: cells[-1][1] for attrs, cells in tables.tables["headline"][1:]}
    assert basis["size"] == basis["latency_pytorch"] == "measured" and basis["device_latency"] == "predicted"
    assert result["headline"]["rows"][0]["final"] == expected["size"][1]
    verdict = v["deadline"]["verdict"]
    assert f"Real-time verdict: {verdict} the {ms(v['deadline']['deadline_ms'])} deadline" in html
    if v["deadline"].get("trust_label"):   # a predicted verdict names its trust band (issue #20)
        assert f"trust: {v['deadline']['trust_label']}" in html
    assert v["selection_note"] in html


def test_every_step_and_candidate_is_listed(full_report, report_runs):
    tables = full_report[2]
    lineage = json.loads((report_runs.full / "lineage.json").read_text())
    rows = body_rows(tables, "steps-table")
    assert [r[1].split(" (")[0] for r in rows] == [rec["step"] for rec in lineage]
    assert [r[2] for r in rows] == [rec["hash"][:8] for rec in lineage]
    assert [r[-1] for r in rows] == ["—"] + ["yes" if rec["cached"] else "no" for rec in lineage[1:]]
    assert [r[-2] for r in rows[1:]] == [f"{rec['seconds']:.1f}" for rec in lineage[1:]]
    # the prune row's parameter count is the pruned model's, as the prune step recorded it
    prune = next(i for i, rec in enumerate(lineage) if rec["step"] == "prune")
    assert rows[prune][3] == f"{lineage[prune]['metrics']['prune']['after']['params']:,}"

    q = json.loads((report_runs.full / "05-quantize" / "quantize_report.json").read_text())["search"]
    cands = body_rows(tables, "candidates")
    names = [r[1] for r in cands]
    assert names == ["source", "03-prune"] + [f"05-quantize: {c['scheme']}" for c in q["candidates"]]
    marks = {r[1]: r[-1] for r in cands}
    assert marks[f"05-quantize: {q['chosen']}"] == "chosen, final"
    assert sum(bool(m) for m in marks.values()) == 1
    for c in q["candidates"]:
        row = next(r for r in cands if r[1] == f"05-quantize: {c['scheme']}")
        assert row[4].startswith(ms(c["latency_p50_ms"]) + " measured")
        assert row[6].startswith(size(c["size_bytes"]))
    lineage_rows = body_rows(tables, "lineage-table")
    assert [r[0] for r in lineage_rows] == ["source", "03-prune", "05-quantize"]
    assert lineage_rows[2][5] == f"03-prune {lineage[prune]['hash'][:8]}"


def test_figures_are_inline_pngs_and_the_markdown_links_files(full_report, report_runs):
    result, html, tables = full_report
    assert len(tables.images) == 3 and all(s.startswith("data:image/png;base64,") for s in tables.images)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html) and "@import" not in html
    assert "url(" not in html
    md = Path(result["md"]).read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links == ["report-files/pareto.png", "report-files/roofline.png", "report-files/sensitivity.png"]
    for link in links:
        assert (report_runs.full / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(Path(p).name for p in result["files"]) == sorted(Path(p).name for p in links)
    for label in ("measured", "predicted"):
        assert label in md
    assert {"pareto", "roofline", "sensitivity", "lineage", "environment", "recipe", "splits"} <= tables.ids


def test_missed_goal_is_marked(full_report, report_runs):
    _, html, tables = full_report
    goal = json.loads((report_runs.full / "optimize.json").read_text())
    miss = goal["outcome"]["failed"][0]
    assert 'class="banner bad" id="optimize-status">GOAL MISSED' in html
    assert body_rows(tables, "optimize-failed")[0][:5] == [miss["constraint"], str(miss["limit"]), str(miss["value"]),
                                                           str(miss["by"]), miss["unit"]]


def test_environment_and_recipe(full_report, report_runs):
    _, html, tables = full_report
    import numpy

    versions = dict(body_rows(tables, "versions"))
    assert versions["numpy"] == numpy.__version__ and "onnxruntime" in versions and "torch" in versions
    assert "Seed: 0." in html and (report_runs.full / "recipe.yaml").read_text().splitlines()[0] in html


def test_a_plain_run_has_no_headline_but_everything_else(report_runs):
    result = build_report(report_runs.plain)
    tables = Tables(Path(result["html"]).read_text())
    assert result["headline"] is None and "headline" not in tables.tables and "optimize" not in tables.ids
    lineage = json.loads((report_runs.plain / "lineage.json").read_text())
    assert len(body_rows(tables, "steps-table")) == len(lineage)
    assert len(tables.images) == 3
    html = Path(result["html"]).read_text()
    assert "rebuilt from lineage.json" in html and "Seed: not recorded" in html


def test_a_run_that_stopped_after_one_step_still_reports(report_runs):
    result = build_report(report_runs.minimal)
    tables = Tables(Path(result["html"]).read_text())
    assert [r[1] for r in body_rows(tables, "steps-table")] == ["source (input)", "eval (analysis)"]
    assert any("No target hardware" in n for n in result["notes"])
    assert len(tables.images) == 1 and "roofline" not in tables.ids   # the Pareto plot of the one model only
    assert [Path(p).name for p in result["files"]] == ["pareto.png"]


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "absent", "run folder not found"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "has no lineage.json"),
    (lambda d: (d / "bad").mkdir() or (d / "bad" / "lineage.json").write_text("{not json") and d / "bad",
     "cannot read lineage"),
    (lambda d: (d / "dict").mkdir() or (d / "dict" / "lineage.json").write_text("{}") and d / "dict",
     "not a list of step records"),
])
def test_bad_input_names_the_problem_and_writes_nothing(tmp_path, make, message):
    run = make(tmp_path)
    with pytest.raises(DataError, match=message) as exc:
        build_report(run)
    assert "edgeslim run" in str(exc.value) or "Re-run the recipe" in str(exc.value)
    assert not list(tmp_path.rglob("report*"))


def test_a_failure_while_building_leaves_the_previous_report_whole(report_runs, tmp_path, monkeypatch):
    from edgeslim.report import plots

    run = tmp_path / "run"
    shutil.copytree(report_runs.plain, run)
    build_report(run)
    before = {p.name: p.read_bytes() for p in [run / "report.html", run / "report.md", *(run / "report-files").iterdir()]}

    def broken(*args, **kwargs):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(plots, "sensitivity_png", broken)
    with pytest.raises(RuntimeError, match="plot failed"):
        build_report(run)
    after = {p.name: p.read_bytes() for p in [run / "report.html", run / "report.md", *(run / "report-files").iterdir()]}
    assert after == before
    assert not [p for p in run.iterdir() if p.name.startswith(".")]     # no temp file or folder left behind


def test_plan_candidates_are_listed_with_the_chosen_one_marked(full_report, report_runs):
    _, html, tables = full_report
    plan = json.loads((report_runs.full / "optimize.json").read_text())["plan"]
    rows = body_rows(tables, "optimize-candidates")
    assert len(rows) == len({(c["layers"], c["ffn"], c["heads"]) for c in plan["candidates"]})
    marked = [r for r in rows if r[-1] == "chosen"]
    c = plan["chosen"]
    assert len(marked) == 1 and marked[0][:3] == [str(c["layers"]), str(c["ffn"]), str(c["heads"])]
