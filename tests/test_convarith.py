"""Convolution arithmetic against torch: C @ x is conv2d, C^T @ y and the direct form are conv_transpose2d."""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from cli_helpers import fails
from PIL import Image

from genlab.cli import main
from genlab.convarith.arithmetic import (
    ConvArithError,
    conv_by_matrix,
    conv_matrix,
    conv_output_size,
    matching_output_padding,
    transposed_as_conv,
    transposed_by_matrix,
    transposed_output_size,
    transposed_relationship,
)
from genlab.convarith.explain import explain
from genlab.convarith.pictures import (
    conv_and_transposed_animations,
    conv_demo,
    conv_demo_figure,
    conv_frames,
    transposed_frames,
    write_animations,
    write_demo,
)
from genlab.errors import ConfigError
from genlab.images import MIN_FIGURE_WIDTH

N_CONFIGS = 600
TOLERANCE = 1e-5


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """max |ours - reference| / max |reference| (1 when the reference is all zeros)."""
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    return ((ours - reference).abs().max() / reference.abs().max().clamp_min(1e-300)).item()


def maybe_int(pair: tuple[int, int], rng: random.Random) -> int | tuple[int, int]:
    """Pass square sizes as plain ints half the time, so both spellings are exercised."""
    return pair[0] if pair[0] == pair[1] and rng.random() < 0.5 else pair


def random_config(rng: random.Random) -> dict:
    """A valid conv2d configuration drawn independently of genlab's own rules."""
    kernel, stride, dilation = [(rng.randint(1, 4), rng.randint(1, 4)), (rng.randint(1, 3), rng.randint(1, 3)),
                                (rng.randint(1, 2), rng.randint(1, 2))]
    if rng.random() < 0.3:  # square kernels and strides are the common case
        kernel, stride = (kernel[0], kernel[0]), (stride[0], stride[0])
    padding = (rng.randint(0, 2), rng.randint(0, 2))
    size = tuple(rng.randint(max(1, d * (k - 1) + 1 - 2 * p), 9) for k, p, d in zip(kernel, padding, dilation,
                                                                                      strict=True))
    return {"in_ch": rng.randint(1, 3), "out_ch": rng.randint(1, 3), "size": size, "kernel": kernel,
            "stride": stride, "padding": padding, "dilation": dilation}


@pytest.fixture(autouse=True)
def _one_thread():
    """Hundreds of tiny sparse products: extra threads only spin, and on a busy 2-core machine cost 10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def configs() -> list[dict]:
    rng = random.Random(7)
    return [random_config(rng) for _ in range(N_CONFIGS)]


def test_conv_matrix_is_conv2d_and_its_transpose_is_conv_transpose2d(configs) -> None:
    rng, worst = random.Random(11), 0.0
    for c in configs:
        weight = torch.randn(c["out_ch"], c["in_ch"], *c["kernel"], dtype=torch.float64)
        x = torch.randn(2, c["in_ch"], *c["size"], dtype=torch.float64)
        args = {name: maybe_int(c[name], rng) for name in ("stride", "padding", "dilation")}
        y = F.conv2d(x, weight, **args)
        assert conv_output_size(maybe_int(c["size"], rng), c["kernel"], args["stride"], args["padding"],
                                args["dilation"]) == tuple(y.shape[-2:]), c
        matrix = conv_matrix(weight, maybe_int(c["size"], rng), **args)
        assert matrix.is_sparse and matrix.shape == (y[0].numel(), x[0].numel())
        worst = max(worst, relative_error((matrix @ x.reshape(2, -1).T).T, y.reshape(2, -1)))
        worst = max(worst, relative_error(conv_by_matrix(x, weight, **args), y))
        a = matching_output_padding(c["size"], c["kernel"], args["stride"], args["padding"], args["dilation"])
        g = torch.randn_like(y)
        back = F.conv_transpose2d(g, weight, output_padding=a, **args)
        assert back.shape == x.shape, c  # the matching output padding returns the input size
        worst = max(worst, relative_error((matrix.t() @ g.reshape(2, -1).T).T, back.reshape(2, -1)))
        worst = max(worst, relative_error(transposed_by_matrix(g, weight, c["size"], **args), back))
    assert worst < TOLERANCE, worst


def random_transposed(rng: random.Random) -> dict:
    """A configuration torch's conv_transpose2d accepts, padding beyond d(k - 1) (cropping) included."""
    while True:
        c = random_config(rng)
        padding = tuple(rng.randint(0, 4) for _ in range(2))
        a = tuple(rng.randrange(max(s, d)) for s, d in zip(c["stride"], c["dilation"], strict=True))
        size = tuple(rng.randint(1, 6) for _ in range(2))
        sizes = [s * (i - 1) + d * (k - 1) - 2 * p + op + 1 for i, k, s, p, op, d in
                 zip(size, c["kernel"], c["stride"], padding, a, c["dilation"], strict=True)]
        if min(sizes) >= 1:
            return {**c, "size": size, "padding": padding, "output_padding": a}


def test_transposed_as_conv_is_conv_transpose2d() -> None:
    rng, worst = random.Random(13), 0.0
    for _ in range(N_CONFIGS):
        c = random_transposed(rng)
        weight = torch.randn(c["in_ch"], c["out_ch"], *c["kernel"], dtype=torch.float64)
        y = torch.randn(2, c["in_ch"], *c["size"], dtype=torch.float64)
        args = {name: maybe_int(c[name], rng) for name in ("stride", "padding", "output_padding", "dilation")}
        reference = F.conv_transpose2d(y, weight, **args)
        assert transposed_output_size(c["size"], c["kernel"], args["stride"], args["padding"],
                                      args["output_padding"], args["dilation"]) == tuple(reference.shape[-2:]), c
        worst = max(worst, relative_error(transposed_as_conv(y, weight, **args), reference))
    assert worst < TOLERANCE, worst


def test_int_sizes_give_ints_and_pairs_give_pairs() -> None:
    assert conv_output_size(4, 3) == 2 and conv_output_size(5, 3, 2, 1) == 3
    assert conv_output_size((5, 7), (3, 1), s=(2, 1)) == (2, 7)
    assert transposed_output_size(2, 3) == 4 and transposed_output_size(3, 3, 2, 1, 1) == 6
    assert transposed_output_size((3, 2), 3, 2, 1) == (5, 3)
    assert matching_output_padding(6, 3, 2, 1) == 1 and matching_output_padding(5, 3, 2, 1) == 0


def test_output_padding_rule_matches_torch() -> None:
    """We accept exactly the (stride, dilation, output padding) triples that torch accepts."""
    y, weight = torch.randn(1, 1, 3, 3), torch.randn(1, 1, 2, 2)
    for s in range(1, 4):
        for d in range(1, 4):
            for a in range(5):
                try:
                    F.conv_transpose2d(y, weight, stride=s, dilation=d, output_padding=a)
                    torch_ok = True
                except RuntimeError:
                    torch_ok = False
                try:
                    transposed_output_size(3, 2, s, 0, a, d)
                    ours_ok = True
                except ValueError:
                    ours_ok = False
                assert ours_ok == torch_ok, (s, d, a)


WEIGHT = torch.zeros(2, 3, 3, 3)


@pytest.mark.parametrize("call, rule", [
    (lambda: conv_output_size(4, 5), "kernel larger than the padded input"),
    (lambda: conv_output_size(4, 3, d=2), "kernel larger than the padded input"),
    (lambda: conv_output_size((8, 2), 3), "along the width: kernel larger than the padded input"),
    (lambda: conv_matrix(WEIGHT, 2), "kernel larger than the padded input"),
    (lambda: transposed_output_size(1, 1, p=1), "kernel larger than the padded input"),
    (lambda: transposed_output_size(3, 3, s=2, output_padding=2), "smaller than either stride or dilation"),
    (lambda: transposed_output_size(3, 3, output_padding=1), "smaller than either stride or dilation"),
    (lambda: transposed_output_size(3, 3, s=2, output_padding=-1), "output padding must be >= 0"),
    (lambda: conv_output_size(0, 3), "must be >= 1"),
    (lambda: conv_output_size(4, 0), "must be >= 1"),
    (lambda: conv_output_size(4, 3, s=0), "must be >= 1"),
    (lambda: conv_output_size(4, 3, d=-1), "must be >= 1"),
    (lambda: transposed_output_size(0, 3), "must be >= 1"),
    (lambda: conv_output_size(4, 3, p=-1), "padding must be >= 0"),
    (lambda: transposed_output_size(4, 3, p=(0, -2)), "padding must be >= 0"),
    (lambda: conv_output_size(4.0, 3), "must be an int or an (h, w) pair"),
    (lambda: conv_by_matrix(torch.zeros(1, 2, 5, 5), WEIGHT), "channel mismatch"),
    (lambda: transposed_as_conv(torch.zeros(1, 3, 5, 5), WEIGHT), "channel mismatch"),
    (lambda: transposed_by_matrix(torch.zeros(1, 2, 3, 3), WEIGHT, 6), "size mismatch"),
    (lambda: conv_matrix(torch.zeros(3, 3), 5), "4-D tensor"),
])
def test_invalid_configurations_name_the_rule(call, rule) -> None:
    with pytest.raises(ValueError, match=re.escape(rule)) as error:
        call()
    assert isinstance(error.value, ConfigError) and isinstance(error.value, ConvArithError)


def parse_table(lines: list[str], header_index: int, n_rows: int) -> list[list[str]]:
    """The cells of a printed table: the rows below the header, without their row labels."""
    return [line.split()[1:] for line in lines[header_index + 1:header_index + 1 + n_rows]]


def test_explain_shows_the_classic_4x16_matrix() -> None:
    lines = explain(4, 3, 1, 0).splitlines()
    header = next(n for n, line in enumerate(lines) if line.split()[:2] == ["x0", "x1"])
    assert lines[header].split() == [f"x{j}" for j in range(16)]
    assert [line.split()[0] for line in lines[header + 1:header + 5]] == ["y0", "y1", "y2", "y3"]
    expected = [["0"] * 16 for _ in range(4)]
    for r in range(4):
        out_row, out_col = divmod(r, 2)  # output r of the 2x2 output sees the 3x3 window at (out_row, out_col)
        for a in range(3):
            for b in range(3):
                expected[r][(out_row + a) * 4 + out_col + b] = f"w_{{{a},{b}}}"
    table = parse_table(lines, header, 4)
    assert table == expected
    assert table[0][:3] == ["w_{0,0}", "w_{0,1}", "w_{0,2}"] and table[0][4] == "w_{1,0}"
    transposed_header = next(n for n, line in enumerate(lines) if line.split() == ["y0", "y1", "y2", "y3"])
    assert parse_table(lines, transposed_header, 16) == [list(col) for col in zip(*expected, strict=True)]
    text = "\n".join(lines)
    assert "no zero padding, unit strides" in text and "o' = i' + (k - 1) - 2p = 2 + (3 - 1) - 2*0 = 4" in text


def test_explain_wide_matrices_become_sums() -> None:
    text = explain(5, 3, 2, 1)
    assert "y0 = w_{1,1} x0 + w_{1,2} x1 + w_{2,1} x5 + w_{2,2} x6" in text
    assert "zero padding, non-unit strides" in text and "-> 5x5" in text


@pytest.mark.parametrize("i, k, s, p, a, name, o", [
    (2, 3, 1, 0, 0, "no zero padding, unit strides", 4),
    (4, 4, 1, 2, 0, "zero padding, unit strides", 3),
    (5, 3, 1, 1, 0, "half padding", 5),
    (7, 3, 1, 2, 0, "full padding", 5),
    (2, 3, 2, 0, 0, "no zero padding, non-unit strides", 5),
    (3, 3, 2, 1, 0, "zero padding, non-unit strides", 5),
    (3, 3, 2, 1, 1, "zero padding, non-unit strides, with output padding", 6),
    (2, 3, 2, 0, 1, "no zero padding, non-unit strides, with output padding", 6),
])
def test_transposed_relationship_names_the_textbook_case(i, k, s, p, a, name, o) -> None:
    rel = transposed_relationship(i, k, s, p, a)
    assert (rel.name, rel.output_size) == (name, o)
    assert (rel.k_prime, rel.s_prime, rel.p_prime, rel.zeros_between, rel.extra_padding) == (k, 1, k - 1 - p, s - 1, a)
    assert rel.formula.endswith(f"= {o}")
    assert rel.direct_input_size - rel.k_prime + 1 == o  # the direct stride-1 convolution gives the same size


def test_relationship_formula_has_the_numbers_filled_in() -> None:
    assert transposed_relationship(3, 3, 2, 1, 1).formula == "o' = s(i' - 1) + k - 2p + a = 2(3 - 1) + 3 - 2*1 + 1 = 6"
    assert transposed_relationship(5, 3, 1, 2, d=2).name == "half padding, dilation 2"


def test_pictures_have_the_promised_shapes() -> None:
    image = torch.rand(3, 20, 24)
    grid = conv_demo(image, 3, 2, 1)
    assert grid.shape == (3, 2 * 20 + 3 * 2, 3 * 24 + 4 * 2) and 0 <= grid.min() and grid.max() <= 1
    frames = conv_frames(5, 3, 2, 1)
    assert len(frames) == 9 and all(f.shape == frames[0].shape and f.dtype == torch.uint8 for f in frames)
    assert not torch.equal(frames[0], frames[1])  # the kernel moved
    assert len(transposed_frames(3, 3, 2, 1)) == 25
    with pytest.raises(ValueError, match="animation too large"):
        conv_frames(30, 3)


@pytest.mark.parametrize("i, k, s, p, a, d, names", [
    (5, 3, 2, 1, None, 1, ("conv-i5-k3-s2-p1.gif", "transposed-i5-k3-s2-p1-a0.gif")),  # 5 -> 3 -> 5: a = 0
    (6, 3, 2, 1, None, 1, ("conv-i6-k3-s2-p1.gif", "transposed-i6-k3-s2-p1-a1.gif")),  # 6 -> 3 -> 5 + a: a = 1
    (4, 3, 2, 1, None, 2, ("conv-i4-k3-s2-p1-d2.gif", "transposed-i4-k3-s2-p1-d2-a1.gif")),
    (6, 3, 2, 1, 0, 1, ("conv-i6-k3-s2-p1.gif", "transposed-i6-k3-s2-p1-a0.gif")),  # a given: kept
])
def test_animations_are_named_by_their_numbers_and_default_to_the_matching_output_padding(i, k, s, p, a, d,
                                                                                           names) -> None:
    conv, transposed = conv_and_transposed_animations(i, k, s, p, a, d)
    assert (conv.name, transposed.name) == names
    o = conv_output_size(i, k, s, p, d)
    assert len(conv.frames) == o * o  # one frame per output cell
    returned = i if a is None else transposed_output_size(o, k, s, p, a, d)
    assert len(transposed.frames) == returned * returned


def test_write_animations_writes_both_gifs_or_neither(tmp_path) -> None:
    paths = write_animations(tmp_path / "gifs", 5, 3, 2, 1, frame_ms=40)
    assert [p.name for p in paths] == ["conv-i5-k3-s2-p1.gif", "transposed-i5-k3-s2-p1-a0.gif"]
    assert [Image.open(p).n_frames for p in paths] == [9, 25]
    with pytest.raises(ConvArithError, match="output padding"):
        write_animations(tmp_path / "bad", 5, 3, 2, 1, output_padding=2)
    assert not (tmp_path / "bad").exists()


def test_write_demo_crops_the_image_and_writes_the_labelled_figure(tmp_path) -> None:
    Image.new("RGB", (30, 20), (200, 30, 30)).save(tmp_path / "small.png")
    out = write_demo(tmp_path / "small.png", tmp_path / "demo.png", size=16, zoom=2)
    assert out == tmp_path / "demo.png"
    expected = conv_demo_figure(torch.tensor([200 / 255, 30 / 255, 30 / 255])[:, None, None].expand(3, 16, 16),
                                3, 2, 1, 2).image
    assert Image.open(out).size == (expected.shape[-1], expected.shape[-2])


# --- the command line ---------------------------------------------------------------------------------------------

@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_explain(in_tmp, capsys) -> None:
    assert main(["convarith", "explain", "-i", "4", "-k", "3", "-s", "1", "-p", "0"]) == 0
    out = capsys.readouterr().out
    assert "C is 4 x 16" in out and "y0 w_{0,0} w_{0,1} w_{0,2}" in " ".join(out.split())


def test_cli_demo_writes_a_png(in_tmp, capsys) -> None:
    Image.new("RGB", (30, 20), (200, 30, 30)).save(in_tmp / "small.png")
    assert main(["convarith", "demo", "small.png", "--size", "16", "--out", "demo.png"]) == 0
    assert Image.open(in_tmp / "demo.png").size[0] >= MIN_FIGURE_WIDTH
    fails(["convarith", "demo", "small.png", "--zoom", "0"], capsys, "--zoom must be at least 1")


def test_the_demo_figure_names_its_rows_columns_and_settings() -> None:
    figure = conv_demo_figure(torch.rand(3, 20, 24), 3, 2, 1, zoom=2)
    top, left, height, width = figure.box
    assert (height, width) == (2 * 40 + 3 * 2, 3 * 48 + 4 * 2)
    text = figure.image.max(0).values < 128  # dark pixels: drawn text
    assert text[:top].sum() > 100 and text[top:, :left].sum() > 40  # title and column heads; row names


def test_cli_animate_writes_nothing_when_the_transposed_case_is_invalid(in_tmp, capsys) -> None:
    fails(["convarith", "animate", "-i", "5", "-k", "3", "-s", "2", "--output-padding", "2", "--out-dir", "gifs"],
          capsys, "output padding")
    assert not (in_tmp / "gifs").exists() or not any((in_tmp / "gifs").iterdir())


def test_cli_animate_writes_two_gifs(in_tmp, capsys) -> None:
    assert main(["convarith", "animate", "-i", "4", "-k", "3", "-s", "2", "-p", "1", "--out-dir", "gifs"]) == 0
    gifs = sorted((in_tmp / "gifs").glob("*.gif"))
    assert [g.name.split("-")[0] for g in gifs] == ["conv", "transposed"]
    assert all(Image.open(g).n_frames > 1 for g in gifs)


@pytest.mark.parametrize("argv, needle", [
    (["explain", "-k", "0"], "must be >= 1"),
    (["explain", "-i", "4", "-k", "7"], "kernel larger than the padded input"),
    (["explain", "-s", "2", "--output-padding", "2"], "smaller than either stride or dilation"),
    (["explain", "-p", "-1"], "padding must be >= 0"),
    (["animate", "-s", "0"], "must be >= 1"),
    (["animate", "--frame-ms", "-5"], "--frame-ms must be at least 1"),
    (["demo", "missing.png"], "missing.png"),
    (["demo", "bad.png"], "bad.png"),
])
def test_cli_bad_numbers_end_in_one_line(argv, needle, in_tmp, capsys) -> None:
    (in_tmp / "bad.png").write_bytes(b"not a png")
    fails(["convarith", *argv], capsys, needle)
