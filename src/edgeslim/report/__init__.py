"""The run report: one self-contained HTML file and a Markdown file (with PNGs beside it) built from a run folder.

    from edgeslim.report import build_report
    build_report("runs/demo")      # -> runs/demo/report.html, runs/demo/report.md, runs/demo/report-files/*.png

Every figure in the report is labelled measured (timed or scored in this run), predicted (roofline model and a
hardware profile) or analytic (counted from the model's shape). matplotlib and jinja2 (the `report` extra) load
only when a report is built.
"""
from __future__ import annotations

from .build import build_report, load_run

__all__ = ["build_report", "load_run"]
