"""Run directories: config.json, model.safetensors, state.pt, metrics.jsonl; atomic writes; loading."""
from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from genlab.errors import GenlabError, RunError
from genlab.models.registry import MODELS, build_model

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.pt"
METRICS_FILE = "metrics.jsonl"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; run files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """config.json of a run, or a RunError saying why it is not a usable run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run directory {run_dir} does not exist; train one with `genlab train MODEL --out {run_dir}`")
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunError(f"{run_dir} is not a genlab run directory: {CONFIG_FILE} is missing")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path} is corrupt ({e}); the run cannot be loaded") from None
    if not isinstance(config, dict) or config.get("model") not in MODELS or "model_config" not in config:
        raise RunError(f"{path} does not describe a known genlab model (expected keys 'model' and 'model_config')")
    return config


def state_bytes(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save_checkpoint(run_dir: Path, model: nn.Module, state: dict[str, Any], metrics: list[dict]) -> None:
    """Weights, then the full resumable state (weights included), then the metrics log.

    state.pt is the complete checkpoint: it is written last-but-one and atomically, so a kill at any
    moment leaves either the previous epoch's checkpoint or this one, never a mix.
    """
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(run_dir / WEIGHTS_FILE, save_safetensors(weights, metadata={"epoch": str(state["epoch"])}))
    atomic_write_bytes(run_dir / STATE_FILE, state_bytes({**state, "model": weights, "metrics": metrics}))
    atomic_write_text(run_dir / METRICS_FILE, "".join(json.dumps(m) + "\n" for m in metrics))


def load_state(run_dir: Path) -> dict[str, Any]:
    """The resumable state of a run (tensors and plain containers only: weights_only=True)."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise RunError(f"{run_dir} has no checkpoint ({STATE_FILE}); it never finished an epoch: start it afresh")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a damaged zip
        raise RunError(f"{path} is corrupt ({type(e).__name__}); delete the run or restore the file") from None


def load_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    path = Path(run_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise RunError(f"{run_dir} has no {WEIGHTS_FILE}; it never finished an epoch")
    try:
        return load_safetensors(path.read_bytes())
    except Exception as e:  # safetensors raises its own error type for bad headers
        raise RunError(f"{path} is corrupt ({e})") from None


def apply_weights(model: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load weights strictly; a mismatch means the checkpoint belongs to another model."""
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1].strip()[:200]
        raise RunError(f"the weights in {source} do not fit a {getattr(model, 'model_name', 'model')} "
                       f"with this config (a checkpoint of another model?): {first}") from None


@dataclass
class Run:
    """A trained run loaded from disk."""

    path: Path
    config: dict[str, Any]
    model: nn.Module
    metrics: list[dict]


def load_run(run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> Run:
    """Rebuild the model of a run directory from config.json and model.safetensors."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    spec = MODELS[config["model"]]
    try:
        model = build_model(config["model"], spec.config_cls.from_dict(config["model_config"]))
    except GenlabError as e:
        raise RunError(f"{run_dir / CONFIG_FILE} has an invalid model config: {e}") from None
    apply_weights(model, load_weights(run_dir), run_dir / WEIGHTS_FILE)
    return Run(run_dir, config, model.to(device).eval(), read_metrics(run_dir))


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """One dict per completed epoch from RUN/metrics.jsonl; [] if the file does not exist yet."""
    path = Path(run_dir) / METRICS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as err:
        raise RunError(f"{path} could not be read ({err}); check its permissions and encoding") from None
    return [parse_metrics_line(path, number, line) for number, line in enumerate(lines, 1) if line.strip()]


def parse_metrics_line(path: Path, number: int, line: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise RunError(f"{path} line {number} is not valid JSON ({err}); delete or repair that line") from None
    if not isinstance(row, dict):
        raise RunError(f"{path} line {number} is not a JSON object; each line holds one epoch's metrics")
    return row


def json_dumps(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


def json_roundtrip(value: Any) -> Any:
    """What `value` becomes after a trip through JSON (tuples turn into lists)."""
    return json.loads(json.dumps(value))
