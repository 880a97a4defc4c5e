"""A run's records: the typed record of what was trained on what (RunRecord, DataRecord), read back with every
field checked; the configs users pass to `genlab train --config`; and the metrics log, one line per epoch."""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genlab.config import Config, option
from genlab.data.batches import binarize_fixed
from genlab.data.catalog import Dataset, load_dataset
from genlab.data.folder import fingerprint as folder_fingerprint
from genlab.errors import ConfigError, GenlabError, RunError
from genlab.models.registry import model_spec
from genlab.options import TrainConfig
from genlab.runs import layout
from genlab.runs.guard import check_links
from genlab.runs.layout import RunLayout
from genlab.version import __version__

RUN_FORMAT = 2
MAX_CONFIG_BYTES = 1_000_000    # a record is a few kB; a huge one is damage, not a run
MAX_METRICS_BYTES = 200_000_000
PATH_SPECS = ("folder:", "dsprites:", "celeba:")  # data specs that name a path, kept absolute so a run reloads from anywhere
IDENTITY_TRAIN_FIELDS = ("seed", "batch_size", "beta1", "binarize", "precision", "val_images", "val_split",
                         "kl_warmup", "early_stop", "weight_decay", "ema")  # what a resumed run may not change


@dataclass(frozen=True)
class DataRecord(Config):
    """The data as the model saw it: how to load it again, and what came out."""

    spec: str = option("", "what load_dataset was given: a dataset name, folder:ABSOLUTE_PATH, "
                           "dsprites:ABSOLUTE_PATH or celeba:ABSOLUTE_PATH")
    name: str = option("", "the dataset's name")
    data_dir: str | None = option(None, "the folder searched first for its files, if one was given")
    image_size: int | None = option(None, "images resized to this square size", low=4, high=2048)
    channels: int | None = option(None, "1 (grayscale) or 3 (RGB), if converted", low=1, high=3)
    image_shape: tuple[int, int, int] = option((1, 28, 28), "(channels, height, width) the model saw",
                                               low=1, high=2048)
    train_images: int = option(0, "images in the training split", low=0, high=10**9)
    test_images: int = option(0, "images in the test split", low=0, high=10**9)
    source: str = option("", "where the files were found")
    fingerprint: str = option("", "a folder dataset's SHA-256 over its images' names and bytes (--resume compares "
                                  "it); empty for named datasets")

    def __post_init__(self) -> None:
        check_data_spec(self.spec)
        if self.fingerprint and not re.fullmatch(r"[0-9a-f]{64}", self.fingerprint):
            raise ConfigError(f"data fingerprint {self.fingerprint[:80]!r} is not a SHA-256 in hex")


def check_data_spec(spec: str) -> None:
    """A data spec read back from a run is held to the command line's rules, and folders must be absolute."""
    if spec.startswith(PATH_SPECS):
        prefix, folder = spec.split(":", 1)
        if not folder or not Path(folder).is_absolute() or ".." in Path(folder).parts:
            example = {"folder": "folder (folder:/path/to/images)", "dsprites": "file (dsprites:/path/to/it.npz)",
                       "celeba": "folder (celeba:/path/to/celeba)"}[prefix]
            raise ConfigError(f"data spec {spec!r} must name an absolute {example} without '..'")
    elif not spec or spec.strip() != spec or "/" in spec:
        raise ConfigError(f"data spec {spec!r} is not a dataset name, folder:PATH, dsprites:PATH or celeba:PATH")


def data_record(data: Dataset, spec: str | None = None, data_dir: str | None = None,
                image_size: int | None = None, channels: int | None = None) -> DataRecord:
    """The record of `data` (a folder dataset's spec is its absolute path, so the run reloads from anywhere)."""
    spec = spec or data.name
    if spec.startswith(PATH_SPECS):
        prefix, path = spec.split(":", 1)
        spec = f"{prefix}:{Path(path).expanduser().resolve()}"
    if data_dir is not None:
        data_dir = str(Path(data_dir).expanduser().resolve())
    if image_size is None and data.image_shape[1:] != default_size(spec):
        image_size = data.image_shape[1]  # resized from the Python API: record it so the run reloads at size
    folder = folder_fingerprint(Path(spec.removeprefix("folder:"))) if spec.startswith("folder:") else ""
    return DataRecord(spec=spec, name=data.name, data_dir=data_dir, image_size=image_size, channels=channels,
                      image_shape=tuple(data.image_shape), train_images=len(data.train_x),
                      test_images=len(data.test_x), source=data.source, fingerprint=folder)


def default_size(spec: str) -> tuple[int, int] | None:
    """(H, W) a named dataset loads at without --image-size (None: it depends on the files)."""
    return {"fashion-mnist": (28, 28), "mnist": (28, 28), "shapes": (28, 28)}.get(spec)


@dataclass(frozen=True)
class RunRecord:
    """The run's record: everything needed to load the run again or to repeat it (`genlab train --config`)."""

    model: str
    model_config: Config
    data: DataRecord
    train: TrainConfig
    command: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    format: int = RUN_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "model": self.model, "model_config": self.model_config.to_dict(),
                "data": self.data.to_dict(), "train": self.train.to_dict(), "command": self.command,
                "versions": dict(self.versions), "created": self.created}

    def dataset(self, data_dir: str | None = None) -> Dataset:
        """The dataset at the size and channels the model was trained with (data_dir overrides the record's)."""
        return load_dataset(self.data.spec, data_dir=data_dir or self.data.data_dir,
                            image_size=self.data.image_size, channels=self.data.channels)

    def model_images(self, x: Tensor) -> Tensor:
        """uint8 images as the model is tested on them: their fixed-seed binarization for dynamic runs."""
        return binarize_fixed(x) if self.train.binarize == "dynamic" else x

    def identity_changes(self, other: RunRecord) -> list[str]:
        """What `other` changes about what the run is ('seed 0 -> 1', ...); epochs and devices may change."""
        if other.model != self.model:
            return [f"model {self.model} -> {other.model}"]
        changes = []
        for name, old, new in differences(self.model_config.to_dict(), other.model_config.to_dict()):
            changes.append(f"{name} {old} -> {new}")
        for key in ("spec", "image_size", "channels", "image_shape"):
            old, new = getattr(self.data, key), getattr(other.data, key)
            if old != new:
                changes.append(f"data {key} {old} -> {new}")
        if self.data.fingerprint and other.data.fingerprint and self.data.fingerprint != other.data.fingerprint:
            changes.append(f"the images in {other.data.spec} changed since the run began "
                           f"({self.data.train_images} train / {self.data.test_images} test then, "
                           f"{other.data.train_images} / {other.data.test_images} now; fingerprint "
                           f"{self.data.fingerprint[:12]} -> {other.data.fingerprint[:12]})")
        for key in IDENTITY_TRAIN_FIELDS:
            old, new = getattr(self.train, key), getattr(other.train, key)
            if old != new:
                changes.append(f"{key} {old} -> {new}")
        return changes


def new_record(name: str, model_config: Config, data: Dataset, config: TrainConfig, data_spec: DataRecord | None,
               command: str) -> RunRecord:
    """The record a new run of the registered model `name` starts with."""
    return RunRecord(
        model=name, model_config=model_config, data=data_spec or data_record(data), train=config,
        command=command or f"genlab.train() from Python ({name})",
        versions={"genlab": __version__, "torch": torch.__version__, "python": platform.python_version()},
        created=datetime.datetime.now().isoformat(timespec="seconds"))


def record_text(record: RunRecord) -> str:
    """The record as its file holds it: indented JSON."""
    return json.dumps(record.to_dict(), indent=2) + "\n"


def differences(old: dict[str, Any], new: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            yield key, old.get(key), new.get(key)


# ---------------------------------------------------------------- reading it back


def read_json_limited(path: Path, limit: int) -> Any:
    """JSON from a file of at most `limit` bytes; absurd nesting and bad encodings are RunErrors."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise RunError(f"{path} is {size:,} bytes, far larger than any genlab record ({limit:,} at most); "
                           f"it is damaged: restore it or delete the run")
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{path} is corrupt ({err}); the run cannot be loaded") from None
    except RecursionError:
        raise RunError(f"{path} is nested too deeply to be a genlab record; it is damaged") from None
    except OSError as err:
        raise RunError(f"{path} could not be read ({err.strerror or err})") from None


def parse_record(values: Any, where: str) -> RunRecord:
    """A RunRecord from the contents of a run's record, every field checked before anything is built."""
    if not isinstance(values, dict):
        raise RunError(f"{where} holds a {type(values).__name__}, not a JSON object; it is not a genlab run record")
    model = values.get("model")
    if not isinstance(model, str) or not isinstance(values.get("model_config"), dict):
        raise RunError(f"{where} lacks a model name and its options ('model' and 'model_config'); "
                       f"it is not a genlab run record")
    spec = installed_spec(model, where)
    try:
        model_config = spec.config_cls.from_dict(values["model_config"])
        data = DataRecord.from_dict(upgrade_data(values.get("data")))
        train = TrainConfig.from_dict(upgrade_train(values.get("train") or {}))
    except GenlabError as err:
        raise RunError(f"{where} has an invalid value: {err}") from None
    text = {key: values.get(key) for key in ("command", "created")}
    versions = values.get("versions") or {}
    if not all(isinstance(v, str) for v in text.values() if v is not None) or not isinstance(versions, dict):
        raise RunError(f"{where}: 'command', 'created' and 'versions' must hold text")
    return RunRecord(model, model_config, data, train, text["command"] or "",
                     {str(k): str(v) for k, v in versions.items()}, text["created"] or "",
                     int(values.get("format", 1)) if isinstance(values.get("format", 1), int) else RUN_FORMAT)


def installed_spec(model: str, where: str):
    """The registry entry of a run's model, or a RunError saying it is not installed here."""
    try:
        return model_spec(model)
    except ConfigError:
        raise RunError(f"{where} was trained with the model {model[:80]!r}, which is not installed here: install "
                       f"the package that provides it (it registers through the `genlab.models` entry point), "
                       f"then retry; `genlab models` lists what is installed") from None


def upgrade_data(data: Any) -> Any:
    """Records written before format 2 kept the data's spec and name in one loose block."""
    if not isinstance(data, dict):
        raise ConfigError(f"'data' must be a JSON object, got {type(data).__name__}")
    data = dict(data)
    data.setdefault("spec", data.get("name", ""))
    return data


def upgrade_train(train: Any) -> Any:
    """Records written before `val_split` held out their last `val_images` training images: they keep that split."""
    return {**train, "val_split": "last"} if isinstance(train, dict) and "val_split" not in train else train


def read_record(run_dir: str | os.PathLike) -> RunRecord:
    """The checked record of a run, or a RunError saying why `run_dir` is not a usable run."""
    run_dir = Path(run_dir)
    if run_dir.is_file():  # often a file inside a run (RUN/model.safetensors) given for the run itself
        raise RunError(f"{run_dir} is a file, not a run directory; {run_directory_hint(run_dir)}")
    if not run_dir.is_dir():
        raise RunError(f"run directory {run_dir} does not exist; train one with `genlab train MODEL --out {run_dir}`")
    check_links(run_dir)  # every reader comes through here: nothing of a run is read through a link
    path = RunLayout(run_dir).config
    if not path.is_file():
        raise RunError(f"{run_dir} is not a genlab run directory: {layout.CONFIG} is missing")
    return parse_record(read_json_limited(path, MAX_CONFIG_BYTES), str(path))


def run_directory_hint(path: Path) -> str:
    """What to give instead of the file `path`: its folder when that folder is a run."""
    if RunLayout(path.parent).config.is_file():
        return f"give the run directory {path.parent} instead"
    return f"give the run directory, the folder that holds {layout.CONFIG}"


def read_user_config(path: str | os.PathLike) -> dict[str, Any]:
    """A config a user passes to `genlab train --config`: a run's record, or JSON/YAML in its shape."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    if path.suffix.lower() in (".yaml", ".yml"):
        values = read_yaml(path)
    else:
        values = read_json_limited(path, MAX_CONFIG_BYTES)
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path} holds a {type(values).__name__}; expected a mapping with keys such as "
                          f"model, model_config, data, train")
    unknown = sorted(set(values) - {"format", "model", "model_config", "data", "train", "command", "versions",
                                    "created"})
    if unknown:
        raise ConfigError(f"--config {path} has unknown key(s) {', '.join(map(str, unknown))}; "
                          f"expected model, model_config, data, train")
    check_data_entry(path, values.get("data"))
    return values


def check_data_entry(path: Path, data: Any) -> None:
    """A config file's 'data' is a mapping of the keys load_dataset takes (a run's record adds what it read)."""
    if data is None:
        return
    if isinstance(data, dict):
        unknown = sorted(map(str, set(data) - set(DataRecord.field_names())))
        if not unknown:
            return
        held = f"the unknown key(s) {', '.join(unknown)}"
    else:
        held = f"the {type(data).__name__} {data!r:.60}"
    raise ConfigError(f"--config {path}: 'data' must be a mapping with the keys spec (a dataset name or folder:PATH), "
                      f"data_dir, image_size and channels, e.g. `data: {{spec: shapes, image_size: 64}}`; it holds "
                      f"{held}")


def read_yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError(f"--config {path}: reading YAML needs PyYAML (pip install pyyaml), or give JSON") from None
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"--config {path} is larger than {MAX_CONFIG_BYTES:,} bytes")
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
        raise ConfigError(f"--config {path} is not valid YAML ({str(err).splitlines()[0]})") from None


# ---------------------------------------------------------------- the metrics log


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """One dict per completed epoch from the run's metrics log; [] if the file does not exist yet."""
    path = RunLayout(run_dir).metrics
    try:
        if path.stat().st_size > MAX_METRICS_BYTES:
            raise RunError(f"{path} is larger than {MAX_METRICS_BYTES:,} bytes; it is damaged")
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as err:
        raise RunError(f"{path} could not be read ({err}); check its permissions and encoding") from None
    return [parse_metrics_line(path, number, line) for number, line in enumerate(lines, 1) if line.strip()]


def parse_metrics_line(path: Path, number: int, line: str) -> dict:
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as err:
        raise RunError(f"{path} line {number} is not valid JSON ({err}); delete or repair that line") from None
    if not isinstance(row, dict):
        raise RunError(f"{path} line {number} is not a JSON object; each line holds one epoch's metrics")
    return row
