"""celeba:PATH on a miniature of CelebA's layout: the partition, the attributes, the 148x148 centre crop, the cache
and its key, and one-line errors for every broken layout."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from cli_helpers import fails
from PIL import Image

from genlab.data import celeba
from genlab.data.catalog import load_dataset
from genlab.errors import DataError

PARTITION = [0, 0, 1, 2, 0, 0, 0, 1, 0, 2, 0, 0]  # 8 train, 2 valid (not used), 2 test
RED, GREEN, BLUE = (220, 30, 30), (30, 200, 30), (30, 30, 220)


def face(i: int) -> Image.Image:
    """178x218: blue outside the central 148x148 square, a green ring inside it, red within the central 128."""
    image = Image.new("RGB", (celeba.WIDTH, celeba.HEIGHT), BLUE)
    image.paste(GREEN, celeba.crop_box())
    image.paste(RED, celeba.crop_box(side=128))
    image.paste((i * 20, i * 20, i * 20), (85, 105, 93, 113))  # a small mark that differs per image
    return image


def save_face(path: Path, image: Image.Image) -> None:
    image.save(path, quality=100, subsampling=0)  # 4:4:4 at full quality: colours do not bleed across the edges


def attribute_rows(names: list[str]) -> list[str]:
    """Row i: attribute a is 1 when (i + a) % 3 == 0, else -1, separated by runs of spaces as in the real file."""
    return [f"{name} " + " ".join(f"{1 if (i + a) % 3 == 0 else -1:2d}" for a in range(40))
            for i, name in enumerate(names)]


def write_lists(root: Path, names: list[str], partition: list[int]) -> None:
    lines = [str(len(names)), " ".join(celeba.ATTRIBUTE_NAMES) + " ", *attribute_rows(names)]
    (root / celeba.ATTRIBUTE_FILE).write_text("\n".join(lines) + "\n")
    (root / celeba.PARTITION_FILE).write_text("".join(f"{n} {p}\n" for n, p in zip(names, partition)))


def make_celeba(root: Path, n: int = 12) -> Path:
    (root / celeba.IMAGE_FOLDER).mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        save_face(root / celeba.IMAGE_FOLDER / name, face(i))
    write_lists(root, names, PARTITION[:n])
    return root


@pytest.fixture
def mini(tmp_path, monkeypatch) -> Path:
    """A miniature CelebA; the cache goes to tmp through $GENLAB_DATA."""
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    return make_celeba(tmp_path / "celeba")


def expected_flags(rows: list[int]) -> torch.Tensor:
    return torch.tensor([[(i + a) % 3 == 0 for a in range(40)] for i in rows])


def test_the_official_partition_and_attributes(mini) -> None:
    data = load_dataset(f"celeba:{mini}")
    assert data.name == "celeba" and data.classes == ("face",) and data.image_shape == (3, 64, 64)
    assert data.train_x.dtype == torch.uint8 and (len(data.train_x), len(data.test_x)) == (8, 2)
    assert data.train_y.tolist() == [0] * 8 and data.test_y.tolist() == [0] * 2
    assert data.attribute_names == celeba.ATTRIBUTE_NAMES
    train_rows = [i for i, p in enumerate(PARTITION) if p == 0]
    test_rows = [i for i, p in enumerate(PARTITION) if p == 2]
    assert torch.equal(data.train_attributes, expected_flags(train_rows))
    assert torch.equal(data.test_attributes, expected_flags(test_rows))
    assert data.attribute("Smiling")[1].tolist() == [(3 + 31) % 3 == 0, (9 + 31) % 3 == 0]
    marks = data.test_x[:, 0, 32, 32].tolist()  # the per-image mark: the test images are rows 3 and 9, in order
    assert abs(marks[0] - 60) < 12 and abs(marks[1] - 180) < 12, marks
    assert "train 8 / test 2; the valid partition's 2 images are not used" in data.note
    assert "148x148" in data.note and "148x148" in data.source


def test_the_crop_is_the_central_148_square(mini) -> None:
    image = load_dataset(f"celeba:{mini}").train_x[0].int()
    edge = torch.cat([image[:, 0], image[:, -1], image[:, :, 0], image[:, :, -1]], dim=1)  # (3, 256)
    assert (edge[1] > 150).all() and (edge[2] < 50).all(), "the border is the green ring, and no blue is left"
    assert (image[0, 20, 20] > 180) and (image[1, 20, 20] < 60), "inside the ring: red"
    assert abs(image[:, 0, 32] - torch.tensor(GREEN)).max() < 25


def test_the_pixels_are_torchvisions_center_crop_148_then_resize_64(mini) -> None:
    from torchvision import transforms  # a test dependency: PyTorch-VAE's CelebA transform, for reference

    reference = transforms.Compose([transforms.CenterCrop(148), transforms.Resize(64), transforms.PILToTensor()])
    with Image.open(mini / celeba.IMAGE_FOLDER / "000001.jpg") as image:
        assert torch.equal(load_dataset(f"celeba:{mini}").train_x[0], reference(image.convert("RGB")))


def test_the_second_load_reads_the_cache(mini, monkeypatch) -> None:
    first = load_dataset(f"celeba:{mini}")
    assert "decoded into the cache" in first.note
    caches = list((mini.parent / "data" / "celeba-cache").glob("celeba-*.npy"))
    assert len(caches) == 1

    def no_decoding(path, size):
        raise AssertionError(f"{path} decoded again")

    monkeypatch.setattr(celeba, "decode", no_decoding)
    second = load_dataset(f"celeba:{mini}")
    assert "pixels from the cache" in second.note
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_x, second.test_x)


def test_a_changed_folder_is_decoded_again_and_replaces_its_cache(mini, monkeypatch) -> None:
    first = load_dataset(f"celeba:{mini}")
    image = mini / celeba.IMAGE_FOLDER / "000001.jpg"
    save_face(image, Image.new("RGB", (celeba.WIDTH, celeba.HEIGHT), (250, 250, 250)))
    os.utime(image, ns=(1, 1))  # a new mtime whatever the file system's clock resolution
    second = load_dataset(f"celeba:{mini}")
    assert "decoded into the cache" in second.note and not torch.equal(first.train_x[0], second.train_x[0])
    assert second.train_x[0].min() > 230 and torch.equal(first.train_x[1:], second.train_x[1:])
    caches = list((mini.parent / "data" / "celeba-cache").glob("celeba-*.npy"))
    assert len(caches) == 1, "the old cache is gone"

    names = [f"{i + 1:06d}.jpg" for i in range(13)]  # an image added, with its rows
    save_face(mini / celeba.IMAGE_FOLDER / names[-1], face(12))
    write_lists(mini, names, [*PARTITION, 2])
    third = load_dataset(f"celeba:{mini}")
    assert "decoded into the cache" in third.note and len(third.test_x) == 3


def test_a_damaged_cache_is_decoded_again(mini) -> None:
    load_dataset(f"celeba:{mini}")
    (cache,) = (mini.parent / "data" / "celeba-cache").glob("celeba-*.npy")
    cache.write_bytes(b"\x93NUMPY broken")
    assert "decoded into the cache" in load_dataset(f"celeba:{mini}").note


def test_data_dir_holds_the_cache_and_channels_1_is_refused(mini, tmp_path) -> None:
    (tmp_path / "elsewhere").mkdir()
    data = load_dataset(f"celeba:{mini}", data_dir=tmp_path / "elsewhere", image_size=32)
    assert data.image_shape == (3, 32, 32)
    assert list((tmp_path / "elsewhere" / "celeba-cache").glob("celeba-*.npy"))
    with pytest.raises(DataError, match="colour images"):
        load_dataset(f"celeba:{mini}", channels=1)


def rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


def remove(path: Path) -> None:
    path.unlink()


BROKEN = {
    "no image folder": (lambda r: os.rename(r / "img_align_celeba", r / "images"),
                        ["img_align_celeba", "missing or not a folder"]),
    "no attribute file": (lambda r: remove(r / "list_attr_celeba.txt"), ["list_attr_celeba.txt is missing"]),
    "no partition file": (lambda r: remove(r / "list_eval_partition.txt"), ["list_eval_partition.txt is missing"]),
    "header count": (lambda r: rewrite(r / "list_attr_celeba.txt", "12\n", "13\n"),
                     ["holds 12 image rows but its line 1 says 13"]),
    "other columns": (lambda r: rewrite(r / "list_attr_celeba.txt", "Young", "Young Cute"),
                      ["has other columns (Cute)", "40 CelebA attribute names"]),
    "renamed column": (lambda r: rewrite(r / "list_attr_celeba.txt", "Smiling", "Smile"), ["other columns (Smile)"]),
    "bad value": (lambda r: rewrite(r / "list_attr_celeba.txt", "000002.jpg -1", "000002.jpg  0"),
                  ["row 2 (000002.jpg) holds the value '0'", "1 or -1"]),
    "short row": (lambda r: rewrite(r / "list_attr_celeba.txt", "000003.jpg -1", "000003.jpg"),
                  ["row 3 (000003.jpg) holds 39 values"]),
    "unknown partition file": (lambda r: rewrite(r / "list_eval_partition.txt", "000004.jpg", "999999.jpg"),
                               ["list_eval_partition.txt names 1 file(s) not in list_attr_celeba.txt (999999.jpg)"]),
    "partition value": (lambda r: rewrite(r / "list_eval_partition.txt", "000004.jpg 2", "000004.jpg 3"),
                        ["row 4 reads '000004.jpg 3'", "0 (train)"]),
    "missing image": (lambda r: remove(r / "img_align_celeba" / "000005.jpg"),
                      ["000005.jpg is listed in list_attr_celeba.txt but missing"]),
    "unlisted image": (lambda r: save_face(r / "img_align_celeba" / "000099.jpg", face(0)),
                       ["holds 13 JPEGs but list_attr_celeba.txt lists 12", "000099.jpg"]),
    "unreadable image": (lambda r: (r / "img_align_celeba" / "000006.jpg").write_bytes(b"not a jpeg"),
                         ["000006.jpg cannot be read", "a JPEG image"]),
    "wrong size": (lambda r: save_face(r / "img_align_celeba" / "000007.jpg", Image.new("RGB", (64, 64))),
                   ["000007.jpg is 64x64 pixels", "178x218"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_layout_is_one_line_naming_the_file(case: str, mini) -> None:
    breaks, needles = BROKEN[case]
    breaks(mini)
    with pytest.raises(DataError) as caught:
        load_dataset(f"celeba:{mini}")
    message = str(caught.value)
    assert "\n" not in message and "expected" in message, message
    for needle in needles:
        assert needle in message, message


def test_no_path_or_not_a_folder(tmp_path) -> None:
    with pytest.raises(DataError, match="celeba: needs the folder holding img_align_celeba"):
        load_dataset("celeba:")
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset(f"celeba:{tmp_path / 'nope'}")


def test_the_command_line_says_what_is_wrong_in_one_line(mini, capsys, monkeypatch) -> None:
    remove(mini / celeba.PARTITION_FILE)
    fails(["train", "conv-vae", "--data", f"celeba:{mini}", "--epochs", "1", "--out", str(mini.parent / "run")],
          capsys, "list_eval_partition.txt is missing")


def test_a_run_on_celeba_is_named_for_it_and_keeps_its_path_absolute(mini) -> None:
    from genlab.runs.record import data_record
    from genlab.training.plan import plan_command
    plan, out = plan_command("conv-vae", {}, {"spec": f"celeba:{mini}", "data_dir": None, "image_size": None,
                                              "channels": None}, {"epochs": 1}, None, None, False)
    assert str(out) == str(Path("runs") / "conv-vae-celeba")
    assert plan.data["spec"] == f"celeba:{mini.resolve()}"
    record = data_record(load_dataset(plan.data["spec"]), plan.data["spec"])
    assert record.spec == f"celeba:{mini.resolve()}" and record.image_shape == (3, 64, 64)


def test_an_empty_celeba_path_on_the_command_line_says_what_to_give(capsys) -> None:
    fails(["train", "conv-vae", "--data", "celeba:", "--epochs", "1"], capsys,
          "--data celeba: needs the CelebA folder holding img_align_celeba/")
