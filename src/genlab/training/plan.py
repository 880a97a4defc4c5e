"""A run's settings, merged once: defaults, then the model's preferences, then a config file (or the run
being resumed), then the values given on the command line."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab.errors import ConfigError, GenlabError, RunError
from genlab.models.registry import make_config, model_spec
from genlab.models.table import SET_FROM_DATA
from genlab.options import TrainConfig
from genlab.runs.guard import check_links, check_out_path
from genlab.runs.layout import RunLayout
from genlab.runs.record import PATH_SPECS, check_data_spec, read_user_config, upgrade_train
from genlab.runs.store import check_fresh_out

DATA_FIELDS = ("spec", "data_dir", "image_size", "channels")
DEFAULT_DATA = "fashion-mnist"


@dataclass(frozen=True)
class RunPlan:
    """Everything `genlab train` needs before loading data: model, its options, data, training config."""

    model: str
    model_options: dict[str, Any]
    data: dict[str, Any]
    train: TrainConfig

    def default_out(self) -> Path:
        """runs/MODEL-DATA, with a folder dataset named by its last path component."""
        spec = self.data["spec"]
        data = Path(spec.removeprefix("folder:")).name if spec.startswith("folder:") else spec
        data = spec.split(":", 1)[0] if spec.startswith(("dsprites:", "celeba:")) else data
        return Path("runs") / re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{self.model}-{data}")


def saved_settings(config_file: str | None, resume_dir: Path | None) -> dict[str, Any]:
    """The file given with --config, else the record of the run --resume continues, else nothing."""
    if config_file is not None:
        return read_user_config(config_file)
    if resume_dir is not None and resume_dir.is_dir():
        check_links(resume_dir)  # the record is not read through a link
    if resume_dir is not None and RunLayout(resume_dir).config.is_file():
        return read_user_config(RunLayout(resume_dir).config)
    return {}


def section(saved: dict[str, Any], key: str) -> dict[str, Any]:
    value = saved.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' in the config file must be a mapping of options, got {type(value).__name__}")
    return value


def choose_model(given: str | None, saved: dict[str, Any], resume_dir: Path | None) -> str:
    saved_model = saved.get("model")
    if saved_model is not None and not isinstance(saved_model, str):
        raise ConfigError("'model' in the config file must be a model name")
    if given and saved_model and given != saved_model and resume_dir is not None:
        raise RunError(f"{resume_dir} holds a {saved_model!r} run, not {given!r}; "
                       f"resume it with `genlab train {saved_model} --resume --out {resume_dir}`")
    if given and saved_model and given != saved_model:
        raise ConfigError(f"MODEL {given!r} differs from the config's model {saved_model!r}: leave MODEL out to "
                          f"use the config's, or drop --config")
    name = given or saved_model
    if not name:
        raise ConfigError("name a MODEL (see `genlab models`), or give --config FILE with a 'model' entry")
    model_spec(name)  # unknown names fail here, listing the known ones
    return name


def plan_run(model: str | None, model_flags: dict[str, Any], data_flags: dict[str, Any],
             train_flags: dict[str, Any], config_file: str | None = None, resume_dir: Path | None = None) -> RunPlan:
    """Merge the sources (command line beats file beats model preference beats default) and check it all."""
    saved = saved_settings(config_file, resume_dir)
    name = choose_model(model, saved, resume_dir if config_file is None else None)
    options = {k: v for k, v in {**section(saved, "model_config"), **model_flags}.items() if k not in SET_FROM_DATA}
    wrong = sorted(set(model_flags) - set(model_spec(name).config_cls.field_names()))
    if wrong:
        raise ConfigError(f"model {name!r} has no option {', '.join('--' + w.replace('_', '-') for w in wrong)}; "
                          f"see `genlab train --help`")
    try:
        make_config(name, **options)  # checks types and ranges now (image shape and classes come with the data)
    except GenlabError as err:
        raise ConfigError(f"model {name!r}: {err}") from None
    saved_train = section(saved, "train")
    if "versions" in saved or (resume_dir is not None and config_file is None):  # a run's record, maybe an old one
        saved_train = upgrade_train(saved_train)
    train = TrainConfig.from_dict({**TrainConfig().to_dict(), **model_spec(name).train_defaults, **saved_train,
                                   **train_flags})
    return RunPlan(name, options, plan_data(section(saved, "data"), data_flags), train)


def plan_data(saved: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """spec, data_dir, image_size, channels: flags beat the file; folder paths made absolute; all checked."""
    data = {key: saved.get(key) for key in DATA_FIELDS}
    data.update({key: value for key, value in flags.items() if value is not None})
    spec = data["spec"] or saved.get("name") or DEFAULT_DATA
    if not isinstance(spec, str):
        raise ConfigError("the data spec must be text: a dataset name or folder:PATH")
    if spec.startswith(PATH_SPECS) and spec.split(":", 1)[1].strip():
        prefix, path = spec.split(":", 1)
        spec = f"{prefix}:{Path(path).expanduser().resolve()}"
    elif spec.startswith("folder:"):
        raise ConfigError("--data folder: needs the path of a folder of PNG/JPEG images, e.g. folder:~/pictures")
    elif spec.startswith("dsprites:"):
        raise ConfigError("--data dsprites: needs the path of the dSprites .npz file, e.g. dsprites:~/data/"
                          "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
    elif spec.startswith("celeba:"):
        raise ConfigError("--data celeba: needs the CelebA folder holding img_align_celeba/, list_attr_celeba.txt "
                          "and list_eval_partition.txt, e.g. celeba:~/data/celeba")
    check_data_spec(spec)
    size, channels = data["image_size"], data["channels"]
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or not 4 <= size <= 2048):
        raise ConfigError(f"--image-size must be a whole number in 4..2048, got {size!r}")
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"--channels must be 1 or 3, got {channels!r}")
    if data["data_dir"] is not None and not isinstance(data["data_dir"], str):
        raise ConfigError("data_dir must be a folder path")
    return {**data, "spec": spec}


def plan_command(model: str | None, model_flags: dict[str, Any], data_flags: dict[str, Any],
                 train_flags: dict[str, Any], config_file: str | None, out: str | None,
                 resume: bool) -> tuple[RunPlan, Path]:
    """`genlab train`'s settings and run directory: flags over --config, or over the record of the run --resume
    continues (in --out, or in the default runs/MODEL-DATA)."""
    if out is not None and not out.strip():
        raise ConfigError("--out is empty; give a run directory, or leave --out out for runs/MODEL-DATA")
    if out is not None:
        check_out_path(Path(out))  # before anything is read or written there
    resume_dir = Path(out) if resume and out else None
    plan = plan_run(model, model_flags, data_flags, train_flags, config_file, resume_dir)
    folder = Path(out) if out else plan.default_out()
    check_out_path(folder)
    if not resume:
        check_fresh_out(folder)  # refused before `training ... ->` is printed or the data loaded
    if resume and resume_dir is None and config_file is None:
        plan = plan_run(model, model_flags, data_flags, train_flags, None, folder)
    return plan, folder
