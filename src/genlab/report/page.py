"""The HTML run report as one page: the sections of genlab.report.sections put into the template page.html (the
page's skeleton and its CSS, shipped with the package), written into the run directory.

The page is self-contained (the CSS inline, every image a base64 data: URI) so it can be mailed or archived alone.
"""
from __future__ import annotations

import html
import os
import string
from importlib import resources
from pathlib import Path

from genlab.files import atomic_write_bytes, remove_leftovers_of
from genlab.report.sections import (
    config_html,
    curves_html,
    dataset_name,
    evaluation_html,
    explorer_html,
    figures_html,
    find_images,
    gan_html,
    header_html,
    recon_html,
    reproduce_html,
    samples_html,
    summary_html,
)
from genlab.runs.guard import one_writer
from genlab.runs.layout import RunLayout
from genlab.runs.record import read_metrics, read_record

TEMPLATE = "page.html"  # beside this module; declared in pyproject.toml's package-data so installs ship it


def read_config(run_dir: str | os.PathLike) -> dict:
    """The run's checked record as a dict; RunError if the directory is not a usable genlab run."""
    return read_record(run_dir).to_dict()


def page_template() -> string.Template:
    """The page's skeleton and CSS, with the placeholders $title (plain text) and $body (HTML)."""
    return string.Template(resources.files("genlab.report").joinpath(TEMPLATE).read_text(encoding="utf-8"))


def fill_page(title: str, body: str) -> str:
    """The whole page: the title, escaped here, and the body's HTML put into the template."""
    return page_template().substitute(title=html.escape(title), body=body)


def render_report(run_dir: str | os.PathLike) -> str:
    """The report page for a run directory as one self-contained HTML string."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    config = record.to_dict()
    metrics = read_metrics(run_dir)
    images = find_images(run_dir)
    body = "".join([
        header_html(run_dir, config), summary_html(metrics, config), curves_html(metrics), gan_html(metrics),
        evaluation_html(run_dir), samples_html(images), recon_html(images), figures_html(run_dir, images),
        explorer_html(run_dir, config), reproduce_html(config), config_html(record),
    ])
    return fill_page(f"{config.get('model', 'run')} · {dataset_name(config)} · {run_dir.name}", body)


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write the run's report page and return its path; self-contained, every image a base64 data: URI.
    Refused while another process writes the run (genlab.runs.guard)."""
    with one_writer(run_dir):
        return write_page(run_dir)


def write_page(run_dir: str | os.PathLike) -> Path:
    """write_report for a process that holds the run's writer lock already (training, evaluation)."""
    run_dir = Path(run_dir)
    page = render_report(run_dir)
    path = RunLayout(run_dir).report
    remove_leftovers_of(path)  # what a killed write of the page left: ours to clean, as the run's writer
    # readers never see half a page; a failed write is one line (files.WriteError); a path with bytes that are not
    # UTF-8 (a run made elsewhere) shows them escaped rather than failing
    atomic_write_bytes(path, page.encode("utf-8", "backslashreplace"))
    return path
