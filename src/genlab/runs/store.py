"""The one owner of a run directory's life: create or resume it, commit each epoch as one unit, read its
checkpoint back checked, load a finished run.

An epoch is staged in a fresh folder and published by one rename; its files then move into place. A kill at any
instant leaves the last complete epoch, and the next start finishes or discards the interrupted one.
The names of the files are genlab.runs.layout's.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor, nn

from genlab.data.catalog import Dataset
from genlab.errors import ConfigError, GenlabError, RunError, TrainingError
from genlab.files import atomic_write_text, fsync_dir, remove_leftovers, write_failure
from genlab.models.registry import build_model
from genlab.nn import memory_format
from genlab.options import WEIGHT_CHOICES
from genlab.runs import layout
from genlab.runs.guard import check_links, check_out_path, is_run_folder, link_refusal
from genlab.runs.layout import RunLayout
from genlab.runs.record import RunRecord, read_metrics, read_record, record_text
from genlab.world import resolve_device

# ---------------------------------------------------------------- the run directory's life


def finish_commit(run_dir: Path) -> None:
    """Move a published epoch (RUN/.commit/) into place: the second half of a commit a kill interrupted."""
    commit = RunLayout(run_dir).commit
    if commit.is_symlink():  # a link would move another folder's files into the run
        raise RunError(link_refusal(commit))
    if not commit.is_dir():
        return
    for name in layout.EPOCH_FILES:
        try:
            os.replace(commit / name, run_dir / name)
        except FileNotFoundError:
            pass  # moved already, before the kill (or by a concurrent reader)
    fsync_dir(run_dir)
    try:
        commit.rmdir()
    except OSError:
        pass  # another process finished it first


def clean_run_dir(run_dir: Path) -> None:
    """At the start of training: finish an interrupted commit, drop unpublished epochs and temporary files."""
    finish_commit(run_dir)
    for staging in RunLayout(run_dir).staged():
        shutil.rmtree(staging, ignore_errors=True)
    remove_leftovers(run_dir)


def is_empty_run_dir(out: Path) -> bool:
    """True when `out` does not exist or holds nothing but its lock (after cleaning what killed writes left);
    a folder of someone else's files is not touched."""
    if not out.exists():
        return True
    if not out.is_dir():
        raise RunError(f"--out {out} is a file, not a folder; choose another --out")
    if not is_run_folder(out):
        return False
    clean_run_dir(out)
    return all(path.name == layout.LOCK for path in out.iterdir())


def write_record(run_dir: Path, record: RunRecord) -> None:
    """The run's record, atomically."""
    atomic_write_text(RunLayout(run_dir).config, record_text(record))


def state_bytes(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def commit_epoch(run_dir: Path, model: nn.Module, state: dict[str, Any], metrics: list[dict],
                 record: RunRecord | None = None, best: bool = False,
                 averaged: dict[str, Tensor] | None = None) -> None:
    """Commit an epoch as one unit: weights, resumable state (weights included), the metrics log, the
    run's record when it changed (a resumed run's new epochs or learning rate), with `best` the weights
    again as the best so far, and `averaged` (the model's weights with the moving average in place, --ema).

    All three are staged in a fresh folder, published by one rename, then moved into place. A full disk
    (or any write error) leaves the previous epoch untouched and says so.
    """
    finish_commit(run_dir)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    averaged = None if averaged is None else {k: v.detach().cpu().contiguous() for k, v in averaged.items()}
    check_finite_state(run_dir, {**weights, **{f"{k} (averaged)": v for k, v in (averaged or {}).items()}}, state)
    staging = RunLayout(run_dir).staging(state["epoch"])
    contents = {layout.WEIGHTS: lambda: save_safetensors(weights, metadata={"epoch": str(state["epoch"])}),
                layout.STATE: lambda: state_bytes({**state, "model": weights, "metrics": metrics}),
                layout.METRICS: lambda: "".join(json.dumps(m) + "\n" for m in metrics).encode("utf-8")}
    if best:
        contents[layout.BEST_WEIGHTS] = contents[layout.WEIGHTS]
    if averaged is not None:
        contents[layout.EMA_WEIGHTS] = lambda: save_safetensors(averaged, metadata={"epoch": str(state["epoch"])})
    if record is not None:
        contents[layout.CONFIG] = lambda: record_text(record).encode("utf-8")
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name, make in contents.items():
            write_synced(staging / name, make())
        fsync_dir(staging)
        os.replace(staging, RunLayout(run_dir).commit)  # the commit point
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        last = f"epoch {state['epoch'] - 1}" if state["epoch"] > 1 else "no epoch yet"
        raise RunError(f"{write_failure(RunLayout(run_dir).state, err)}; the run's last complete epoch ({last}) "
                       f"is untouched, and --resume continues from it") from None
    fsync_dir(run_dir)
    finish_commit(run_dir)


def check_finite_state(run_dir: Path, weights: dict[str, Tensor], state: dict[str, Any]) -> None:
    """A TrainingError, before anything is staged, when the weights or an optimizer's state hold a NaN or an
    infinity: the losses can stay finite while, say, Adam's second moment has overflowed, and a checkpoint that
    held it would make every later --resume diverge. The last finite epoch stays the run's checkpoint."""
    bad = next(non_finite(weights, state), None)
    if bad is None:
        return
    epoch = state["epoch"]
    kept = f"the last good checkpoint (epoch {epoch - 1}) in {run_dir} is kept" if epoch > 1 else \
        f"no epoch completed, so {run_dir} holds no checkpoint"
    raise TrainingError(f"training diverged at epoch {epoch}: {bad} holds NaN or infinite values (the losses stayed "
                        f"finite); {kept}; resume with a smaller --lr")


def non_finite(weights: dict[str, Tensor], state: dict[str, Any]) -> Iterator[str]:
    """The names of the floating-point tensors of the weights and the optimizer states that are not all finite.
    One check per tensor, once per epoch (a CPU-GPU sync point each, for a state on the GPU)."""
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            yield f"the weight {name}"
    for optimizer, saved in state.get("optimizers", {}).items():
        for index, slots in saved.get("state", {}).items():
            for slot, value in slots.items():
                if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                    yield f"the {optimizer} optimizer's {slot} (of parameter {index})"


def write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------- creating and resuming


def not_a_run(out: Path) -> str:
    return f"{out} is not empty and holds no genlab run (no {layout.CONFIG}); choose another --out"


def already_a_run(out: Path) -> str:
    return f"{out} already exists and is not empty; pass --resume to continue it, or choose another --out"


def check_fresh_out(out: Path) -> None:
    """Before a fresh run is announced or its data loaded: refuse an --out that holds a run or someone else's
    files. Reads only; open_run decides again under the writer lock."""
    if not out.is_dir():
        return  # absent, or a file: check_out_path and open_run say so
    if RunLayout(out).config.is_file():
        raise RunError(already_a_run(out))
    if not is_run_folder(out):
        raise RunError(not_a_run(out))


def open_run(out: Path, resume: bool, record: RunRecord) -> dict[str, Any] | None:
    """Fresh run: refuse to overwrite, write its record. Resume: refuse a different run; return its state.
    The caller holds the run's writer lock (genlab.runs.guard.one_writer)."""
    check_out_path(out)
    check_links(out)  # before anything is cleaned, moved or read in it
    files = RunLayout(out)
    if is_empty_run_dir(out):
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunError(f"cannot create --out {out} ({err.strerror or err}); choose another --out") from None
        write_record(out, record)
        return None
    if not files.config.is_file():
        raise RunError(not_a_run(out))
    if not resume:
        raise RunError(already_a_run(out))
    saved = read_record(out)
    if saved.model != record.model:
        raise RunError(f"{out} holds a {saved.model!r} run, not {record.model!r}; "
                       f"resume it with `genlab train {saved.model} --resume --out {out}`")
    changes = saved.identity_changes(record)
    if changes:
        raise RunError(f"--resume would change what {out} is ({'; '.join(changes)}); resume with its original "
                       f"options (they are in {files.config}) or train into a new --out")
    if not files.state.exists():
        write_record(out, record)
        return None  # killed before the first checkpoint: nothing to resume, start afresh
    return load_state(out)


def resumed_record(out: Path, record: RunRecord) -> RunRecord | None:
    """The record to commit with the next epoch of a resumed run, or None when nothing changed."""
    saved = read_record(out)
    keep = dataclasses.replace(record, created=saved.created, versions=saved.versions)
    unchanged = keep.train == saved.train and keep.command == saved.command
    return None if unchanged else keep


# ---------------------------------------------------------------- reading the state back


def load_state(run_dir: Path) -> dict[str, Any]:
    """The resumable state of a run (tensors and plain containers only: weights_only=True), checked."""
    path = RunLayout(run_dir).state
    if not path.is_file():
        raise RunError(f"{run_dir} has no checkpoint ({layout.STATE}); it never finished an epoch: start it afresh")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged or hostile file
        raise RunError(f"{path} is corrupt ({type(e).__name__}); delete the run or restore the file") from None
    check_state(state, path)
    return state


def check_state(state: Any, path: Path) -> None:
    """A RunError unless `state` has the structure the trainer wrote."""
    def bad(what: str) -> RunError:
        return RunError(f"{path} is not a genlab checkpoint: {what}; delete the run or restore the file")
    if not isinstance(state, dict):
        raise bad(f"it holds a {type(state).__name__}")
    for key in ("epoch", "step"):
        if not isinstance(state.get(key), int) or isinstance(state.get(key), bool) or state[key] < 0:
            raise bad(f"'{key}' must be a whole number >= 0")
    rng = state.get("rng_cpu")
    if not isinstance(rng, Tensor) or rng.dtype != torch.uint8 or rng.dim() != 1:
        raise bad("'rng_cpu' must be the generator state (a uint8 vector)")
    for name in ("rng_cpu_ranks", "rng_cuda_ranks"):  # one per torchrun process, when trained with several
        ranks = state.get(name, [])
        if not isinstance(ranks, list) or not all(
                isinstance(r, Tensor) and r.dtype == torch.uint8 and r.dim() == 1 for r in ranks):
            raise bad(f"'{name}' must be a list of generator states (uint8 vectors)")
    if not isinstance(state.get("optimizers"), dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in state["optimizers"].items()):
        raise bad("'optimizers' must map names to optimizer states")
    if not isinstance(state.get("model"), dict) or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in state["model"].items()):
        raise bad("'model' must map parameter names to tensors")
    check_schedule_state(state.get("schedule"), bad)
    if "ema" in state and (not isinstance(state["ema"], dict) or not all(
            isinstance(k, str) and isinstance(v, Tensor) and v.is_floating_point() for k, v in state["ema"].items())):
        raise bad("'ema' must map parameter names to floating-point tensors (the moving average)")
    metrics = state.get("metrics")
    if not isinstance(metrics, list) or len(metrics) != state["epoch"] or not all(isinstance(m, dict) for m in metrics):
        raise bad("'metrics' must hold one record per completed epoch")


def check_schedule_state(schedule: Any, bad) -> None:
    """The early-stopping state: best validation loss, its epoch, the patience counter, whether it stopped."""
    if schedule is None:
        return  # written before early stopping existed
    if not isinstance(schedule, dict) or set(schedule) != {"best", "best_epoch", "bad_epochs", "stopped"}:
        raise bad("'schedule' must hold best, best_epoch, bad_epochs and stopped")
    counts = [schedule[key] for key in ("best_epoch", "bad_epochs")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
        raise bad("'schedule' epochs must be whole numbers >= 0")
    if not isinstance(schedule["best"], float) or not isinstance(schedule["stopped"], bool):
        raise bad("'schedule' best must be a number and stopped true or false")


def load_weights(path: Path) -> dict[str, Tensor]:
    """A run's weights file (safetensors: tensors only), read whole and checked."""
    if not path.is_file():
        raise RunError(f"{path.parent} has no {path.name}; it never finished an epoch")
    try:
        return load_safetensors(path.read_bytes())
    except Exception as e:  # safetensors raises its own error type for bad headers
        raise RunError(f"{path} is corrupt ({str(e)[:200]})") from None


def apply_weights(model: nn.Module, weights: dict[str, Tensor], source: Path) -> None:
    """Load weights strictly; a mismatch means the checkpoint belongs to another model."""
    try:
        model.load_state_dict(weights, strict=True)
    except (RuntimeError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[-1].strip()[:200]
        raise RunError(f"the weights in {source} do not fit a {getattr(model, 'model_name', 'model')} "
                       f"with this config (a checkpoint of another model?): {first}") from None


# ---------------------------------------------------------------- a loaded run


@dataclass
class Run:
    """A trained run loaded from disk: its record, its model (eval mode) and its metrics."""

    path: Path
    record: RunRecord
    model: nn.Module
    metrics: list[dict]
    weights: str = "last"  # which weights the model holds: "ema" (averaged), "best" (by validation loss) or "last"

    @property
    def config(self) -> dict[str, Any]:
        """The run's record as a plain dict."""
        return self.record.to_dict()

    def dataset(self, data_dir: str | None = None) -> Dataset:
        """The run's dataset as the model saw it (size, channels)."""
        return self.record.dataset(data_dir)

    def test_images(self, data: Dataset) -> Tensor:
        """uint8 test images as the model is tested on them (binarized for dynamic runs)."""
        return self.record.model_images(data.test_x)

    def weights_note(self) -> str:
        """Which weights are loaded, for the commands to print: '' for a run without a validation split or --ema."""
        if self.weights == "ema":
            return (f"using the moving average of the weights (--ema {self.record.train.ema}, epoch "
                    f"{self.metrics[-1].get('epoch') if self.metrics else '?'}); --weights last for the trained ones")
        if self.record.train.ema:
            return "using the last epoch's trained weights (--weights last); by default the run's moving average"
        best = next((m.get("best_epoch") for m in reversed(self.metrics) if "best_epoch" in m), None)
        if best is None:
            return ""
        last = self.metrics[-1].get("epoch")
        if self.weights == "best":
            return (f"using the best weights (epoch {best} of {last}, by validation loss); "
                    f"--weights last for the last epoch's")
        return f"using the last epoch's weights (epoch {last}); the best by validation loss are epoch {best}'s"


def load_run(run_dir: str | os.PathLike, device: str | torch.device = "cpu", weights: str = "best") -> Run:
    """Rebuild the model of a run directory from its record and its weights, both checked first; on `device`
    ("auto": CUDA when present).

    weights="best" loads the moving average of the weights where the run kept one (--ema), else the weights of the
    best validation loss where the run kept them, else the last epoch's; "last" always the last epoch's.
    """
    if weights not in WEIGHT_CHOICES:
        raise ConfigError(f"weights must be one of {', '.join(WEIGHT_CHOICES)}, not {weights!r}")
    run_dir, files = Path(run_dir), RunLayout(run_dir)
    record = read_record(run_dir)
    finish_commit_quietly(run_dir)
    try:
        model = build_model(record.model, record.model_config)
    except GenlabError as e:
        raise RunError(f"{files.config} has an invalid model config: {e}") from None
    if weights == "best" and files.ema_weights.is_file():
        use, path = "ema", files.ema_weights
    else:
        use = "best" if weights == "best" and files.best_weights.is_file() else "last"
        path = files.weights_file(best=use == "best")
    apply_weights(model, load_weights(path), path)
    device = resolve_device(device)
    model = model.to(device, memory_format=memory_format(model, device)).eval()  # NHWC for conv models on the CPU
    return Run(run_dir, record, model, read_metrics(run_dir), use)


def finish_commit_quietly(run_dir: Path) -> None:
    """Readers finish a commit a kill interrupted, where they may write; a read-only run is read as it is."""
    try:
        finish_commit(run_dir)
    except OSError:
        pass

