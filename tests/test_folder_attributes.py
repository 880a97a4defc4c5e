"""folder:PATH with an attributes.csv beside the images: attributes follow the split, and every mistake in the file
is one line naming it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from genlab.data.catalog import load_dataset
from genlab.data.folder import split
from genlab.errors import DataError


def make_folder(root: Path, count: int = 12) -> list[str]:
    """count images in two class folders; returns their paths relative to root, sorted as the reader finds them."""
    names = []
    for i in range(count):
        name = f"{'cats' if i % 2 else 'dogs'}/{i:02d}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20), (i * 20, 0, 0)).save(root / name)
        names.append(name)
    return sorted(names)


def flags(i: int) -> tuple[bool, bool]:
    """Smiling on every third image, Glasses on the even ones."""
    return i % 3 == 0, i % 2 == 0


def write_csv(root: Path, names: list[str], yes: str = "1", no: str = "0", header: str = "file,Smiling,Glasses",
              extra: str = "") -> None:
    rows = [header] + [f"{name},{','.join(yes if f else no for f in flags(int(Path(name).stem)))}" for name in names]
    (root / "attributes.csv").write_text("\n".join(rows) + "\n" + extra)


@pytest.mark.parametrize("yes, no", [("1", "0"), ("1", "-1")])
def test_attributes_follow_the_images_into_both_splits(tmp_path, yes, no) -> None:
    names = make_folder(tmp_path)
    write_csv(tmp_path, names, yes, no)
    data = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert data.attribute_names == ("Smiling", "Glasses")
    train, test = split(sorted(tmp_path.rglob("*.png")), tmp_path)
    for group, attributes in ((train, data.train_attributes), (test, data.test_attributes)):
        assert attributes.dtype == torch.bool
        assert attributes.tolist() == [list(flags(int(f.stem))) for f in group]
    smiling_train, _ = data.attribute("Smiling")
    assert smiling_train.tolist() == [int(f.stem) % 3 == 0 for f in train]
    assert "2 attributes from attributes.csv" in data.note and "skipped" not in data.note


def test_without_a_csv_there_are_no_attributes_and_other_files_are_still_skipped(tmp_path) -> None:
    make_folder(tmp_path)
    (tmp_path / "cats" / "attributes.csv").write_text("file,Smiling\n")  # only the top folder's file counts
    data = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert data.attribute_names == () and data.train_attributes is None
    assert "1 other file skipped" in data.note and "cats/attributes.csv" in data.note


def test_excel_csv_with_a_byte_order_mark_and_spaces(tmp_path) -> None:
    names = make_folder(tmp_path, 4)
    rows = ["file, Smiling"] + [f"{name} , {1 if flags(int(Path(name).stem))[0] else 0}" for name in names]
    (tmp_path / "attributes.csv").write_text("\ufeff" + "\r\n".join(rows) + "\r\n\r\n", encoding="utf-8")
    assert load_dataset(f"folder:{tmp_path}", image_size=8).attribute_names == ("Smiling",)


def break_missing_rows(root: Path, names: list[str]) -> None:
    write_csv(root, names[2:])


CASES = {
    "missing rows": (break_missing_rows, ["has no row for 2 image(s) (cats/01.png, cats/03.png)"]),
    "not an image": (lambda root, names: write_csv(root, names, extra="notes.txt,1,0\ncats/99.png,0,0\n"),
                     ["rows for 2 file(s) that are not images of the folder (notes.txt, cats/99.png)"]),
    "twice": (lambda root, names: write_csv(root, names, extra=f"{names[0]},1,1\n"), ["lists cats/01.png twice"]),
    "bad value": (lambda root, names: write_csv(root, names, yes="yes"), ["holds the value 'yes'", "0 or -1"]),
    "short row": (lambda root, names: write_csv(root, names[1:], extra=f"{names[0]},1\n"),
                  ["row 7 (cats/01.png) holds 1 value for 2"]),
    "duplicate column": (lambda root, names: write_csv(root, names, header="file,Smiling,Smiling"),
                         ["names the column 'Smiling' twice"]),
    "unnamed column": (lambda root, names: write_csv(root, names, header="file,Smiling,"),
                       ["unnamed column (column 3)"]),
    "no file column": (lambda root, names: write_csv(root, names, header="image,Smiling,Glasses"),
                       ["starts with 'image,Smiling,Glasses'", "header row file,<Name1>"]),
    "empty": (lambda root, names: (root / "attributes.csv").write_text("\n"), ["attributes.csv is empty"]),
    "not text": (lambda root, names: (root / "attributes.csv").write_bytes(b"\xff\xfe\x00bad"), ["not UTF-8"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_csv_is_one_line_naming_it(case: str, tmp_path) -> None:
    breaks, needles = CASES[case]
    breaks(tmp_path, make_folder(tmp_path, 6))
    with pytest.raises(DataError) as caught:
        load_dataset(f"folder:{tmp_path}", image_size=8)
    message = str(caught.value)
    assert "\n" not in message and "attributes.csv" in message and "expected" in message, message
    for needle in needles:
        assert needle in message, message


def test_an_edited_csv_changes_the_fingerprint_resume_compares(tmp_path) -> None:
    from genlab.data.folder import fingerprint
    names = make_folder(tmp_path)
    bare = fingerprint(tmp_path)
    write_csv(tmp_path, names)
    with_csv = fingerprint(tmp_path)
    write_csv(tmp_path, names, header="file,Smiling,Eyeglasses")
    assert len({bare, with_csv, fingerprint(tmp_path)}) == 3
