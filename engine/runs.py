"""The run directory: writing it while a run trains, and reading it back.

| file | written |
|---|---|
| ``config.json`` | at start: the full, filled-in config |
| ``split.npz`` | at start, when one source was split: ``train_idx``, ``dev_idx``, ``test_idx`` |
| ``data_report.json`` | at start, for image sources (``data.report``) |
| ``metrics.jsonl`` | one JSON object per epoch with exactly :data:`engine.trainer.METRIC_KEYS`, appended and flushed every epoch; NaN/inf are written as null |
| ``summary.json`` | at the end (also after cancel / divergence) |
| ``model.npz`` | at the end: ``W1``…``WL`` ``(n_in, n_out)`` (``WL`` has 1 column for ``model.output`` sigmoid), ``b1``…``bL`` ``(n_out,)``, ``classes`` (unicode array), ``norm_mean``, ``norm_std`` ``(n_features,)``, ``input_shape`` (int64), ``config`` (0-d unicode array holding JSON text); no object arrays, loads with ``allow_pickle=False`` |

Every file except ``metrics.jsonl`` is written atomically (temporary name, then rename).
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.batches import EvalSet
from engine.config import ConfigError, ExperimentConfig, from_json
from engine.dataset import ArraySet, PreparedData
from engine.errors import DataError
from engine.fileio import atomic_save_npz, atomic_write_json, atomic_write_text, is_npz_archive

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.npz"
DATA_REPORT_FILE = "data_report.json"
SPLIT_FILE = "split.npz"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, MODEL_FILE, DATA_REPORT_FILE, SPLIT_FILE)


def json_safe(obj):
    """Recursively replace NaN/inf floats by None and NumPy scalars/arrays by Python values."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class RunWriter:
    """Writes one run directory as a run goes: start(), append(record) per epoch, finish(summary, net)."""

    def __init__(self, run_dir: str | Path, cfg: ExperimentConfig, data: PreparedData):
        self.path = Path(run_dir)
        self.cfg = cfg
        self.data = data
        self._metrics = None

    def start(self) -> None:
        """Create the folder, remove files of an earlier run in it, write config/split/report."""
        self.path.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        atomic_write_text(self.path / CONFIG_FILE, self.cfg.to_json() + "\n")
        if self.data.split_indices is not None:
            idx = self.data.split_indices
            atomic_save_npz(
                self.path / SPLIT_FILE,
                **{
                    k: np.asarray(idx.get(k, np.empty(0, np.int64)), dtype=np.int64)
                    for k in ("train_idx", "dev_idx", "test_idx")
                },
            )
        if self.data.report is not None:
            atomic_write_json(self.path / DATA_REPORT_FILE, json_safe(self.data.report))
        self._metrics = open(self.path / METRICS_FILE, "w", encoding="utf-8")

    def append(self, record) -> None:
        """One line of metrics.jsonl, flushed so a crash loses at most the epoch in flight."""
        line = json.dumps(record.metrics_dict(), allow_nan=False)
        self._metrics.write(line + "\n")
        self._metrics.flush()

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None

    def finish(self, summary: dict, net) -> None:
        """Write model.npz (the weights the final metrics describe) and summary.json, then close."""
        self.close()
        save_model(self.path / MODEL_FILE, net, self.data, self.cfg)
        atomic_write_json(self.path / SUMMARY_FILE, json_safe(summary))


# ---------------------------------------------------------------------------- model


def save_model(path: str | Path, net, data: PreparedData, cfg: ExperimentConfig) -> None:
    """Save net's weights plus what is needed to use them (classes, normalization, input shape, config)."""
    arrays: dict[str, np.ndarray] = {}
    for i, (W, b) in enumerate(zip(net.W, net.b), start=1):
        arrays[f"W{i}"] = np.array(W)
        arrays[f"b{i}"] = np.array(b)
    arrays["classes"] = np.array([str(c) for c in data.classes], dtype=np.str_)
    arrays["norm_mean"] = np.asarray(data.norm_mean).reshape(-1)
    arrays["norm_std"] = np.asarray(data.norm_std).reshape(-1)
    arrays["input_shape"] = np.asarray(tuple(data.input_shape), dtype=np.int64)
    arrays["config"] = np.array(cfg.to_json(), dtype=np.str_)
    atomic_save_npz(path, **arrays)


@dataclass
class LoadedModel:
    """A saved network and what it needs: classes, norm_mean/norm_std ``(n_features,)``, input_shape."""

    net: object
    classes: list[str]
    norm_mean: np.ndarray
    norm_std: np.ndarray
    input_shape: tuple[int, ...]
    config: ExperimentConfig

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) on raw samples X ``(n, *input_shape)`` (uint8 images or float vectors)."""
        X = np.asarray(X)
        if X.shape[1:] != tuple(self.input_shape) and X.reshape(len(X), -1).shape[1] != len(self.norm_mean):
            raise DataError(
                f"data of shape {X.shape[1:]} does not fit a model made for {tuple(self.input_shape)}"
            )
        y = np.asarray(y, dtype=np.int64)
        if len(y) and (y.min() < 0 or y.max() >= len(self.classes)):
            raise DataError(f"labels must be in [0, {len(self.classes)}), the model's classes")
        dtype = self.config.training.dtype
        return EvalSet(ArraySet(X, y), self.norm_mean, self.norm_std, dtype).evaluate(self.net)


def load_model(path: str | Path) -> LoadedModel:
    """Load model.npz (allow_pickle=False) into a new MLP; DataError naming the file when it is unusable."""
    from engine.network import MLP

    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such model file")
    if not is_npz_archive(path):
        raise DataError(f"{path}: not a model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable model file ({exc})") from None

    def need(key: str) -> np.ndarray:
        if key not in arrays:
            raise DataError(f"{path}: missing array {key!r}")
        return arrays[key]

    try:
        cfg = from_json(str(need("config")[()]), name="config")
    except ConfigError as exc:
        raise DataError(f"{path}: {exc}") from None
    n_layers = sum(1 for k in arrays if k.startswith("W") and k[1:].isdigit())
    if n_layers == 0:
        raise DataError(f"{path}: no weight arrays W1…WL")
    Ws, bs = [], []
    for i in range(1, n_layers + 1):
        W, b = need(f"W{i}"), need(f"b{i}")
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise DataError(f"{path}: W{i} {W.shape} and b{i} {b.shape} do not form a layer")
        if Ws and Ws[-1].shape[1] != W.shape[0]:
            raise DataError(f"{path}: W{i - 1} {Ws[-1].shape} does not connect to W{i} {W.shape}")
        if not np.issubdtype(W.dtype, np.floating) or not np.issubdtype(b.dtype, np.floating):
            raise DataError(f"{path}: W{i}/b{i} must be floating point")
        Ws.append(W)
        bs.append(b)
    classes = [str(c) for c in need("classes").reshape(-1)]
    input_shape = tuple(int(s) for s in need("input_shape").reshape(-1))
    mean = need("norm_mean").reshape(-1)
    std = need("norm_std").reshape(-1)
    n_in = Ws[0].shape[0]
    if int(np.prod(input_shape)) != n_in:
        raise DataError(f"{path}: input_shape {input_shape} does not match W1 with {n_in} inputs")
    if mean.shape != (n_in,) or std.shape != (n_in,):
        raise DataError(f"{path}: norm_mean {mean.shape} / norm_std {std.shape} must have shape ({n_in},)")
    n_out = Ws[-1].shape[1]
    if cfg.model.output == "sigmoid":
        # one output unit, p = σ(z) of the second class; the width must agree with the config
        if n_out != 1:
            raise DataError(
                f"{path}: the config's model.output is sigmoid (one output unit) but W{n_layers} has {n_out} outputs"
            )
        if len(classes) != 2:
            raise DataError(f"{path}: a sigmoid output needs 2 classes, the file lists {len(classes)}")
    elif n_out == 1:
        raise DataError(
            f"{path}: W{n_layers} has one output unit (a sigmoid output) but the config's model.output is softmax"
        )
    elif len(classes) != n_out:
        raise DataError(f"{path}: {len(classes)} classes but the last layer has {n_out} outputs")
    sizes = [n_in] + [W.shape[1] for W in Ws]
    if sizes[1:-1] != list(cfg.model.hidden):
        raise DataError(
            f"{path}: weights have hidden sizes {sizes[1:-1]} but the config says {cfg.model.hidden}"
        )
    net = MLP(sizes, cfg.model.activation, dtype=cfg.training.dtype, output=cfg.model.output)
    for i, (W, b) in enumerate(zip(Ws, bs)):
        net.W[i][...] = W
        net.b[i][...] = b
    return LoadedModel(net, classes, mean, std, input_shape, cfg)


# ---------------------------------------------------------------------------- runs


@dataclass
class RunRecord:
    """A run directory as read back: summary is None while the run is in progress."""

    path: Path
    config: ExperimentConfig
    metrics: list[dict]
    summary: dict | None


def read_metrics(path: str | Path) -> list[dict]:
    """metrics.jsonl -> list of dicts; a truncated last line (run in flight or crashed) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # the epoch in flight when the file was read or the run crashed
            raise DataError(f"{path}: line {i + 1} is not valid JSON") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: line {i + 1} is not a JSON object")
        out.append(obj)
    return out


def load_run(run_dir: str | Path) -> RunRecord:
    """Read a run directory (finished or in progress)."""
    path = Path(run_dir)
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise DataError(f"{path}: not a run directory (no {CONFIG_FILE})")
    try:
        cfg = from_json(cfg_path.read_text(encoding="utf-8"), name="config")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{cfg_path}: cannot read ({exc})") from None
    except ConfigError as exc:
        raise DataError(f"{cfg_path}: {exc}") from None
    summary = None
    summary_path = path / SUMMARY_FILE
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{summary_path}: not valid JSON ({exc})") from None
    return RunRecord(path, cfg, read_metrics(path / METRICS_FILE), summary)
