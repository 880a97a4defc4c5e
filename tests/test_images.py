"""Images: grid layout and padding, PIL conversion, atomic PNG/GIF writes, loading with crop/resize."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from genlab.errors import DataError
from genlab.images import load_image, make_grid, save_gif, save_png, to_pil


def test_grid_places_images_between_padding() -> None:
    images = torch.stack([torch.full((1, 2, 3), v) for v in (0.0, 0.25, 0.5)])
    grid = make_grid(images, nrow=2, padding=1, pad_value=1.0)
    assert grid.shape == (1, 2 * 3 + 1, 2 * 4 + 1)
    assert grid[0, 1, 1] == 0.0 and grid[0, 1, 5] == 0.25 and grid[0, 4, 1] == 0.5
    assert grid[0, 0].eq(1).all() and grid[0, 4, 5] == 1.0, "border and the empty cell are padding"
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        make_grid(torch.zeros(3, 4, 4))


def test_to_pil_modes_and_clamping() -> None:
    gray = to_pil(torch.tensor([[[-1.0, 0.5, 2.0]]]))
    assert gray.mode == "L" and gray.tobytes() == bytes([0, 128, 255])
    rgb = to_pil(torch.zeros(3, 2, 2, dtype=torch.uint8))
    assert rgb.mode == "RGB" and rgb.size == (2, 2)
    with pytest.raises(ValueError, match="C = 1"):
        to_pil(torch.zeros(2, 4, 4))


def test_png_round_trip_is_exact_for_uint8_levels(tmp_path) -> None:
    image = torch.randint(0, 256, (3, 5, 7), dtype=torch.uint8)
    path = save_png(image.float() / 255, tmp_path / "deep" / "er" / "x.png")
    assert torch.equal(load_image(path), image)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"], "no temporary file left"


def test_gif_loops_forever(tmp_path) -> None:
    frames = [torch.full((1, 6, 6), v) for v in (0.0, 0.5, 1.0)]
    path = save_gif(frames, tmp_path / "a.gif", duration_ms=40)
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.info["loop"] == 0 and gif.info["duration"] == 40
    with pytest.raises(ValueError, match="at least one frame"):
        save_gif([], tmp_path / "b.gif")


def test_load_image_channels_sizes_and_errors(tmp_path) -> None:
    Image.new("L", (10, 4), 77).save(tmp_path / "g.png")
    assert load_image(tmp_path / "g.png").shape == (1, 4, 10)
    rgb = load_image(tmp_path / "g.png", channels=3, size=(3, 5))
    assert rgb.shape == (3, 3, 5) and rgb.dtype == torch.uint8 and rgb.eq(77).all()
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(DataError, match="junk.jpg"):
        load_image(tmp_path / "junk.jpg")
