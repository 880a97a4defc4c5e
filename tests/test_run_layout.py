"""The run directory has one home: each of its file and folder names is written in genlab/runs/layout.py alone,
and everything else (writers, readers, messages, help texts) refers to it through that module."""
from __future__ import annotations

import ast
from pathlib import Path

from genlab.runs import layout
from genlab.runs.layout import RunLayout, epoch_image_name, in_run, parse_epoch_image

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "genlab"
HOME = PACKAGE / "runs" / "layout.py"
FILE_NAMES = (layout.CONFIG, layout.WEIGHTS, layout.BEST_WEIGHTS, layout.EMA_WEIGHTS, layout.STATE, layout.METRICS,
              layout.EVALUATION, layout.REPORT)
FOLDER_NAMES = (layout.IMAGES, layout.TENSORBOARD)
PATH_CALLS = ("Path", "PurePath", "joinpath", "mkdir")


def spelled_out(code: str) -> list[tuple[int, str]]:
    """(line, name) for each run file name in a string of the code (docstrings and help texts included), and each
    run folder name used as a path: `x / "images"`, Path("tensorboard"), or written after RUN/ or OUT/."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [(node.lineno, name) for name in FILE_NAMES if name in node.value]
            found += [(node.lineno, name) for name in FOLDER_NAMES
                      if f"RUN/{name}" in node.value or f"OUT/{name}" in node.value]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            found += [(side.lineno, side.value) for side in (node.left, node.right)
                      if isinstance(side, ast.Constant) and side.value in FOLDER_NAMES]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in PATH_CALLS:
            found += [(arg.lineno, arg.value) for arg in node.args
                      if isinstance(arg, ast.Constant) and arg.value in FOLDER_NAMES]
    return sorted(found)


def test_each_run_file_name_is_written_in_one_module() -> None:
    found = [f"{path.relative_to(PACKAGE)}:{line} spells out {name!r}"
             for path in sorted(PACKAGE.rglob("*")) if path.suffix in (".py", ".html", ".css", ".js") and path != HOME
             for line, name in (spelled_out(path.read_text()) if path.suffix == ".py" else
                                [(0, n) for n in FILE_NAMES if n in path.read_text()])]
    assert not found, "use genlab.runs.layout instead:\n" + "\n".join(found)
    home = spelled_out(HOME.read_text())
    assert {name for _, name in home} >= set(FILE_NAMES), "layout.py is where the names are written"


def test_the_check_sees_names_in_messages_paths_and_help() -> None:
    code = ('"""Writes RUN/report.html."""\n'
            'path = run / "images" / "x.png"\n'
            'folder = Path("tensorboard")\n'
            'help_text = "events in OUT/tensorboard/"\n'
            'message = f"{run} has no state.pt"\n'
            'json_key = {"images": 3}\n'
            'package_file = "datasets/images/china.jpg"\n')
    assert spelled_out(code) == [(1, "report.html"), (2, "images"), (3, "tensorboard"), (4, "tensorboard"),
                                 (5, "state.pt")]


def test_the_layout_names_every_place_of_a_run(tmp_path) -> None:
    run = RunLayout(tmp_path)
    assert run.config == tmp_path / layout.CONFIG and run.weights_file(best=True) == tmp_path / layout.BEST_WEIGHTS
    assert run.explore.parent == run.images and run.staging(7).name == f"{layout.STAGING_PREFIX}000007"
    assert run.epoch_image("samples", 7) == run.images / epoch_image_name("samples", 7)
    assert in_run(layout.IMAGES, layout.EXPLORE) == f"RUN/{layout.IMAGES}/{layout.EXPLORE}"


def test_epoch_image_names_parse_back() -> None:
    assert parse_epoch_image(epoch_image_name("recon", 12)) == ("recon", 12)
    assert parse_epoch_image(epoch_image_name("samples", 1234)) == ("samples", 1234)
    assert parse_epoch_image("explore/manifold.png") is None and parse_epoch_image("samples.png") is None
