"""The CNNs that inversion turns around, as Networks: EfficientNet-Lite, classifier runs, a random VGG-shaped net,
VGG-16/19 and GoogLeNet, with their weights read from local files and their layers and classes found by name."""
from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data import cifar
from genlab.data.catalog import CLASSES as DATASET_CLASSES
from genlab.data.catalog import search_dirs
from genlab.data.imagenet import CLASSES as IMAGENET_CLASSES
from genlab.data.shapes import CLASSES as SHAPES_CLASSES
from genlab.errors import ConfigError, DataError, RunError
from genlab.invert.efficientnet import LITE, EfficientNetLite, load_efficientnet_lite, stage_ends
from genlab.invert.vgg import VGG, VGG_LAYOUTS
from genlab.models.contract import Classifier
from genlab.options import NETWORK_HELP, WEIGHT_FILES
from genlab.runs.store import load_run
from genlab.world import resolve_device

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the statistics torchvision's ImageNet weights were trained with
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Defaults:
    """Layers used when none are named: DeepDream's, and style transfer's content and style layers."""

    dream: str
    content: tuple[str, ...]
    style: tuple[str, ...]


# indices into torchvision's `features`; for VGG-16/19 Gatys et al.'s relu4_2 (content), relu1_1 ... relu5_1 (style)
DEFAULTS = {
    # random filters carry little beyond local texture: shallow layers (relu1_1 .. relu2_2) transfer it best
    "vgg-random": Defaults("features.15", ("features.8",), ("features.1", "features.3", "features.6",
                                                            "features.8")),
    "vgg16": Defaults("features.22", ("features.20",),
                      ("features.1", "features.6", "features.11", "features.18", "features.25")),
    "vgg19": Defaults("features.26", ("features.22",),
                      ("features.1", "features.6", "features.11", "features.20", "features.29")),
    "googlenet": Defaults("inception4c", ("inception4b",),
                          ("conv1", "conv3", "inception3a", "inception4a", "inception5a")),
}


class EnoughLayers(Exception):
    """Raised by a forward hook once every requested layer is captured: the rest of the net is skipped."""


@dataclass
class Network:
    """A CNN to invert: images (N, C, H, W) in [0, 1] are resized / normalised here, layers found by name."""

    name: str
    net: nn.Module  # its named_modules() are the layer names
    call: Callable[[Tensor], Tensor]  # normalised input -> the network's output (logits when it has classes)
    channels: int
    size: tuple[int, int] | None  # a fixed input size (H, W), or None for any size
    defaults: Defaults
    classes: tuple[str, ...] = ()  # empty: the output is not class scores
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    preview_size: int = 224  # the input size --list-layers shows output shapes for
    blank: float = 0.5  # grey level of a neutral image, where class visualization starts
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def prepare(self, x: Tensor) -> Tensor:
        """[0, 1] images -> the network's input: resized to its fixed size (if any), then normalised."""
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    @property
    def short_name(self) -> str:
        """The name to draw on a figure: a classifier run's folder name ('clf'), not its whole path."""
        return Path(self.name).name or Path(self.name).resolve().name or self.name

    def check_classes(self) -> None:
        if not self.classes:
            raise ConfigError(f"{self.name} has no trained class scores to visualise; use a classifier run "
                              f"directory or an ImageNet model (vgg16, vgg19, googlenet)")

    def class_index(self, spec: str | int) -> int:
        """A class by number ("76") or name ("tarantula", any case, _ or - for spaces); unknown names get suggestions."""
        self.check_classes()
        text = str(spec).strip()
        if text.lstrip("-").isdigit():
            if not 0 <= int(text) < len(self.classes):
                raise ConfigError(f"class {text} out of range: {self.name} has classes 0 to {len(self.classes) - 1}")
            return int(text)
        key = text.lower().replace("_", " ").replace("-", " ")
        names = [name.lower().replace("-", " ") for name in self.classes]
        if key in names:
            return names.index(key)
        raise ConfigError(f"{self.name} has no class {text!r}; {closest_classes(key, names, self.classes)}")

    def logits(self, x: Tensor) -> Tensor:
        """Class scores (N, n_classes) of [0, 1] images."""
        self.check_classes()
        return self.forward(x)

    def forward(self, x: Tensor) -> Tensor:
        """The network's output for [0, 1] images; an image too small for its pooling is a ConfigError."""
        try:
            return self.call(self.prepare(x))
        except RuntimeError as e:
            if "too small" not in str(e) and "can't be greater" not in str(e):
                raise
            raise ConfigError(f"a {x.shape[-2]}x{x.shape[-1]} image is too small for {self.name}'s layers "
                              f"(its pooling shrinks it to nothing); use a larger --size") from None

    def activations(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Outputs of the named layers for [0, 1] images; the forward stops after the last one needed."""
        modules = {name: find_layer(self.net, name) for name in layers}
        captured: dict[str, Tensor] = {}

        def hook(name: str) -> Callable:
            def capture(module: nn.Module, inputs: tuple, output: Tensor) -> None:
                if not isinstance(output, Tensor):
                    raise ConfigError(f"layer {name} of {self.name} returns {type(output).__name__}, not a "
                                      f"tensor; pick another with --list-layers")
                captured[name] = output.clone()  # clone: a later in-place ReLU must not change what we hold
                if len(captured) == len(modules):
                    raise EnoughLayers
            return capture

        handles = [module.register_forward_hook(hook(name)) for name, module in modules.items()]
        try:
            self.forward(x)
        except EnoughLayers:
            pass
        finally:
            for handle in handles:
                handle.remove()
        missing = [name for name in layers if name not in captured]
        if missing:
            raise ConfigError(f"layers {missing} of {self.name} are not used by its forward pass; "
                              f"pick others with --list-layers")
        return captured

    def activation(self, layer: str) -> Callable[[Tensor], Tensor]:
        """x -> that layer's output, as a function (checks the name now)."""
        find_layer(self.net, layer)
        return lambda x: self.activations(x, [layer])[layer]

    def to(self, device: str | torch.device) -> Network:
        self.net.to(device)
        self.device = torch.device(device)
        return self


def closest_classes(key: str, names: Sequence[str], classes: Sequence[str]) -> str:
    """'closest: tarantula (76), ...' from spelling and from names that contain the text; or where to look."""
    containing = [name for name in names if key and key in name][:4]
    close = containing + [name for name in difflib.get_close_matches(key, names, n=3) if name not in containing]
    if not close:
        return f"give a class number (0 to {len(classes) - 1}) or its exact name"
    return "closest: " + ", ".join(f"{classes[names.index(name)]} ({names.index(name)})" for name in close[:5])


def find_layer(net: nn.Module, name: str) -> nn.Module:
    """The submodule called `name` in net.named_modules(), or a ConfigError suggesting close names."""
    modules = dict(net.named_modules())
    if name and name in modules:
        return modules[name]
    close = difflib.get_close_matches(name, [n for n in modules if n], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown layer {name!r}{hint} (see --list-layers for every name)")


def layer_table(network: Network) -> list[tuple[str, str, str]]:
    """(name, module type, output shape) for every named layer, from one forward at the preview size."""
    size = network.size or (network.preview_size, network.preview_size)
    shapes: dict[str, str] = {}

    def record(name: str) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: object) -> None:  # None: the output is kept as is
            shapes.setdefault(name, str(tuple(output.shape)) if isinstance(output, Tensor) else type(output).__name__)
        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in network.net.named_modules() if name]
    try:
        with torch.no_grad():
            network.call(network.prepare(torch.full((1, network.channels, *size), 0.5, device=network.device)))
    finally:
        for handle in handles:
            handle.remove()
    return [(name, type(module).__name__, shapes.get(name, "not used"))
            for name, module in network.net.named_modules() if name]


def frozen(net: nn.Module) -> nn.Module:
    """Eval mode, no parameter gradients (only the image is optimised), ReLUs not in place."""
    for module in net.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return net.eval().requires_grad_(False)


def random_vgg(seed: int = 0) -> Network:
    """VGG-16's conv layers with seeded He-normal weights and zero biases; no download, no head."""
    net = VGG(VGG_LAYOUTS["vgg16"], n_classes=None)
    generator = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
            nn.init.zeros_(module.bias)
    return Network("vgg-random", frozen(net), net, 3, None, DEFAULTS["vgg-random"],
                   mean=IMAGENET_MEAN, std=IMAGENET_STD)


def weights_file(name: str, weights: str | os.PathLike | None) -> Path:
    """The checkpoint to load: --weights, else torchvision's file name in torch's hub cache; never downloads."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise RunError(f"--weights {path} does not exist; give the path of {WEIGHT_FILES[name]}")
        return path
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / WEIGHT_FILES[name]
    if not path.is_file():
        raise RunError(f"{name} needs its ImageNet weights {WEIGHT_FILES[name]}, not found in {folder} (torch's "
                       f"hub cache, under $TORCH_HOME); genlab does not download: pass --weights FILE, or fetch it "
                       f"on a machine with network via torchvision.models.{name}(weights='DEFAULT') and copy it "
                       f"there; or use --model vgg-random, which needs no weights")
    return path


def read_weights(path: Path, net: nn.Module, name: str) -> None:
    """Load a state dict strictly into a net built on the meta device (weights_only: only tensors unpickle)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True, assign=True)  # assign: the meta tensors become the loaded ones
    except Exception as e:  # torch raises several types for a damaged file or mismatched keys
        detail = str(e).strip().splitlines()[0][:160]
        raise RunError(f"{path} is not a usable {name} checkpoint ({type(e).__name__}: {detail}); expected "
                       f"torchvision's {WEIGHT_FILES[name]}") from None


def torchvision_models():
    """torchvision.models, imported only when GoogLeNet needs it."""
    try:
        import torchvision.models
    except ImportError:
        return None
    return torchvision.models


def pretrained_vgg(name: str, weights: str | os.PathLike | None) -> Network:
    """VGG-16 or VGG-19 with torchvision's ImageNet weights from a local file."""
    path = weights_file(name, weights)
    with torch.device("meta"):  # no time spent on random initial weights that the checkpoint replaces
        net = VGG(VGG_LAYOUTS[name])
    read_weights(path, net, name)
    return Network(name, frozen(net), net, 3, None, DEFAULTS[name], IMAGENET_CLASSES,
                   IMAGENET_MEAN, IMAGENET_STD)


def pretrained_googlenet(weights: str | os.PathLike | None) -> Network:
    """torchvision's GoogLeNet (Inception v1) with its ImageNet weights from a local file."""
    path = weights_file("googlenet", weights)
    models = torchvision_models()
    if models is None:
        raise ConfigError("googlenet is built by torchvision, which is not installed: pip install torchvision")
    # the checkpoint holds the auxiliary heads; inputs arrive ImageNet-normalised and transform_input
    # re-maps them to the scale these weights were trained on, as torchvision does
    with torch.device("meta"):
        net = models.GoogLeNet(transform_input=True, aux_logits=True, init_weights=False)
    read_weights(path, net, "googlenet")
    net.aux_logits, net.aux1, net.aux2 = False, None, None
    return Network("googlenet", frozen(net), net, 3, None, DEFAULTS["googlenet"], IMAGENET_CLASSES,
                   IMAGENET_MEAN, IMAGENET_STD)


def lite_defaults(net: EfficientNetLite) -> Defaults:
    """Dream at the residual branch (projection) of stage 5's last block; content at stage 4's end; style at the
    stem and the ends of stages 2-5. Block outputs carry the residual stream, which a dream barely changes."""
    ends = [f"blocks.{i}" for i in stage_ends(net.config)]
    return Defaults(f"{ends[4]}.project", (ends[3],), ("stem", *ends[1:5]))


def efficientnet_network(name: str, weights: str | os.PathLike | None) -> Network:
    """EfficientNet-Lite0/1/2 with its ImageNet weights; it takes [0, 1] images of any size and normalises inside."""
    net = load_efficientnet_lite(name, weights)
    return Network(name, frozen(net), net, 3, None, lite_defaults(net), IMAGENET_CLASSES,
                   preview_size=net.config.resolution)


def run_classes(config: dict, n_classes: int) -> tuple[str, ...]:
    """Class names of the dataset a run was trained on, else 'class 0', 'class 1', ..."""
    data = config.get("data", {})
    name = data.get("name", "")
    if name == cifar.NAME:
        names = cifar_classes(data)
    else:
        names = SHAPES_CLASSES if name == "shapes" else DATASET_CLASSES.get(name, ())
    return tuple(names) if len(names) == n_classes else tuple(f"class {i}" for i in range(n_classes))


def cifar_classes(data: dict) -> tuple[str, ...]:
    """CIFAR-10's names from its batches.meta.txt: in the folder the run's data came from, else where the data is
    searched for (--data-dir as recorded, $GENLAB_DATA, the cache); () when neither holds a readable one."""
    folders = [Path(data["source"])] if data.get("source") else []
    found = cifar.find(search_dirs(cifar.NAME, data.get("data_dir")))
    folders += [found] if found is not None and found.is_dir() else []
    for folder in folders:
        if (folder / cifar.META_FILE).is_file():
            try:
                return cifar.read_classes(folder / cifar.META_FILE)
            except DataError:  # a damaged list: the next folder, else numbered classes
                continue
    return ()


def classifier_network(run_dir: str | os.PathLike) -> Network:
    """A genlab classifier run: grayscale or RGB at its training size, pixels in [0, 1] as trained."""
    path = Path(run_dir)
    if not path.exists() and os.sep not in str(run_dir):
        raise ConfigError(f"unknown model {str(run_dir)!r}: expected {NETWORK_HELP}")
    run = load_run(path)
    if not isinstance(run.model, Classifier):
        raise RunError(f"{path} is a {run.config['model']} run; inversion needs a classifier: "
                       f"train one with `genlab train classifier`")
    channels, height, width = run.model.config.image_shape
    relus = [name for name, m in run.model.named_modules() if isinstance(m, nn.ReLU)]
    conv = relus[-2] if len(relus) > 1 else relus[0]  # the last conv block's ReLU; the final one is the features'
    defaults = Defaults(relus[-1], (conv,), tuple(relus[:-1]) or (conv,))
    model = frozen(run.model)
    return Network(str(path), model, model.logits, channels, (height, width), defaults,
                   run_classes(run.config, run.model.config.n_classes), preview_size=height,
                   blank=0.0)  # genlab's datasets draw on black: a black start scores near-uniform classes


def load_network(spec: str, weights: str | os.PathLike | None = None, seed: int = 0,
                 device: str | torch.device = "cpu") -> Network:
    """A network by name (efficientnet-lite0/1/2, vgg-random, vgg16, ...) or a classifier run directory, on `device`
    ("auto": CUDA when present)."""
    if weights is not None and spec not in WEIGHT_FILES and spec not in LITE:
        raise ConfigError(f"--weights is for {', '.join([*LITE, *WEIGHT_FILES])}; {spec} brings its own weights")
    if spec in LITE:
        network = efficientnet_network(spec, weights)
    elif spec == "vgg-random":
        network = random_vgg(seed)
    elif spec == "googlenet":
        network = pretrained_googlenet(weights)
    elif spec in VGG_LAYOUTS:
        network = pretrained_vgg(spec, weights)
    else:
        network = classifier_network(spec)
    return network.to(resolve_device(device))
