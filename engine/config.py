"""The experiment config: one typed, validated, immutable dataclass tree shared by the CLI, GUI and run records.

Every field carries a :class:`Spec` in its dataclass metadata: its kind, range, choices and a
one-line help text. The validator, the command line's messages and the window's controls all
read the same spec, so both accept exactly the same configs (``field_spec("optimizer.lr")``).

Every field has a default, so a partial JSON file is filled in. Unknown keys and out-of-range
values raise :class:`ConfigError` with a message naming the field path, e.g.
``regularization.keep_prob[1] must be in [0.01, 1], got 0``. Config objects are frozen:
sequences are tuples, and a changed config is a new one (:func:`with_values`). Constructing a
section directly (``TrainingConfig(epochs=0)``) validates too.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import InputError

BUILTIN_2D = ("moons", "circles", "spiral", "blobs", "xor")
BUILTIN_IMAGES = ("shapes",)
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")
INITS = ("zeros", "random", "xavier", "glorot", "he", "lecun")
OUTPUTS = ("softmax", "sigmoid")
OPTIMIZERS = ("sgd", "momentum", "adam")
MONITORS = ("dev_loss", "dev_acc")
DTYPES = ("float32", "float64")
SPLIT_PRESETS = {"70/30": (0.7, 0.3, 0.0), "60/20/20": (0.6, 0.2, 0.2), "98/1/1": (0.98, 0.01, 0.01)}
MAX_SEED = 2**31 - 1  # numpy takes any non-negative int; 31 bits fit every Qt spin box
MAX_HIDDEN_LAYERS = 20
MAX_LAYER_WIDTH = 8192


class ConfigError(InputError, ValueError):
    """A config value is invalid; the message names the field path."""


@dataclass(frozen=True)
class Spec:
    """What one config field accepts, and how to present it.

    kind: ``float``, ``int``, ``bool``, ``choice``, ``source`` (a builtin name or a path),
    ``int_list`` (hidden sizes), ``float_pair`` (zoom), ``int_pair`` (image size),
    ``split`` (2 or 3 fractions), ``keep_prob`` (a fraction or one per hidden layer),
    ``shape3`` ([H, W, C]). ``lo``/``hi`` bound numbers and every element of a sequence
    (closed interval). ``nullable``: null is allowed. ``log``: a log scale suits the value
    (controls step by factors).
    """

    kind: str
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False
    log: bool = False
    decimals: int = 4  # digits a control shows for a float

    def range_text(self) -> str:
        return f"[{_num_text(self.lo)}, {_num_text(self.hi)}]"


def _spec(default: Any, kind: str, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"spec": Spec(kind, help, **kw)})


# ---------------------------------------------------------------- the tree


@dataclass(frozen=True)
class DataConfig:
    source: str = _spec(
        "builtin:moons",
        "source",
        "builtin:NAME, or a path: a class folder, a train/dev/test folder, .npz, MNIST idx or CIFAR-10 folder",
    )
    dev_source: str | None = _spec(
        None, "source", "a separate dev set (the mismatched-distribution case)", nullable=True
    )
    test_source: str | None = _spec(None, "source", "a separate test set", nullable=True)
    n_samples: int = _spec(
        1000, "int", "number of samples of a generated built-in set", lo=4, hi=1_000_000_000, log=True
    )
    noise: float = _spec(0.2, "float", "noise of a generated built-in set (σ of the jitter)", lo=0.0, hi=10.0)
    n_classes: int = _spec(
        3, "int", "classes of spiral arms, blobs or shapes (the others have 2)", lo=2, hi=50
    )
    image_size: tuple[int, int] = _spec((32, 32), "int_pair", "[H, W] images are resized to", lo=4, hi=1024)
    color: str = _spec("rgb", "choice", "images are converted to rgb or gray", choices=("rgb", "gray"))
    split: tuple[float, float, float] = _spec(
        (0.6, 0.2, 0.2), "split", "train, dev and test fractions (two numbers: no test set)", lo=0.0, hi=1.0
    )
    stratify: bool = _spec(True, "bool", "keep class proportions in every split")
    normalize: str = _spec(
        "standard",
        "choice",
        "standard: mean and std of the training split, applied to dev and test; none",
        choices=("standard", "none"),
    )
    seed: int = _spec(0, "int", "seed of data generation and the split", lo=0, hi=MAX_SEED)
    pixel_shape: tuple[int, int, int] | None = _spec(
        None,
        "shape3",
        "[H, W, C] of each row of a pixel CSV (null: inferred for square images)",
        nullable=True,
    )
    feature_scale: tuple[float, float] = _spec(
        (1.0, 1.0),
        "float_pair",
        "multiplies the two features of a generated 2-D set (features on very different scales)",
        lo=1e-3,
        hi=1e3,
        log=True,
    )
    test_noise: float | None = _spec(
        None,
        "float",
        "noise of a generated test_source (null: data.noise); another value shifts the test distribution",
        lo=0.0,
        hi=10.0,
        nullable=True,
    )
    train_limit: int | None = _spec(
        None,
        "int",
        "use at most this many training examples (learning curves); null: all",
        lo=1,
        hi=1_000_000_000,
        nullable=True,
        log=True,
    )

    def __post_init__(self) -> None:
        _validate_section("data", self)
        split = self.split
        total = sum(split)
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(f"data.split fractions must add up to 1, got {total:g}")
        if split[0] <= 0:
            raise ConfigError("data.split[0] (train fraction) must be > 0")
        if split[1] <= 0:
            raise ConfigError("data.split[1] (dev fraction) must be > 0")


@dataclass(frozen=True)
class AugmentConfig:
    hflip: float = _spec(0.0, "float", "probability of a horizontal flip", lo=0.0, hi=1.0, decimals=2)
    vflip: float = _spec(0.0, "float", "probability of a vertical flip", lo=0.0, hi=1.0, decimals=2)
    rotate_deg: float = _spec(
        0.0, "float", "rotation drawn uniformly in ± degrees", lo=0.0, hi=180.0, decimals=1
    )
    zoom: tuple[float, float] = _spec(
        (1.0, 1.0), "float_pair", "scale drawn uniformly in [lo, hi]", lo=0.25, hi=4.0, decimals=2
    )
    translate: float = _spec(
        0.0, "float", "shift drawn in ± this fraction of width and height", lo=0.0, hi=0.5, decimals=2
    )
    crop_padding: int = _spec(
        0, "int", "pad by this many pixels, then crop back at a random offset", lo=0, hi=64
    )
    noise_std: float = _spec(0.0, "float", "Gaussian pixel noise σ, on the 0..1 pixel scale", lo=0.0, hi=1.0)
    brightness: float = _spec(
        0.0, "float", "add a value drawn in ± this (0..1 pixel scale)", lo=0.0, hi=1.0, decimals=2
    )
    contrast: float = _spec(
        0.0, "float", "scale around the image mean by a factor in [1 − c, 1 + c]", lo=0.0, hi=1.0, decimals=2
    )

    def __post_init__(self) -> None:
        _validate_section("augment", self)
        lo, hi = self.zoom
        if lo > hi:
            raise ConfigError(f"augment.zoom[0] must be ≤ augment.zoom[1], got [{lo:g}, {hi:g}]")


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] = _spec(
        (64, 32), "int_list", "hidden layer sizes, input to output", lo=1, hi=MAX_LAYER_WIDTH
    )
    activation: str = _spec("relu", "choice", "activation of the hidden layers", choices=ACTIVATIONS)
    init: str = _spec("he", "choice", "how the weights are initialized", choices=INITS)
    init_scale: float = _spec(
        1.0,
        "float",
        "multiplies the initial weights (large explode, small vanish)",
        lo=0.0,
        hi=1000.0,
        log=True,
    )
    output: str = _spec(
        "softmax",
        "choice",
        "softmax over the classes, or (two classes only) one sigmoid unit with binary cross-entropy",
        choices=OUTPUTS,
    )

    def __post_init__(self) -> None:
        _validate_section("model", self)


@dataclass(frozen=True)
class RegularizationConfig:
    l2: float = _spec(
        0.0, "float", "λ of (λ / 2m)·Σ‖W‖²_F, m = training examples", lo=0.0, hi=1000.0, log=True
    )
    l1: float = _spec(0.0, "float", "λ₁ of (λ₁ / m)·Σ|W|", lo=0.0, hi=1000.0, log=True)
    keep_prob: float | tuple[float, ...] = _spec(
        1.0,
        "keep_prob",
        "inverted-dropout keep probability: one for every hidden layer, or one per hidden layer",
        lo=0.01,
        hi=1.0,
        decimals=2,
    )
    input_keep_prob: float = _spec(
        1.0, "float", "dropout keep probability of the inputs", lo=0.01, hi=1.0, decimals=2
    )

    def __post_init__(self) -> None:
        _validate_section("regularization", self)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    enabled: bool = _spec(False, "bool", "stop when the monitored dev metric stops improving")
    monitor: str = _spec(
        "dev_loss", "choice", "dev_loss (lower is better) or dev_acc (higher is better)", choices=MONITORS
    )
    patience: int = _spec(10, "int", "epochs without improvement before stopping", lo=1, hi=100_000)
    min_delta: float = _spec(0.0, "float", "smallest change that counts as an improvement", lo=0.0, hi=100.0)
    restore_best: bool = _spec(True, "bool", "put the best epoch's weights back at the end")

    def __post_init__(self) -> None:
        _validate_section("early_stopping", self)


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = _spec("adam", "choice", "sgd, momentum or adam", choices=OPTIMIZERS)
    lr: float = _spec(0.001, "float", "learning rate α", lo=1e-7, hi=100.0, log=True)
    momentum: float = _spec(
        0.9, "float", "β of momentum: v = βv + (1 − β)·dW (the course's form)", lo=0.0, hi=0.9999
    )
    beta1: float = _spec(0.9, "float", "Adam first-moment decay β₁", lo=0.0, hi=0.9999)
    beta2: float = _spec(0.999, "float", "Adam second-moment decay β₂", lo=0.0, hi=0.9999)
    epsilon: float = _spec(1e-8, "float", "Adam denominator guard ε", lo=1e-10, hi=1.0, log=True)

    def __post_init__(self) -> None:
        _validate_section("optimizer", self)


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = _spec(100, "int", "passes over the training set", lo=1, hi=100_000, log=True)
    batch_size: int = _spec(
        64, "int", "examples per step; ≥ the training set size means full-batch gradient descent", lo=1,
        hi=1_000_000, log=True,
    )  # fmt: skip
    seed: int = _spec(
        0, "int", "seed of initialization, shuffling, dropout and augmentation", lo=0, hi=MAX_SEED
    )
    dtype: str = _spec("float32", "choice", "float32 (fast) or float64 (gradient checking)", choices=DTYPES)

    def __post_init__(self) -> None:
        _validate_section("training", self)


@dataclass(frozen=True)
class DiagnosisConfig:
    human_error: float | None = _spec(
        None,
        "float",
        "human-level (Bayes proxy) error, a fraction; null: estimated for generated 2-D sets, else 0",
        lo=0.0,
        hi=1.0,
        nullable=True,
    )

    def __post_init__(self) -> None:
        _validate_section("diagnosis", self)


SECTIONS = (
    "data",
    "augment",
    "model",
    "regularization",
    "early_stopping",
    "optimizer",
    "training",
    "diagnosis",
)


@dataclass(frozen=True)
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    diagnosis: DiagnosisConfig = field(default_factory=DiagnosisConfig)

    def __post_init__(self) -> None:
        kp = self.regularization.keep_prob
        n_hidden = len(self.model.hidden)
        if isinstance(kp, tuple) and len(kp) != n_hidden:
            raise ConfigError(
                f"regularization.keep_prob has {len(kp)} entries but model.hidden has {n_hidden} layers"
            )

    def keep_probs(self) -> list[float]:
        """keep_prob expanded to one value per hidden layer."""
        kp = self.regularization.keep_prob
        if isinstance(kp, tuple):
            return [float(v) for v in kp]
        return [float(kp)] * len(self.model.hidden)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def copy(self) -> ExperimentConfig:
        return self  # immutable: a copy is the object itself

    def get(self, path: str) -> Any:
        """The value at a dotted path, e.g. ``cfg.get("optimizer.lr")``."""
        section, name = _split_path(path)
        return getattr(getattr(self, section), name)

    def replace(self, **values: Any) -> ExperimentConfig:
        """A validated copy with dotted-path values changed: ``cfg.replace(**{"optimizer.lr": 0.1})``."""
        return with_values(self, values)


# ---------------------------------------------------------------- metadata access


def _split_path(path: str) -> tuple[str, str]:
    section, _, name = path.partition(".")
    if section not in SECTIONS or not name:
        raise ConfigError(f"{path} is not a config field")
    return section, name


def _section_class(section: str) -> type:
    return {f.name: f.default_factory for f in dataclasses.fields(ExperimentConfig)}[section]


def field_spec(path: str) -> Spec:
    """The Spec of a dotted field path such as ``"regularization.l2"``."""
    section, name = _split_path(path)
    for f in dataclasses.fields(_section_class(section)):
        if f.name == name:
            return f.metadata["spec"]
    raise ConfigError(f"{path} is not a config field")


def iter_fields() -> Iterator[tuple[str, Spec, Any]]:
    """(dotted path, spec, default) of every config field, in config order."""
    for section in SECTIONS:
        for f in dataclasses.fields(_section_class(section)):
            yield f"{section}.{f.name}", f.metadata["spec"], f.default


def with_values(cfg: ExperimentConfig, values: Mapping[str, Any]) -> ExperimentConfig:
    """A new validated config with some dotted-path fields changed (several at once, so fields
    that must agree, such as model.hidden and a per-layer keep_prob, change together)."""
    raw = cfg.to_dict()
    for path, value in values.items():
        section, name = _split_path(path)
        if name not in raw[section]:
            raise ConfigError(f"{path} is not a config field")
        raw[section][name] = _plain(value)
    return from_dict(raw)


# ---------------------------------------------------------------- validation


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _num_text(x: float | None) -> str:
    if x is None:
        return "?"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:g}"


def _digits(n: int) -> int:
    """Decimal digits of a huge int without str() (which refuses more than 4300 digits)."""
    return int(abs(n).bit_length() * math.log10(2)) + 1


def _show(v: Any, limit: int = 60) -> str:
    """repr of a bad value for a message, shortened (a config can hold huge values)."""
    try:
        text = repr(v)
    except (ValueError, RecursionError):  # a 5000-digit int has no repr; deep nesting neither
        text = f"a {type(v).__name__}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_float(path: str, v: Any) -> float:
    if not _is_number(v):
        raise ConfigError(f"{path} must be a number, got {_show(v)}")
    try:
        x = float(v)
    except OverflowError:
        raise ConfigError(f"{path} is far too large, got a {_digits(v)}-digit number") from None
    if not math.isfinite(x):
        raise ConfigError(f"{path} must be finite, got {_show(v)}")
    return x


def _as_int(path: str, v: Any) -> int:
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ConfigError(f"{path} must be an integer, got {_show(v)}")
    return v


def _check_range(path: str, x: float, spec: Spec) -> None:
    if (spec.lo is not None and x < spec.lo) or (spec.hi is not None and x > spec.hi):
        shown = (
            f"{x:g}"
            if isinstance(x, float)
            else (str(x) if abs(x) < 10**15 else f"a {_digits(x)}-digit number")
        )
        raise ConfigError(f"{path} must be in {spec.range_text()}, got {shown}")


def _number(path: str, v: Any, spec: Spec, integer: bool) -> float | int:
    x = _as_int(path, v) if integer else _as_float(path, v)
    _check_range(path, x, spec)
    return x


def _as_seq(path: str, v: Any, lengths: tuple[int, ...] | None = None) -> list:
    if not isinstance(v, (list, tuple)):
        raise ConfigError(f"{path} must be a list, got {_show(v)}")
    if lengths is not None and len(v) not in lengths:
        want = " or ".join(str(n) for n in lengths)
        raise ConfigError(f"{path} must have {want} entries, got {len(v)}")
    return list(v)


def _source(path: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{path} must be a string, got {_show(v)}")
    if not v.strip():
        raise ConfigError(f"{path} must not be empty")
    if "\x00" in v:
        raise ConfigError(f"{path} must not contain a NUL character")
    if v.startswith("builtin:"):
        name = v.split(":", 1)[1]
        if name not in BUILTIN_2D + BUILTIN_IMAGES:
            known = ", ".join(BUILTIN_2D + BUILTIN_IMAGES)
            raise ConfigError(f"{path}: unknown built-in dataset {_show(name)} (known: {known})")
    return v


def coerce_value(path: str, v: Any, spec: Spec) -> Any:
    """Check one raw value against its spec; returns it in canonical form (tuples, floats)."""
    if v is None:
        if spec.nullable:
            return None
        raise ConfigError(f"{path} must not be null")
    kind = spec.kind
    if kind == "float":
        return float(_number(path, v, spec, integer=False))
    if kind == "int":
        return int(_number(path, v, spec, integer=True))
    if kind == "bool":
        if not isinstance(v, bool):
            raise ConfigError(f"{path} must be true or false, got {_show(v)}")
        return v
    if kind == "choice":
        if not isinstance(v, str) or v not in spec.choices:
            raise ConfigError(f"{path} must be one of {', '.join(spec.choices)}; got {_show(v)}")
        return v
    if kind == "source":
        return _source(path, v)
    if kind == "int_list":
        items = _as_seq(path, v)
        if len(items) > MAX_HIDDEN_LAYERS:
            raise ConfigError(f"{path} may have at most {MAX_HIDDEN_LAYERS} layers, got {len(items)}")
        return tuple(int(_number(f"{path}[{i}]", x, spec, integer=True)) for i, x in enumerate(items))
    if kind in ("float_pair", "int_pair"):
        items = _as_seq(path, v, (2,))
        integer = kind == "int_pair"
        return tuple(_number(f"{path}[{i}]", x, spec, integer) for i, x in enumerate(items))
    if kind == "shape3":
        items = _as_seq(path, v, (3,))
        h, w = (
            int(_number(f"{path}[{i}]", x, Spec("int", "", lo=1, hi=4096), True))
            for i, x in enumerate(items[:2])
        )
        c = _as_int(f"{path}[2]", items[2])
        if c not in (1, 3):
            raise ConfigError(f"{path}[2] (channels) must be 1 or 3, got {_show(c)}")
        return (h, w, c)
    if kind == "split":
        items = _as_seq(path, v, (2, 3))
        fr = [float(_number(f"{path}[{i}]", x, spec, integer=False)) for i, x in enumerate(items)]
        return tuple(fr + [0.0] * (3 - len(fr)))
    if kind == "keep_prob":
        if isinstance(v, (list, tuple)):
            return tuple(float(_number(f"{path}[{i}]", x, spec, integer=False)) for i, x in enumerate(v))
        return float(_number(path, v, spec, integer=False))
    raise AssertionError(f"unknown spec kind {kind!r}")  # a programming error, not user input


def _validate_section(section: str, obj: Any) -> None:
    """Check and canonicalize every field of a (frozen) section in place."""
    for f in dataclasses.fields(obj):
        value = coerce_value(f"{section}.{f.name}", getattr(obj, f.name), f.metadata["spec"])
        object.__setattr__(obj, f.name, value)


def _check_keys(path: str, raw: Any, cls: type) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'config'} must be a JSON object, got {type(raw).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            where = f"{path}.{key}" if path else str(key)
            where = where if len(where) <= 80 else where[:79] + "…"
            raise ConfigError(f"{where} is not a known setting (known: {', '.join(sorted(names))})")
    return raw


def from_dict(raw: Any) -> ExperimentConfig:
    """Build a validated config from a (possibly partial) dict; raises ConfigError naming the field."""
    raw = _check_keys("", raw, ExperimentConfig)
    sections = {}
    for section in SECTIONS:
        cls = _section_class(section)
        sections[section] = cls(**_check_keys(section, raw.get(section, {}), cls))
    return ExperimentConfig(**sections)


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """Re-validate a config (e.g. one built field by field); returns a clean equal config."""
    return from_dict(cfg.to_dict())


def from_json(text: str, name: str = "config") -> ExperimentConfig:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except (RecursionError, ValueError) as exc:  # deep nesting; an integer with too many digits
        raise ConfigError(f"{name}: not a usable config ({_show(str(exc), 80)})") from None
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
