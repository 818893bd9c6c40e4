"""The experiment config: one typed, validated dataclass tree shared by the CLI, GUI and run records.

Every field has a default, so a partial JSON file is filled in. Unknown keys and
out-of-range values raise :class:`ConfigError` with a message naming the field path,
e.g. ``regularization.keep_prob[1] must be in (0, 1]``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import InputError

BUILTIN_2D = ("moons", "circles", "spiral", "blobs", "xor")
BUILTIN_IMAGES = ("shapes",)
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")
INITS = ("zeros", "random", "xavier", "glorot", "he", "lecun")
OPTIMIZERS = ("sgd", "momentum", "adam")
MONITORS = ("dev_loss", "dev_acc")
DTYPES = ("float32", "float64")
SPLIT_PRESETS = {"70/30": (0.7, 0.3, 0.0), "60/20/20": (0.6, 0.2, 0.2), "98/1/1": (0.98, 0.01, 0.01)}


class ConfigError(InputError, ValueError):
    """A config value is invalid; the message names the field path."""


@dataclass
class DataConfig:
    source: str = "builtin:moons"  # builtin:NAME or a path (folder, .npz, idx folder, CIFAR folder)
    dev_source: str | None = None  # separate dev set (mismatched-distribution case)
    test_source: str | None = None  # separate test set
    n_samples: int = 1000  # size of generated built-in sets
    noise: float = 0.2  # noise of generated built-in sets
    n_classes: int = 3  # classes of spiral arms / blobs / shapes (others are fixed)
    image_size: list[int] = field(default_factory=lambda: [32, 32])  # [H, W] images are resized to
    color: str = "rgb"  # rgb or gray
    split: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])  # train/dev/test fractions
    stratify: bool = True  # keep class proportions in every split
    normalize: str = "standard"  # standard (train-split mean/std) or none
    seed: int = 0  # seed of data generation and the split


@dataclass
class AugmentConfig:
    hflip: float = 0.0  # probability of a horizontal flip
    vflip: float = 0.0  # probability of a vertical flip
    rotate_deg: float = 0.0  # rotation drawn uniformly in ±degrees
    zoom: list[float] = field(default_factory=lambda: [1.0, 1.0])  # scale drawn in [lo, hi]
    translate: float = 0.0  # shift drawn in ±fraction of width/height
    crop_padding: int = 0  # pad by this many pixels, then crop back at a random offset
    noise_std: float = 0.0  # Gaussian pixel noise σ, on the 0..1 pixel scale
    brightness: float = 0.0  # add a value drawn in ±brightness (0..1 pixel scale)
    contrast: float = 0.0  # scale around the image mean by a factor in [1-c, 1+c]


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: [64, 32])  # hidden layer sizes
    activation: str = "relu"  # hidden activation
    init: str = "he"  # weight initializer
    init_scale: float = 1.0  # multiplies the initial weights


@dataclass
class RegularizationConfig:
    l2: float = 0.0  # λ of (λ / 2m)·Σ‖W‖²_F
    l1: float = 0.0  # λ₁ of (λ₁ / m)·Σ|W|
    keep_prob: float | list[float] = 1.0  # dropout keep probability, one or one per hidden layer
    input_keep_prob: float = 1.0  # dropout keep probability of the inputs


@dataclass
class EarlyStoppingConfig:
    enabled: bool = False
    monitor: str = "dev_loss"  # dev_loss (lower is better) or dev_acc (higher is better)
    patience: int = 10  # epochs without improvement before stopping
    min_delta: float = 0.0  # smallest change that counts as an improvement
    restore_best: bool = True  # put the best epoch's weights back at the end


@dataclass
class OptimizerConfig:
    name: str = "adam"  # sgd, momentum or adam
    lr: float = 0.001  # learning rate
    momentum: float = 0.9  # β of momentum
    beta1: float = 0.9  # Adam first-moment decay
    beta2: float = 0.999  # Adam second-moment decay
    epsilon: float = 1e-8  # Adam denominator guard


@dataclass
class TrainingConfig:
    epochs: int = 100
    batch_size: int = 64  # ≥ training set size means full-batch gradient descent
    seed: int = 0  # seed of init, shuffling, dropout and augmentation
    dtype: str = "float32"  # float32 or float64


@dataclass
class DiagnosisConfig:
    human_error: float = 0.0  # human-level (Bayes proxy) error, a fraction in [0, 1]


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    diagnosis: DiagnosisConfig = field(default_factory=DiagnosisConfig)

    def keep_probs(self) -> list[float]:
        """keep_prob expanded to one value per hidden layer."""
        kp = self.regularization.keep_prob
        if isinstance(kp, list):
            return [float(v) for v in kp]
        return [float(kp)] * len(self.model.hidden)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def copy(self) -> ExperimentConfig:
        return from_dict(self.to_dict())


# ---------------------------------------------------------------- parsing


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_float(path: str, v: Any) -> float:
    if not _is_number(v):
        raise ConfigError(f"{path} must be a number, got {v!r}")
    if not math.isfinite(v):
        raise ConfigError(f"{path} must be finite, got {v!r}")
    return float(v)


def _as_int(path: str, v: Any) -> int:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ConfigError(f"{path} must be an integer, got {v!r}")
    return v


def _as_bool(path: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{path} must be true or false, got {v!r}")
    return v


def _as_str(path: str, v: Any, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{path} must be a string, got {v!r}")
    if choices is not None and v not in choices:
        raise ConfigError(f"{path} must be one of {', '.join(choices)}; got {v!r}")
    return v


def _as_list(path: str, v: Any, length: int | None = None) -> list:
    if not isinstance(v, (list, tuple)):
        raise ConfigError(f"{path} must be a list, got {v!r}")
    if length is not None and len(v) != length:
        raise ConfigError(f"{path} must have {length} entries, got {len(v)}")
    return list(v)


def _check_range(path: str, v: float, lo: float, hi: float, lo_open: bool, hi_open: bool) -> None:
    ok_lo = v > lo if lo_open else v >= lo
    ok_hi = v < hi if hi_open else v <= hi
    if not (ok_lo and ok_hi):
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        fmt = lambda x: "inf" if x == math.inf else f"{x:g}"  # noqa: E731
        raise ConfigError(f"{path} must be in {left}{fmt(lo)}, {fmt(hi)}{right}, got {v:g}")


def _prob(path: str, v: Any, zero_ok: bool = True) -> float:
    x = _as_float(path, v)
    _check_range(path, x, 0.0, 1.0, not zero_ok, False)
    return x


def _nonneg(path: str, v: Any) -> float:
    x = _as_float(path, v)
    _check_range(path, x, 0.0, math.inf, False, True)
    return x


def _positive(path: str, v: Any) -> float:
    x = _as_float(path, v)
    _check_range(path, x, 0.0, math.inf, True, True)
    return x


def _pos_int(path: str, v: Any, minimum: int = 1) -> int:
    x = _as_int(path, v)
    if x < minimum:
        raise ConfigError(f"{path} must be an integer ≥ {minimum}, got {x}")
    return x


def _check_keys(path: str, raw: Any, cls: type) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'config'} must be a JSON object, got {type(raw).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            where = f"{path}.{key}" if path else key
            raise ConfigError(f"{where} is not a known setting (known: {', '.join(sorted(names))})")
    return raw


def _source(path: str, v: Any, optional: bool) -> str | None:
    if v is None and optional:
        return None
    s = _as_str(path, v)
    if not s.strip():
        raise ConfigError(f"{path} must not be empty")
    if s.startswith("builtin:"):
        name = s.split(":", 1)[1]
        if name not in BUILTIN_2D + BUILTIN_IMAGES:
            known = ", ".join(BUILTIN_2D + BUILTIN_IMAGES)
            raise ConfigError(f"{path}: unknown built-in dataset {name!r} (known: {known})")
    return s


def _parse_data(raw: dict) -> DataConfig:
    p = "data"
    d = DataConfig()
    raw = _check_keys(p, raw, DataConfig)
    if "source" in raw:
        d.source = _source(f"{p}.source", raw["source"], optional=False)
    if "dev_source" in raw:
        d.dev_source = _source(f"{p}.dev_source", raw["dev_source"], optional=True)
    if "test_source" in raw:
        d.test_source = _source(f"{p}.test_source", raw["test_source"], optional=True)
    if "n_samples" in raw:
        d.n_samples = _pos_int(f"{p}.n_samples", raw["n_samples"], minimum=4)
    if "noise" in raw:
        d.noise = _nonneg(f"{p}.noise", raw["noise"])
    if "n_classes" in raw:
        d.n_classes = _pos_int(f"{p}.n_classes", raw["n_classes"], minimum=2)
    if "image_size" in raw:
        size = _as_list(f"{p}.image_size", raw["image_size"], 2)
        d.image_size = [_pos_int(f"{p}.image_size[{i}]", s) for i, s in enumerate(size)]
        for i, s in enumerate(d.image_size):
            if s > 1024:
                raise ConfigError(f"{p}.image_size[{i}] must be ≤ 1024, got {s}")
    if "color" in raw:
        d.color = _as_str(f"{p}.color", raw["color"], ("rgb", "gray"))
    if "split" in raw:
        parts = _as_list(f"{p}.split", raw["split"])
        if len(parts) not in (2, 3):
            raise ConfigError(f"{p}.split must have 2 or 3 fractions (train, dev[, test]), got {len(parts)}")
        fr = [_prob(f"{p}.split[{i}]", v) for i, v in enumerate(parts)]
        if len(fr) == 2:
            fr.append(0.0)
        d.split = fr
    if "stratify" in raw:
        d.stratify = _as_bool(f"{p}.stratify", raw["stratify"])
    if "normalize" in raw:
        d.normalize = _as_str(f"{p}.normalize", raw["normalize"], ("standard", "none"))
    if "seed" in raw:
        d.seed = _as_int(f"{p}.seed", raw["seed"])
    _check_split(d.split)
    return d


def _check_split(split: list[float]) -> None:
    total = sum(split)
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"data.split fractions must add up to 1, got {total:g}")
    if split[0] <= 0:
        raise ConfigError("data.split[0] (train fraction) must be > 0")
    if split[1] <= 0:
        raise ConfigError("data.split[1] (dev fraction) must be > 0")


def _parse_augment(raw: dict) -> AugmentConfig:
    p = "augment"
    a = AugmentConfig()
    raw = _check_keys(p, raw, AugmentConfig)
    for name in ("hflip", "vflip"):
        if name in raw:
            setattr(a, name, _prob(f"{p}.{name}", raw[name]))
    if "rotate_deg" in raw:
        a.rotate_deg = _as_float(f"{p}.rotate_deg", raw["rotate_deg"])
        _check_range(f"{p}.rotate_deg", a.rotate_deg, 0.0, 180.0, False, False)
    if "zoom" in raw:
        z = _as_list(f"{p}.zoom", raw["zoom"], 2)
        lo, hi = (_as_float(f"{p}.zoom[{i}]", v) for i, v in enumerate(z))
        _check_range(f"{p}.zoom[0]", lo, 0.0, 4.0, True, False)
        _check_range(f"{p}.zoom[1]", hi, 0.0, 4.0, True, False)
        if lo > hi:
            raise ConfigError(f"{p}.zoom[0] must be ≤ {p}.zoom[1], got [{lo:g}, {hi:g}]")
        a.zoom = [lo, hi]
    if "translate" in raw:
        a.translate = _as_float(f"{p}.translate", raw["translate"])
        _check_range(f"{p}.translate", a.translate, 0.0, 0.5, False, False)
    if "crop_padding" in raw:
        a.crop_padding = _as_int(f"{p}.crop_padding", raw["crop_padding"])
        if not 0 <= a.crop_padding <= 64:
            raise ConfigError(f"{p}.crop_padding must be in [0, 64], got {a.crop_padding}")
    if "noise_std" in raw:
        a.noise_std = _as_float(f"{p}.noise_std", raw["noise_std"])
        _check_range(f"{p}.noise_std", a.noise_std, 0.0, 1.0, False, False)
    for name in ("brightness", "contrast"):
        if name in raw:
            v = _as_float(f"{p}.{name}", raw[name])
            _check_range(f"{p}.{name}", v, 0.0, 1.0, False, False)
            setattr(a, name, v)
    return a


def _parse_model(raw: dict) -> ModelConfig:
    p = "model"
    m = ModelConfig()
    raw = _check_keys(p, raw, ModelConfig)
    if "hidden" in raw:
        hidden = _as_list(f"{p}.hidden", raw["hidden"])
        m.hidden = [_pos_int(f"{p}.hidden[{i}]", h) for i, h in enumerate(hidden)]
        for i, h in enumerate(m.hidden):
            if h > 8192:
                raise ConfigError(f"{p}.hidden[{i}] must be ≤ 8192, got {h}")
        if len(m.hidden) > 20:
            raise ConfigError(f"{p}.hidden may have at most 20 layers, got {len(m.hidden)}")
    if "activation" in raw:
        m.activation = _as_str(f"{p}.activation", raw["activation"], ACTIVATIONS)
    if "init" in raw:
        m.init = _as_str(f"{p}.init", raw["init"], INITS)
    if "init_scale" in raw:
        m.init_scale = _nonneg(f"{p}.init_scale", raw["init_scale"])
    return m


def _parse_regularization(raw: dict, n_hidden: int) -> RegularizationConfig:
    p = "regularization"
    r = RegularizationConfig()
    raw = _check_keys(p, raw, RegularizationConfig)
    if "l2" in raw:
        r.l2 = _nonneg(f"{p}.l2", raw["l2"])
    if "l1" in raw:
        r.l1 = _nonneg(f"{p}.l1", raw["l1"])
    if "keep_prob" in raw:
        kp = raw["keep_prob"]
        if isinstance(kp, (list, tuple)):
            if len(kp) != n_hidden:
                raise ConfigError(
                    f"{p}.keep_prob has {len(kp)} entries but model.hidden has {n_hidden} layers"
                )
            r.keep_prob = [_prob(f"{p}.keep_prob[{i}]", v, zero_ok=False) for i, v in enumerate(kp)]
        else:
            r.keep_prob = _prob(f"{p}.keep_prob", kp, zero_ok=False)
    if "input_keep_prob" in raw:
        r.input_keep_prob = _prob(f"{p}.input_keep_prob", raw["input_keep_prob"], zero_ok=False)
    return r


def _parse_early_stopping(raw: dict) -> EarlyStoppingConfig:
    p = "early_stopping"
    e = EarlyStoppingConfig()
    raw = _check_keys(p, raw, EarlyStoppingConfig)
    if "enabled" in raw:
        e.enabled = _as_bool(f"{p}.enabled", raw["enabled"])
    if "monitor" in raw:
        e.monitor = _as_str(f"{p}.monitor", raw["monitor"], MONITORS)
    if "patience" in raw:
        e.patience = _pos_int(f"{p}.patience", raw["patience"])
    if "min_delta" in raw:
        e.min_delta = _nonneg(f"{p}.min_delta", raw["min_delta"])
    if "restore_best" in raw:
        e.restore_best = _as_bool(f"{p}.restore_best", raw["restore_best"])
    return e


def _parse_optimizer(raw: dict) -> OptimizerConfig:
    p = "optimizer"
    o = OptimizerConfig()
    raw = _check_keys(p, raw, OptimizerConfig)
    if "name" in raw:
        o.name = _as_str(f"{p}.name", raw["name"], OPTIMIZERS)
    if "lr" in raw:
        o.lr = _positive(f"{p}.lr", raw["lr"])
        if o.lr > 100:
            raise ConfigError(f"{p}.lr must be ≤ 100, got {o.lr:g}")
    if "momentum" in raw:
        o.momentum = _as_float(f"{p}.momentum", raw["momentum"])
        _check_range(f"{p}.momentum", o.momentum, 0.0, 1.0, False, True)
    for name in ("beta1", "beta2"):
        if name in raw:
            v = _as_float(f"{p}.{name}", raw[name])
            _check_range(f"{p}.{name}", v, 0.0, 1.0, False, True)
            setattr(o, name, v)
    if "epsilon" in raw:
        o.epsilon = _positive(f"{p}.epsilon", raw["epsilon"])
    return o


def _parse_training(raw: dict) -> TrainingConfig:
    p = "training"
    t = TrainingConfig()
    raw = _check_keys(p, raw, TrainingConfig)
    if "epochs" in raw:
        t.epochs = _pos_int(f"{p}.epochs", raw["epochs"])
        if t.epochs > 100_000:
            raise ConfigError(f"{p}.epochs must be ≤ 100000, got {t.epochs}")
    if "batch_size" in raw:
        t.batch_size = _pos_int(f"{p}.batch_size", raw["batch_size"])
    if "seed" in raw:
        t.seed = _as_int(f"{p}.seed", raw["seed"])
    if "dtype" in raw:
        t.dtype = _as_str(f"{p}.dtype", raw["dtype"], DTYPES)
    return t


def _parse_diagnosis(raw: dict) -> DiagnosisConfig:
    p = "diagnosis"
    d = DiagnosisConfig()
    raw = _check_keys(p, raw, DiagnosisConfig)
    if "human_error" in raw:
        d.human_error = _prob(f"{p}.human_error", raw["human_error"])
    return d


def from_dict(raw: Any) -> ExperimentConfig:
    """Build a validated config from a (possibly partial) dict; raises ConfigError."""
    raw = _check_keys("", raw, ExperimentConfig)
    model = _parse_model(raw.get("model", {}))
    return ExperimentConfig(
        data=_parse_data(raw.get("data", {})),
        augment=_parse_augment(raw.get("augment", {})),
        model=model,
        regularization=_parse_regularization(raw.get("regularization", {}), len(model.hidden)),
        early_stopping=_parse_early_stopping(raw.get("early_stopping", {})),
        optimizer=_parse_optimizer(raw.get("optimizer", {})),
        training=_parse_training(raw.get("training", {})),
        diagnosis=_parse_diagnosis(raw.get("diagnosis", {})),
    )


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """Re-validate a config edited in place (e.g. by the GUI); returns a clean copy."""
    return from_dict(cfg.to_dict())


def from_json(text: str, name: str = "config") -> ExperimentConfig:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    return from_dict(raw)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a JSON config file; errors name the file."""
    from engine.jsonfile import read_json_file  # the one reader of untrusted JSON: bounded, one-line errors

    path = Path(path)
    raw = read_json_file(path, what="config file", max_bytes=1 << 20, error=ConfigError)
    try:
        return from_dict(raw)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
