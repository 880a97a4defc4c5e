"""CIFAR-10 from its binary layout, on miniatures written here: RGB planes, labels, class names, the search,
safe extraction of the archive, one-line errors, and the DCGAN and conv VAE training on it at 32x32x3.

A miniature holds N records per batch file instead of 10000. The reader checks the real count (10000) unless it is
given another (`records=`); the tests that go through `load_dataset` or the command line lower the module's
RECORDS_PER_FILE, and one test shows a miniature refused under the real count.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import fails

from genlab.cli import main
from genlab.data import catalog, cifar, load_dataset
from genlab.errors import DataError
from genlab.runs.store import load_run

NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCHES = (*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin")
N = 6  # records per batch file of the miniature


def record(label: int, red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> bytes:
    """One record as the format describes it: a label byte, then the red, green and blue 32x32 planes, row-major."""
    return bytes([label]) + b"".join(np.asarray(p, np.uint8).reshape(32, 32).tobytes() for p in (red, green, blue))


def planes_for(n: int, seed: int) -> np.ndarray:
    """n random images as (n, 3, 32, 32) planes."""
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


def miniature(root: Path, n: int = N, meta: str | None = None) -> Path:
    """root/cifar-10-batches-bin with n records per batch file (label k % 10 for record k, seeded pixels) and
    the class list; the first test record is red with one green pixel at row 1, column 2. Returns the folder."""
    folder = root / cifar.FOLDER
    folder.mkdir(parents=True)
    for index, name in enumerate(BATCHES):
        images = planes_for(n, index)
        if name == "test_batch.bin":
            images[0] = 0
            images[0, 0] = 255
            images[0, :, 1, 2] = (0, 255, 0)
        (folder / name).write_bytes(b"".join(record(k % 10, *images[k]) for k in range(n)))
    (folder / cifar.META_FILE).write_text(meta if meta is not None else "\n".join(NAMES) + "\n\n")
    return folder


def tar_of(path: Path, members: list[tuple[str, bytes | None, str]]) -> Path:
    """A tar.gz of (name, content, kind) members: kind 'file', 'dir' or 'symlink' (content is the link target)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, content, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, content.decode()
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def archive_of(folder: Path, path: Path, extra: list[tuple[str, bytes | None, str]] = ()) -> Path:
    """The miniature packed as the real archive is: the folder, its files and readme.html, then `extra`."""
    members = [(cifar.FOLDER, None, "dir"), (f"{cifar.FOLDER}/readme.html", b"<html></html>", "file")]
    members += [(f"{cifar.FOLDER}/{name}", (folder / name).read_bytes(), "file") for name in cifar.FILES]
    return tar_of(path, members + list(extra))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """HOME and GENLAB_DATA in tmp_path, miniature counts, and a download that fails loudly if reached."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    monkeypatch.setattr(cifar, "RECORDS_PER_FILE", N)

    def no_network(url, dest, md5, timeout=30):
        raise DataError(f"could not download {url} (no network in tests)")

    monkeypatch.setattr(cifar.idx, "download", no_network)
    return tmp_path


def test_records_read_as_rgb_planes_row_major(tmp_path) -> None:
    folder = miniature(tmp_path)
    data = cifar.read_folder(folder, records=N)
    assert data.name == "cifar10" and data.classes == NAMES and data.image_shape == (3, 32, 32)
    assert data.train_x.dtype == torch.uint8 and data.train_x.shape == (5 * N, 3, 32, 32)
    assert data.test_x.shape == (N, 3, 32, 32)
    assert data.test_x[0, :, 0, 0].tolist() == [255, 0, 0]       # red
    assert data.test_x[0, :, 1, 2].tolist() == [0, 255, 0]       # green, at row 1 and column 2 only
    assert data.test_x[0, :, 2, 1].tolist() == [255, 0, 0]
    assert data.train_y.tolist() == [k % 10 for k in range(N)] * 5 and data.train_y.dtype == torch.int64
    for index in range(5):  # the batches in order, each image as its planes were written
        assert np.array_equal(data.train_x[index * N:(index + 1) * N].numpy(), planes_for(N, index))


def test_the_real_count_is_checked_unless_told_otherwise(tmp_path) -> None:
    folder = miniature(tmp_path)
    with pytest.raises(DataError, match=f"holds {N * 3073} bytes, {N} records; a CIFAR-10 batch file holds 10000"):
        cifar.read_folder(folder)
    with pytest.raises(DataError, match="holds 10000"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("damage, needle", [
    (lambda f: (f / "data_batch_3.bin").write_bytes((f / "data_batch_3.bin").read_bytes()[:-100]),
     "data_batch_3.bin holds 18338 bytes, not a whole number of 3073-byte records"),
    (lambda f: (f / "test_batch.bin").write_bytes((f / "test_batch.bin").read_bytes() + bytes(3073)),
     "test_batch.bin holds 21511 bytes, 7 records; a CIFAR-10 batch file holds 6"),
    (lambda f: (f / "data_batch_4.bin").unlink(), "lacks data_batch_4.bin of the CIFAR-10 binary layout"),
    (lambda f: (f / cifar.META_FILE).unlink(), "lacks batches.meta.txt"),
    (lambda f: (f / cifar.META_FILE).write_text("\n".join(NAMES[:9])), "holds 9 names (9 distinct)"),
    (lambda f: (f / cifar.META_FILE).write_text("\n".join(NAMES[:9] + NAMES[:1])), "holds 10 names (9 distinct)"),
    (lambda f: (f / cifar.META_FILE).write_bytes(b"\xff\xfe" * 10), "is not UTF-8 text"),
])
def test_damaged_folders_end_in_one_line(isolated, capsys, damage, needle) -> None:
    damage(miniature(isolated / "data"))
    with pytest.raises(DataError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        load_dataset("cifar10", data_dir=isolated / "data")
    fails(["data", "fetch", "cifar10", "--data-dir", str(isolated / "data")], capsys, needle,
          "genlab data fetch cifar10")


def test_a_label_outside_0_to_9_is_refused(tmp_path) -> None:
    folder = miniature(tmp_path)
    batch = bytearray((folder / "data_batch_2.bin").read_bytes())
    batch[3 * 3073] = 10  # the label byte of record 3
    (folder / "data_batch_2.bin").write_bytes(bytes(batch))
    with pytest.raises(DataError, match=r"data_batch_2.bin holds label 10 in record 3 \(1 such record\); "
                                        r"CIFAR-10 labels are 0..9"):
        cifar.read_folder(folder, records=N)


def test_search_order_list_and_fetch(isolated, monkeypatch, capsys) -> None:
    assert not {s.name: s for s in catalog.list_datasets()}["cifar10"].available
    with pytest.raises(DataError, match=r"cifar10 not found \(looked for cifar-10-batches-bin/ or "
                                        r"cifar-10-binary.tar.gz in .*home/.cache/genlab/cifar10\); download failed"):
        load_dataset("cifar10")
    miniature(isolated / "env")
    monkeypatch.setenv("GENLAB_DATA", str(isolated / "env"))
    assert load_dataset("cifar10").source == str(isolated / "env" / cifar.FOLDER)
    mine = miniature(isolated / "mine" / "cifar10")  # --data-dir/cifar10 comes before $GENLAB_DATA
    assert load_dataset("cifar10", data_dir=isolated / "mine").source == str(mine)
    assert main(["data", "list", "--data-dir", str(isolated / "mine")]) == 0
    assert f"cifar10        found    {mine}" in capsys.readouterr().out
    assert main(["data", "fetch", "cifar10"]) == 0
    assert capsys.readouterr().out.strip() == str(isolated / "env" / cifar.FOLDER)


def test_a_found_archive_is_checked_and_extracted_once(isolated, monkeypatch) -> None:
    archive = archive_of(miniature(isolated / "src"), isolated / "data" / cifar.ARCHIVE)
    assert {s.name: s for s in catalog.list_datasets(isolated / "data")}["cifar10"].detail == \
        f"{archive} (extracted on first use)"
    with pytest.raises(DataError, match=f"is not the published CIFAR-10 binary archive \\(md5 {md5(archive)}, "
                                        f"expected c32a1d4ab5d03f1284b67883e8d87530\\)"):
        load_dataset("cifar10", data_dir=isolated / "data")
    assert not (isolated / "data" / cifar.FOLDER).exists()
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", md5(archive))
    data = load_dataset("cifar10", data_dir=isolated / "data")
    extracted = isolated / "data" / cifar.FOLDER
    assert data.source == str(extracted) and data.test_x[0, :, 1, 2].tolist() == [0, 255, 0]
    assert sorted(p.name for p in extracted.iterdir()) == sorted(cifar.FILES)  # readme.html skipped
    assert sorted(p.name for p in (isolated / "data").iterdir()) == sorted([cifar.ARCHIVE, cifar.FOLDER])
    archive.write_bytes(b"not the archive any more")  # the extracted folder is used from now on
    assert load_dataset("cifar10", data_dir=isolated / "data").source == str(extracted)


def test_a_download_is_extracted_where_downloads_go(isolated, monkeypatch) -> None:
    archive = archive_of(miniature(isolated / "src"), isolated / "served.tar.gz")
    asked = []

    def served(url, dest, expected_md5, timeout=30):
        asked.append((url, expected_md5))
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes(archive.read_bytes())
        return Path(dest)

    monkeypatch.setattr(cifar.idx, "download", served)
    folder = catalog.fetch_dataset("cifar10")
    assert folder == isolated / "home" / ".cache" / "genlab" / "cifar10" / cifar.FOLDER
    assert asked == [("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")]
    assert cifar.read_folder(folder).train_x.shape == (5 * N, 3, 32, 32)


@pytest.mark.parametrize("extra, needle", [
    ([(f"{cifar.FOLDER}/../../evil.txt", b"x", "file")], ("the member 'cifar-10-batches-bin/../../evil.txt' "
                                                           "lies outside cifar-10-batches-bin/")),
    ([("/tmp/evil.txt", b"x", "file")], "the member '/tmp/evil.txt' lies outside"),
    ([("evil.txt", b"x", "file")], "the member 'evil.txt' lies outside"),
    ([(f"{cifar.FOLDER}/sub/evil.txt", b"x", "file")], "lies outside"),
    ([(f"{cifar.FOLDER}/link", b"/etc/passwd", "symlink")], "the member 'cifar-10-batches-bin/link' is a link"),
    ([(f"{cifar.FOLDER}/test_batch.bin", bytes(N * 3073), "file")], ("cifar-10-batches-bin/test_batch.bin "
                                                                      "appears twice")),
])
def test_hostile_archives_are_refused_and_leave_nothing(isolated, monkeypatch, capsys, extra, needle) -> None:
    data_dir = isolated / "data" / "deep"
    archive = archive_of(miniature(isolated / "src"), data_dir / cifar.ARCHIVE, extra)
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", md5(archive))
    fails(["data", "fetch", "cifar10", "--data-dir", str(data_dir)], capsys, str(archive), needle,
          "nothing was extracted")
    assert sorted(p.name for p in data_dir.iterdir()) == [cifar.ARCHIVE]  # no folder, no temporary left
    assert not (isolated / "data" / "evil.txt").exists() and not (isolated / "evil.txt").exists()


def test_archive_members_of_the_wrong_size_or_missing_are_refused(isolated) -> None:
    folder = miniature(isolated / "src")
    short = tar_of(isolated / "short.tar.gz", [(f"{cifar.FOLDER}/{name}", (folder / name).read_bytes()[:-1], "file")
                                               for name in cifar.FILES])
    with pytest.raises(DataError, match="data_batch_1.bin holds 18437 bytes, not a whole number"):
        cifar.extract(short, isolated / "out", checksum=False)
    partial = tar_of(isolated / "partial.tar.gz", [(f"{cifar.FOLDER}/{name}", (folder / name).read_bytes(), "file")
                                                   for name in cifar.FILES if name != "test_batch.bin"])
    with pytest.raises(DataError, match="lacks cifar-10-batches-bin/test_batch.bin"):
        cifar.extract(partial, isolated / "out", checksum=False)
    (isolated / "plain.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="is not a readable tar.gz archive"):
        cifar.extract(isolated / "plain.tar.gz", isolated / "out", checksum=False)
    assert list((isolated / "out").iterdir()) == []


@pytest.mark.parametrize("model", ["dcgan", "conv-vae"])
def test_dcgan_and_conv_vae_train_on_it_at_32x32(isolated, tmp_path, capsys, model) -> None:
    miniature(tmp_path / "data")
    out = tmp_path / model
    assert main(["train", model, "--data", "cifar10", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                 "--max-steps", "2", "--batch-size", "8", "--out", str(out)]) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["data"]["spec"] == "cifar10" and record["data"]["image_shape"] == [3, 32, 32]
    assert record["model_config"]["image_shape"] == [3, 32, 32]
    run = load_run(out)
    with torch.no_grad():
        images = run.model.sample(2)
    assert tuple(images.shape) == (2, 3, 32, 32) and 0 <= float(images.min()) <= float(images.max()) <= 1
