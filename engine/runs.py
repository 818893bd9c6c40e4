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

A run folder is never overwritten silently (:class:`RunFolder`): a run is written only into
a new or empty folder. One process writes a run folder at a time: the writer holds an OS
lock on ``<folder>/.reglab.lock`` (see :class:`engine.fileio.FolderLock`; released when the
process dies, even by ``kill -9``), and a second writer — or :func:`engine.experiment.evaluate_test`
— is refused naming the holder's pid. With ``overwrite=True`` a folder that holds a RegLab
run (and nothing else) is replaced: the new run is written into a sibling temporary folder
``.<name>.reglab-new-<pid>-<random>`` on the same file system, and swapped in (one atomic
``renameat2(RENAME_EXCHANGE)`` on Linux, else two renames) only when it has written all
its files; if it fails, the old folder is untouched and the temporary one removed. Both
folders stay locked until the swap is done, so the lock follows the name.

Reading runs back (:func:`load_run`, :func:`scan_runs`) parses untrusted files: every
field is type-checked, and the only exception that escapes is :class:`DataError`, one line
naming the file and the problem.
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.batches import EvalSet
from engine.config import ConfigError, ExperimentConfig, from_dict
from engine.dataset import ArraySet, PreparedData
from engine.errors import DataError, InputError
from engine.fileio import (
    LOCK_FILE,
    TMP_SUFFIX,
    AppendFile,
    FolderLock,
    atomic_save_npz,
    atomic_write_json,
    atomic_write_text,
    exchange_folders,
    is_npz_archive,
    lock_is_free,
    remove_stale_temps,
    remove_tree,
    write_error,
)
from engine.jsonfile import INT_LIMIT, parse_json, read_json_file, read_text_file
from engine.trainer import METRIC_KEYS, STOP_REASONS

# what a run folder's summary may say: the trainer's stop reasons, and "pruned", which only a
# sweep's successive halving gives a trial (engine.sweep_prune)
RUN_STOP_REASONS = (*STOP_REASONS, "pruned")

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.npz"
DATA_REPORT_FILE = "data_report.json"
SPLIT_FILE = "split.npz"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, MODEL_FILE, DATA_REPORT_FILE, SPLIT_FILE)
GUI_META_FILE = "reglab_gui.json"  # the window's display name / hidden flag of a run
# what a RegLab run folder may hold; overwrite=True replaces only folders holding nothing else
OWN_FILES = (*RUN_FILES, GUI_META_FILE)

CONFIG_MAX_BYTES = 1 << 20
SUMMARY_MAX_BYTES = 4 << 20
METRICS_MAX_BYTES = 128 << 20  # 100,000 epochs of a 20-layer net's lines, with room to spare
MODEL_MAX_BYTES = 4 << 30  # uncompressed arrays of a model.npz (a zip bomb is refused from its headers)


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


# ---------------------------------------------------------------------------- run folders


def _is_ours_temporary(name: str) -> bool:
    return name == LOCK_FILE or (name.startswith(".") and name.endswith(TMP_SUFFIX))


def folder_contents(path: Path) -> list[str]:
    """Names in a folder, leaving out RegLab's own lock and temporary files (sorted)."""
    try:
        return sorted(n for n in os.listdir(path) if not _is_ours_temporary(n))
    except OSError as exc:
        raise InputError(f"{path}: cannot list the folder ({exc.strerror or exc})") from None


def _names(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_run_folder(out_dir: str | Path, *, overwrite: bool = False) -> bool:
    """Can a run be written to out_dir? Returns True when an old run will be replaced.

    Raises InputError when out_dir is not a folder, or holds files (unless overwrite and
    every file is a RegLab run file). Writes nothing.
    """
    path = Path(out_dir)
    if not path.exists():
        if path.is_symlink():
            raise InputError(f"{path}: is a broken link")
        return False
    if not path.is_dir():
        raise InputError(f"{path}: exists and is not a folder")
    names = folder_contents(path)
    if not names:
        return False
    if not overwrite:
        raise InputError(
            f"{path}: the folder already holds files ({_names(names)}); a run is written only into a "
            "new or empty folder (the command line's --overwrite replaces an old run once the new one "
            "has finished)"
        )
    foreign = [n for n in names if n not in OWN_FILES]
    if foreign:
        raise InputError(
            f"{path}: holds files that are not part of a RegLab run ({_names(foreign)}); --overwrite "
            "replaces only a run folder, so choose another folder"
        )
    if path.is_symlink():  # the swap would replace the link, not the run it points to
        raise InputError(f"{path}: is a link; to replace the run it points to, give {path.resolve()}")
    return True


class RunFolder:
    """The folder a run is written to, owned by this writer from :meth:`open` to :meth:`commit`/:meth:`abort`.

    ``RunFolder(out_dir, overwrite)`` checks the folder at once (InputError, nothing
    written); ``open()`` locks it and returns the folder to write into (out_dir itself, or
    with an old run to replace, a sibling temporary folder); ``commit()`` swaps the new run
    in and unlocks; ``abort()`` removes what a replacing run wrote and unlocks, keeping the
    old run. A run into a new folder that fails keeps what it wrote (like a crash would),
    except that a folder it created and left empty is removed.
    """

    def __init__(self, out_dir: str | Path, *, overwrite: bool = False):
        self.path = Path(out_dir)
        self.overwrite = bool(overwrite)
        self.replaces = check_run_folder(self.path, overwrite=self.overwrite)
        self.write_dir: Path | None = None
        self._locks: list[FolderLock] = []
        self._created = False
        self._closed = False

    @property
    def temp_prefix(self) -> str:
        return f".{self.path.name}.reglab-"

    def open(self) -> Path:
        """Lock the folder (creating it) and return where to write; InputError when refused."""
        path = self.path
        if self._locks:
            raise RuntimeError("RunFolder.open() was already called")
        self._recover()
        self._created = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise InputError(f"{path}: exists and is not a folder") from None
        except OSError as exc:
            raise write_error(path, exc, "create") from None
        try:
            self._locks.append(FolderLock.acquire(path, what="run folder"))
            remove_stale_temps(path)
            self._tidy_siblings()
            # checked again now that nobody else can write here
            self.replaces = check_run_folder(path, overwrite=self.overwrite)
            if not self.replaces:
                self.write_dir = path
                return path
            tmp = path.parent / f"{self.temp_prefix}new-{os.getpid()}-{secrets.token_hex(4)}"
            try:
                tmp.mkdir()
            except OSError as exc:
                raise write_error(path.parent, exc, "create a temporary run folder in") from None
            self.write_dir = tmp
            self._locks.append(FolderLock.acquire(tmp, what="run folder"))
            return tmp
        except BaseException:
            self.abort()
            raise

    def _siblings(self, kind: str) -> list[Path]:
        """Temporary folders of an earlier replacing run ("new" or "old") whose writer has gone."""
        parent, prefix = self.path.parent, f"{self.temp_prefix}{kind}-"
        try:
            names = sorted(n for n in os.listdir(parent) if n.startswith(prefix))
        except OSError:
            return []
        return [parent / n for n in names if (parent / n).is_dir() and lock_is_free(parent / n)]

    def _recover(self) -> None:
        """A replacing run killed between its two renames left the old run under an "old" name: put it back."""
        if self.path.exists() or self.path.is_symlink():
            return
        for old in self._siblings("old"):
            try:
                os.rename(old, self.path)
                return
            except OSError:
                continue

    def _tidy_siblings(self) -> None:
        """Remove temporary folders that an earlier replacing run left when it was killed."""
        for sibling in self._siblings("new"):
            remove_tree(sibling)
        if (self.path / CONFIG_FILE).exists():  # the swap was done: an "old" folder is the replaced run
            for sibling in self._siblings("old"):
                remove_tree(sibling)

    def commit(self) -> None:
        """The run has written every file: swap it in (when replacing) and unlock."""
        if self._closed:
            return
        if self.replaces and self.write_dir is not None and self.write_dir != self.path:
            try:
                self._swap(self.write_dir)
            except BaseException:
                self.abort()  # the old run stays; the new one is dropped with its temporary folder
                raise
        self._closed = True
        self._release()

    def _swap(self, new: Path) -> None:
        path = self.path
        try:
            old_lock, new_lock = self._locks
            if exchange_folders(new, path):
                # the names are swapped: `new` holds the old run, and the lock file taken in
                # `new` is now the one at `path`, still held, so nobody slips in before release
                old_lock.folder, new_lock.folder = new, path
                remove_tree(new)
                return
            old = path.parent / f"{self.temp_prefix}old-{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(path, old)
            try:
                os.rename(new, path)
            except OSError:
                os.rename(old, path)
                raise
            old_lock.folder, new_lock.folder = old, path
            remove_tree(old)
        except OSError as exc:
            raise write_error(path, exc, "replace the run folder") from None

    def abort(self) -> None:
        """The run failed or was refused: leave the old state, drop temporary folders, unlock."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.write_dir is not None and self.write_dir != self.path:
                remove_tree(self.write_dir)
        finally:
            self._release()
            if self._created:
                try:
                    self.path.rmdir()  # only when empty: what a failed run wrote is kept
                except OSError:
                    pass

    def _release(self) -> None:
        locks, self._locks = self._locks, []
        for lock in locks:
            lock.release()


class RunWriter:
    """Writes one run directory as a run goes: start(), append(record) per epoch, finish(summary, net).

    run_dir must exist and be owned by the caller (see :class:`RunFolder`); shown_as is
    the folder named in error messages (the final run folder when writing to a temporary one).
    """

    def __init__(
        self,
        run_dir: str | Path,
        cfg: ExperimentConfig,
        data: PreparedData,
        *,
        shown_as: str | Path | None = None,
    ):
        self.path = Path(run_dir)
        self.shown_as = self.path if shown_as is None else Path(shown_as)
        self.cfg = cfg
        self.data = data
        self._metrics: AppendFile | None = None

    def start(self) -> None:
        """Write config.json, split.npz and data_report.json; create metrics.jsonl (never over a file)."""
        shown = self.shown_as
        atomic_write_text(self.path / CONFIG_FILE, self.cfg.to_json() + "\n", shown_as=shown / CONFIG_FILE)
        if self.data.split_indices is not None:
            idx = self.data.split_indices
            atomic_save_npz(
                self.path / SPLIT_FILE,
                shown_as=shown / SPLIT_FILE,
                **{
                    k: np.asarray(idx.get(k, np.empty(0, np.int64)), dtype=np.int64)
                    for k in ("train_idx", "dev_idx", "test_idx")
                },
            )
        if self.data.report is not None:
            atomic_write_json(
                self.path / DATA_REPORT_FILE, json_safe(self.data.report), shown_as=shown / DATA_REPORT_FILE
            )
        self._metrics = AppendFile(self.path / METRICS_FILE, shown_as=shown / METRICS_FILE)

    def append(self, record) -> None:
        """One line of metrics.jsonl, handed to the OS at once so a crash loses at most the epoch in flight."""
        import json

        self._metrics.append_line(json.dumps(record.metrics_dict(), allow_nan=False))

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None

    def finish(self, summary: dict, net) -> None:
        """Write model.npz (the weights the final metrics describe) and summary.json, then close."""
        self.close()
        save_model(self.path / MODEL_FILE, net, self.data, self.cfg, shown_as=self.shown_as / MODEL_FILE)
        atomic_write_json(self.path / SUMMARY_FILE, json_safe(summary), shown_as=self.shown_as / SUMMARY_FILE)


# ---------------------------------------------------------------------------- model


def save_model(
    path: str | Path, net, data: PreparedData, cfg: ExperimentConfig, *, shown_as: str | Path | None = None
) -> None:
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
    atomic_save_npz(path, shown_as=shown_as, **arrays)


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


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz (allow_pickle=False), refusing archives that unpack to more than MODEL_MAX_BYTES."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            total = sum(info.file_size for info in npz.zip.infolist())
            if total > MODEL_MAX_BYTES:
                raise DataError(
                    f"{path}: the arrays unpack to {total / 2**30:.1f} GB, more than a model may hold"
                )
            return {k: npz[k] for k in npz.files}
    except (
        OSError,
        ValueError,
        EOFError,
        KeyError,
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,
    ) as exc:
        raise DataError(f"{path}: not a readable model file ({' '.join(str(exc).split())[:200]})") from None
    except MemoryError:
        raise DataError(f"{path}: the model's arrays do not fit in memory") from None


def load_model(path: str | Path) -> LoadedModel:
    """Load model.npz (allow_pickle=False) into a new MLP; DataError naming the file when it is unusable.

    Unusable: not an archive, missing or mis-shaped arrays, weights or biases that are not
    finite, a norm_mean that is not finite, a norm_std that is not finite and positive.
    """
    from engine.network import MLP

    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such model file")
    if not is_npz_archive(path):
        raise DataError(f"{path}: not a model file (not an .npz archive)")
    arrays = _read_npz(path)

    def need(key: str, kind: str) -> np.ndarray:
        if key not in arrays:
            raise DataError(f"{path}: missing array {key!r}")
        a = arrays[key]
        if a.dtype.kind not in kind:
            raise DataError(f"{path}: array {key!r} has the wrong type ({a.dtype})")
        return a

    text = need("config", "U")
    if text.shape != ():
        raise DataError(f"{path}: array 'config' must hold one JSON text")
    raw = parse_json(str(text[()]), where=f"{path}: config")
    try:
        cfg = from_dict(raw)
    except ConfigError as exc:
        raise DataError(f"{path}: {exc}") from None
    n_layers = sum(1 for k in arrays if k.startswith("W") and k[1:].isdigit())
    if n_layers == 0:
        raise DataError(f"{path}: no weight arrays W1…WL")
    Ws, bs = [], []
    for i in range(1, n_layers + 1):
        W, b = need(f"W{i}", "fiub"), need(f"b{i}", "fiub")
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise DataError(f"{path}: W{i} {W.shape} and b{i} {b.shape} do not form a layer")
        if Ws and Ws[-1].shape[1] != W.shape[0]:
            raise DataError(f"{path}: W{i - 1} {Ws[-1].shape} does not connect to W{i} {W.shape}")
        if not np.issubdtype(W.dtype, np.floating) or not np.issubdtype(b.dtype, np.floating):
            raise DataError(f"{path}: W{i}/b{i} must be floating point")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise DataError(f"{path}: W{i}/b{i} hold NaN or infinite values; the model cannot be used")
        Ws.append(W)
        bs.append(b)
    classes = [str(c) for c in need("classes", "U").reshape(-1)]
    shape_arr = need("input_shape", "iu").reshape(-1)
    if len(shape_arr) == 0 or len(shape_arr) > 4 or (shape_arr <= 0).any():
        raise DataError(f"{path}: input_shape {shape_arr.tolist()} is not a shape")
    input_shape = tuple(int(s) for s in shape_arr)
    mean = need("norm_mean", "fiu").reshape(-1)
    std = need("norm_std", "fiu").reshape(-1)
    n_in = Ws[0].shape[0]
    if math.prod(input_shape) != n_in:
        raise DataError(f"{path}: input_shape {input_shape} does not match W1 with {n_in} inputs")
    if mean.shape != (n_in,) or std.shape != (n_in,):
        raise DataError(f"{path}: norm_mean {mean.shape} / norm_std {std.shape} must have shape ({n_in},)")
    if not np.isfinite(mean).all():
        raise DataError(f"{path}: norm_mean holds NaN or infinite values; the model cannot be used")
    if not (np.isfinite(std).all() and (std > 0).all()):
        raise DataError(
            f"{path}: norm_std must be finite and positive (it divides every input), "
            f"found {float(std[~(np.isfinite(std) & (std > 0))][0])!r}; the model cannot be used"
        )
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
            f"{path}: weights have hidden sizes {sizes[1:-1]} but the config says {list(cfg.model.hidden)}"
        )
    net = MLP(sizes, cfg.model.activation, dtype=cfg.training.dtype, output=cfg.model.output)
    with np.errstate(over="ignore"):  # checked just below
        for i, (W, b) in enumerate(zip(Ws, bs)):
            net.W[i][...] = W
            net.b[i][...] = b
    if not (all(np.isfinite(W).all() for W in net.W) and all(np.isfinite(b).all() for b in net.b)):
        # float64 weights beyond float32's range become inf in a float32 network
        raise DataError(f"{path}: the weights overflow {cfg.training.dtype}; the model cannot be used")
    return LoadedModel(net, classes, mean, std, input_shape, cfg)


# ---------------------------------------------------------------------------- reading runs back


@dataclass
class RunRecord:
    """A run directory as read back: summary is None while the run is in progress.

    metrics: one dict per epoch with exactly :data:`engine.trainer.METRIC_KEYS` (numbers are
    finite floats or None, ``epoch`` a positive int, increasing; ``grad_norms`` a list).
    """

    path: Path
    config: ExperimentConfig
    metrics: list[dict]
    summary: dict | None


class _Bad(Exception):
    """A field of a run file is wrong; the message names the field."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: Any, name: str, lo: float | None = None, hi: float | None = None) -> float | None:
    """A finite number (or None) in [lo, hi]; bools are not numbers here."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{name} must be a number or null, got {_show(value)}")
    x = float(value)
    if not math.isfinite(x) or (lo is not None and x < lo) or (hi is not None and x > hi):
        where = f" in [{lo:g}, {hi:g}]" if hi is not None else f" ≥ {lo:g}" if lo is not None else ""
        raise _Bad(f"{name} must be a number{where}, got {_show(value)}")
    return x


def _integer(value: Any, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value < INT_LIMIT:
        raise _Bad(f"{name} must be an integer ≥ {lo}, got {_show(value)}")
    return value


def _text(value: Any, name: str, null: bool = True) -> str | None:
    if value is None and null:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{name} must be text{' or null' if null else ''}, got {_show(value)}")
    return value


def _text_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list):
        raise _Bad(f"{name} must be a list of texts, got {_show(value)}")
    return [_text(v, f"{name}[{i}]", null=False) for i, v in enumerate(value)]


_FRACTIONS = {"train_acc", "dev_acc"}


_NUMBER_KEYS = tuple(k for k in METRIC_KEYS if k not in ("epoch", "grad_norms"))
_FLOAT_MAX = sys.float_info.max


def _metrics_fast(obj: Any) -> dict | None:
    """check_metrics for the usual line (floats in range, or null): few calls per line; None otherwise."""
    if type(obj) is not dict:
        return None
    epoch, grads = obj.get("epoch"), obj.get("grad_norms")
    if type(epoch) is not int or not 1 <= epoch < INT_LIMIT or type(grads) is not list or len(grads) > 1000:
        return None
    out = {k: obj.get(k) for k in METRIC_KEYS}
    for k in _NUMBER_KEYS:
        v = out[k]
        # NaN fails both comparisons, inf the second
        if v is not None and (
            type(v) is not float or not 0.0 <= v <= (1.0 if k in _FRACTIONS else _FLOAT_MAX)
        ):
            return None
    for g in grads:
        if g is not None and (type(g) is not float or not 0.0 <= g <= _FLOAT_MAX):
            return None
    out["grad_norms"] = list(grads)
    return out


def check_metrics(obj: Any, name: str = "metrics") -> dict:
    """One metrics.jsonl object, type-checked; exactly METRIC_KEYS (missing ones null, others dropped)."""
    fast = _metrics_fast(obj)
    if fast is not None:
        return fast
    if not isinstance(obj, dict):
        raise _Bad(f"{name} must be a JSON object, got {_show(obj)}")
    out: dict = {}
    for key in METRIC_KEYS:
        value = obj.get(key)
        if key == "epoch":
            if value is None:
                raise _Bad(f"{name} has no epoch")
            out[key] = _integer(value, f"{name}.epoch", 1)
        elif key == "grad_norms":
            if value is None:
                value = []
            if not isinstance(value, list) or len(value) > 1000:
                raise _Bad(f"{name}.grad_norms must be a list of numbers, got {_show(value)}")
            out[key] = [_number(g, f"{name}.grad_norms[{i}]", 0.0) for i, g in enumerate(value)]
        elif key in _FRACTIONS:
            out[key] = _number(value, f"{name}.{key}", 0.0, 1.0)
        else:
            out[key] = _number(value, f"{name}.{key}", 0.0)
    return out


def _check_diagnosis(value: Any) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad(f"diagnosis must be an object or null, got {_show(value)}")
    out = dict(value)
    for key in ("train_error", "dev_error", "human_error", "tolerance"):
        if key in value:
            out[key] = _number(value[key], f"diagnosis.{key}", 0.0, 1.0)
    for key in ("avoidable_bias", "variance"):
        if key in value:
            out[key] = _number(value[key], f"diagnosis.{key}", -1.0, 1.0)
    for key in ("high_bias", "high_variance"):
        if key in value and not isinstance(value[key], bool):
            raise _Bad(f"diagnosis.{key} must be true or false, got {_show(value[key])}")
    for key in ("verdict", "explanation"):
        if key in value:
            out[key] = _text(value[key], f"diagnosis.{key}")
    if "next_steps" in value:
        out["next_steps"] = _text_list(value["next_steps"], "diagnosis.next_steps")
    return out


def _check_warnings(value: Any) -> list[dict]:
    if not isinstance(value, list):
        raise _Bad(f"warnings must be a list, got {_show(value)}")
    out = []
    for i, w in enumerate(value):
        if not isinstance(w, dict):
            raise _Bad(f"warnings[{i}] must be an object with code and message, got {_show(w)}")
        out.append(
            {
                "code": _text(w.get("code"), f"warnings[{i}].code", null=False),
                "message": _text(w.get("message"), f"warnings[{i}].message", null=False),
            }
        )
    return out


def check_summary(obj: Any) -> dict:
    """summary.json, type-checked: the documented keys must have their types; unknown keys are kept."""
    if not isinstance(obj, dict):
        raise _Bad(f"must be a JSON object, got {_show(obj)}")
    for key in ("epochs_run", "best_epoch", "stop_reason"):
        if key not in obj:
            raise _Bad(f"has no {key}")
    out = dict(obj)
    out["epochs_run"] = _integer(obj["epochs_run"], "epochs_run", 0)
    out["best_epoch"] = _integer(obj["best_epoch"], "best_epoch", 0)
    if obj["stop_reason"] not in RUN_STOP_REASONS:
        raise _Bad(
            f"stop_reason must be one of {', '.join(RUN_STOP_REASONS)}, got {_show(obj['stop_reason'])}"
        )
    if "weights_epoch" in obj:
        out["weights_epoch"] = _integer(obj["weights_epoch"], "weights_epoch", 0)
    if "n_test" in obj:
        out["n_test"] = _integer(obj["n_test"], "n_test", 0)
    if "message" in obj:
        out["message"] = _text(obj["message"], "message")
    for key in ("best_metrics", "final_metrics"):
        if obj.get(key) is not None:
            out[key] = check_metrics(obj[key], key)
    if "restored_best" in obj and not isinstance(obj["restored_best"], bool):
        raise _Bad(f"restored_best must be true or false, got {_show(obj['restored_best'])}")
    for key, lo, hi in (("human_error", 0.0, 1.0), ("test_acc", 0.0, 1.0), ("test_loss", 0.0, None)):
        if key in obj:
            out[key] = _number(obj[key], key, lo, hi)
    if "total_seconds" in obj:
        out["total_seconds"] = _number(obj["total_seconds"], "total_seconds", 0.0)
    if "diagnosis" in obj:
        out["diagnosis"] = _check_diagnosis(obj["diagnosis"])
    if "notes" in obj:
        out["notes"] = _text_list(obj["notes"], "notes")
    if "warnings" in obj:
        out["warnings"] = _check_warnings(obj["warnings"])
    return out


def read_metrics(path: str | Path) -> list[dict]:
    """metrics.jsonl -> list of checked dicts (see :func:`check_metrics`); [] when the file is missing.

    A last line without its newline (the epoch in flight when a run was read or crashed)
    is skipped; any other broken line is a DataError naming the file and line.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return []
    text = read_text_file(path, what="metrics file", max_bytes=METRICS_MAX_BYTES, streams=False)
    lines = text.split("\n")
    out: list[dict] = []
    last_epoch = 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{path}: line {i + 1}"
        try:
            obj = parse_json(line, where=where, checked=True)  # check_metrics checks every value
        except DataError:
            if i == len(lines) - 1:
                break  # no newline after it yet: the epoch in flight
            raise
        try:
            rec = check_metrics(obj, "the object")
        except _Bad as exc:
            raise DataError(f"{where}: {exc}") from None
        if rec["epoch"] <= last_epoch:
            raise DataError(f"{where}: epoch {rec['epoch']} does not follow epoch {last_epoch}")
        last_epoch = rec["epoch"]
        out.append(rec)
    return out


def _load_config(cfg_path: Path) -> ExperimentConfig:
    raw = read_json_file(cfg_path, what="config file", max_bytes=CONFIG_MAX_BYTES, streams=False)
    try:
        return from_dict(raw)
    except InputError as exc:
        raise DataError(f"{cfg_path}: {' '.join(str(exc).split())}") from None
    except (
        TypeError,
        ValueError,
        AttributeError,
        KeyError,
        IndexError,
        OverflowError,
        RecursionError,
    ) as exc:
        # a config value of a type from_dict did not expect; never a traceback
        raise DataError(f"{cfg_path}: not a valid config ({type(exc).__name__}: {exc})"[:300]) from None


def load_summary(run_dir: str | Path) -> dict | None:
    """A run folder's summary.json, validated (None while the run has none). DataError otherwise."""
    summary_path = Path(run_dir) / SUMMARY_FILE
    try:
        if not os.path.lexists(summary_path):
            return None
        raw = read_json_file(summary_path, what="summary", max_bytes=SUMMARY_MAX_BYTES, streams=False)
        return check_summary(raw)
    except _Bad as exc:
        raise DataError(f"{summary_path}: {exc}") from None
    except DataError:
        raise
    except InputError as exc:
        raise DataError(str(exc)) from None
    except (OSError, ValueError, RecursionError) as exc:
        raise DataError(f"{summary_path}: cannot read ({type(exc).__name__}: {exc})"[:300]) from None


def load_run(run_dir: str | Path) -> RunRecord:
    """Read a run directory (finished or in progress), validating every file.

    Raises DataError — and no other exception — naming the file and the problem.
    """
    path = Path(run_dir)
    try:
        if not path.is_dir():
            raise DataError(f"{path}: not a run directory (not a folder)")
        cfg_path = path / CONFIG_FILE
        if not os.path.lexists(cfg_path):
            raise DataError(f"{path}: not a run directory (no {CONFIG_FILE})")
        cfg = _load_config(cfg_path)
        summary = load_summary(path)
        metrics = read_metrics(path / METRICS_FILE)
    except DataError:
        raise
    except InputError as exc:
        raise DataError(str(exc)) from None
    except (OSError, ValueError, RecursionError, MemoryError) as exc:
        raise DataError(f"{path}: cannot read the run ({type(exc).__name__}: {exc})"[:300]) from None
    return RunRecord(path, cfg, metrics, summary)


def scan_runs(runs_dir: str | Path) -> tuple[list[RunRecord], list[str]]:
    """Every run folder directly below runs_dir, read with :func:`load_run`; never raises.

    Returns (runs sorted by folder name, one line per folder that could not be read).
    A sub-folder counts as a run folder when it holds any run file; hidden folders (names
    starting with ".", e.g. a run being replaced) are left out.
    """
    runs_dir = Path(runs_dir)
    records: list[RunRecord] = []
    problems: list[str] = []
    try:
        if not runs_dir.is_dir():
            if runs_dir.exists():
                problems.append(f"{runs_dir}: not a folder")
            return records, problems
        names = sorted(os.listdir(runs_dir))
    except OSError as exc:
        return records, [f"{runs_dir}: cannot list the folder ({exc.strerror or exc})"]
    for name in names:
        if name.startswith("."):
            continue
        path = runs_dir / name
        try:
            if not path.is_dir() or not any(os.path.lexists(path / f) for f in RUN_FILES):
                continue
        except OSError as exc:  # e.g. a symlink loop
            problems.append(f"{path}: cannot read ({exc.strerror or exc})")
            continue
        try:
            records.append(load_run(path))
        except DataError as exc:
            problems.append(" ".join(str(exc).split()))
    return records, problems
