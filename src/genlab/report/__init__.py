"""The self-contained HTML run report: `write_report(run_dir)` writes it into the run, `render_report` returns it.

`page` assembles the page from the template page.html; `sections` draws each part of it.
"""
from genlab.report.page import read_config, render_report, write_report

__all__ = ["read_config", "render_report", "write_report"]
