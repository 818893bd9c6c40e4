"""What a sweep is: the varied config fields, how points are sampled, and the trials they make.

A sweep varies one or more config fields around a base config. Each ``--param`` names a
dotted config path (:func:`engine.config.field_spec`) and its values:

- ``FIELD=V1,V2,…`` — a list; each item is read as JSON when it parses (numbers, ``true``,
  ``null``), else as a string (``optimizer.name=sgd,adam``);
- ``FIELD=log:LO:HI:N`` / ``FIELD=lin:LO:HI:N`` — N values spaced evenly on a log / linear
  scale from LO to HI inclusive (rounded to 6 significant digits; rounded to integers and
  de-duplicated for integer fields). With random sampling N may be left out
  (``log:LO:HI``): values are then drawn from the continuous range;
- ``'FIELD=[…]'`` — a JSON list of values (for list-valued fields such as a per-layer
  ``regularization.keep_prob`` or whole architectures).

``model.hidden`` takes widths or architectures: ``model.hidden=64,128`` (and
``log:16:256:5``) means "every hidden layer this wide" (the base config's depth), and
``'model.hidden=[[64],[128,64]]'`` lists architectures. ``data.train_limit`` (the number of
training examples used; ``null`` = all) makes learning curves.

Points: the grid product of every parameter's values (``sampling="grid"``, in the order the
parameters were given), or ``budget`` points drawn at random (``sampling="random"``, seeded
by ``sample_seed``; list parameters pick uniformly among their values, ranges draw
log-uniformly / uniformly; duplicate points are drawn again). Each point runs ``seeds`` times
with ``training.seed = base seed + k`` (k = 0 … seeds − 1), so a sweep has points × seeds
trials. Every trial's config is built with ``ExperimentConfig.replace`` when the sweep is
defined, so a value the config refuses is reported up front naming its ``--param``.

Trial ids are derived from the trial's varied values and training seed alone (a readable
slug plus a hash of the canonical values): the same trial gets the same id whatever the
order of the parameters, which is what lets a re-run resume. ``sweep.json`` holds
:meth:`SweepDefinition.to_dict`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.config import ConfigError, ExperimentConfig, field_spec, from_dict

SWEEP_FORMAT = "reglab-sweep/1"
SAMPLINGS = ("grid", "random")
PRUNE_METHODS = ("halving",)
RANGE_KINDS = ("log", "lin")
MAX_TRIALS = 100_000  # a larger sweep is a typo, not a plan
_RANGE_FIELD_KINDS = ("float", "int", "keep_prob", "int_list")


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def canonical_json(obj: Any) -> str:
    """Compact, key-sorted JSON (tuples as lists): the form ids and comparisons are computed on."""
    return json.dumps(_plain_tree(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _plain_tree(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain_tree(v) for v in obj]
    return obj


def _sig6(x: float) -> float:
    return float(f"{x:.6g}")


@dataclass(frozen=True)
class SweepParam:
    """One varied field. values: canonical values as the config holds them (floats, ints,
    tuples for lists, None). range: ``(kind, lo, hi)`` when given as a range (random
    sampling draws from it when ``values`` is empty). text: the ``--param`` as given."""

    field: str
    values: tuple[Any, ...]
    text: str
    range: tuple[str, float, float] | None = None

    @property
    def name(self) -> str:
        """The field's last component (``l2``), for slugs and column titles."""
        return self.field.rsplit(".", 1)[-1]

    @property
    def log(self) -> bool:
        """Whether a log axis suits this parameter (a log range, or the field's spec says so)."""
        if self.range is not None:
            return self.range[0] == "log"
        return field_spec(self.field).log

    def to_dict(self) -> dict:
        return {
            "field": self.field,
            "text": self.text,
            "values": _plain(list(self.values)),
            "range": list(self.range) if self.range is not None else None,
        }


@dataclass(frozen=True)
class PruneSettings:
    """ASHA-style successive halving (engine.sweep_prune): rungs at min_epochs · eta^k epochs."""

    method: str = "halving"
    eta: int = 3
    min_epochs: int = 1

    def __post_init__(self) -> None:
        if self.method not in PRUNE_METHODS:
            raise ConfigError(f"--prune must be one of {', '.join(PRUNE_METHODS)}, got {self.method!r}")
        if not isinstance(self.eta, int) or isinstance(self.eta, bool) or not 2 <= self.eta <= 100:
            raise ConfigError(f"--eta must be an integer in [2, 100], got {self.eta!r}")
        if (
            not isinstance(self.min_epochs, int)
            or isinstance(self.min_epochs, bool)
            or not 1 <= self.min_epochs <= 100_000
        ):
            raise ConfigError(f"--min-epochs must be an integer in [1, 100000], got {self.min_epochs!r}")

    def to_dict(self) -> dict:
        return {"method": self.method, "eta": self.eta, "min_epochs": self.min_epochs}


@dataclass(frozen=True)
class Trial:
    """One training run of the sweep: the varied values (field -> canonical value) and its seed."""

    id: str
    values: Mapping[str, Any]
    seed: int
    point: int  # index of the point (trials of one point differ only in seed)

    def to_dict(self) -> dict:
        return {"id": self.id, "point": self.point, "seed": self.seed, "values": _plain_tree(self.values)}


@dataclass(frozen=True)
class SweepDefinition:
    """A validated sweep: base config, parameters, sampling, seeds, pruning and its trials.

    Build it with :func:`make_definition` (which validates and expands the trials)."""

    base: ExperimentConfig
    params: tuple[SweepParam, ...]
    sampling: str = "grid"
    budget: int | None = None
    sample_seed: int = 0
    seeds: int = 1
    prune: PruneSettings | None = None
    trials: tuple[Trial, ...] = field(default=())

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(p.field for p in self.params)

    def param(self, field_path: str) -> SweepParam:
        for p in self.params:
            if p.field == field_path:
                return p
        raise KeyError(field_path)

    def trial(self, trial_id: str) -> Trial:
        for t in self.trials:
            if t.id == trial_id:
                return t
        raise KeyError(trial_id)

    def trial_config(self, trial: Trial) -> ExperimentConfig:
        """The full config of one trial (base + varied values + its training seed)."""
        values = dict(trial.values)
        values["training.seed"] = trial.seed
        return self.base.replace(**values)

    def to_dict(self) -> dict:
        """sweep.json's content."""
        return {
            "format": SWEEP_FORMAT,
            "base_config": self.base.to_dict(),
            "params": [p.to_dict() for p in self.params],
            "sampling": self.sampling,
            "budget": self.budget,
            "sample_seed": self.sample_seed,
            "seeds": self.seeds,
            "prune": self.prune.to_dict() if self.prune is not None else None,
            "trials": [t.to_dict() for t in self.trials],
        }

    def difference(self, other: Mapping[str, Any]) -> str | None:
        """Why a stored sweep.json dict describes a different sweep (None when it is this one).

        The same sweep: the same base config, the same pruning and the same set of trial ids
        (so parameter order and value order do not matter)."""
        if not isinstance(other, Mapping) or other.get("format") != SWEEP_FORMAT:
            return "it is not a RegLab sweep definition"
        if canonical_json(other.get("base_config")) != canonical_json(self.base.to_dict()):
            try:
                old = from_dict(other.get("base_config"))
            except ConfigError:
                return "its base config is not valid"
            changed = [
                f"{s}.{k}"
                for s, sect in self.base.to_dict().items()
                for k, v in sect.items()
                if canonical_json(old.to_dict()[s][k]) != canonical_json(v)
            ]
            return f"its base config differs ({', '.join(changed[:4])}{', …' if len(changed) > 4 else ''})"
        mine = self.prune.to_dict() if self.prune is not None else None
        if canonical_json(other.get("prune")) != canonical_json(mine):
            return f"its pruning differs ({other.get('prune')} vs {mine})"
        theirs = {t.get("id") for t in other.get("trials") or [] if isinstance(t, Mapping)}
        ours = {t.id for t in self.trials}
        if theirs != ours:
            return (
                f"its trials differ ({len(ours - theirs)} new, {len(theirs - ours)} not in this sweep; "
                "check --param, --seeds, --sample, --budget and --seed)"
            )
        return None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SweepDefinition:
        """Rebuild a definition from sweep.json (trials re-expanded and checked against the file)."""
        if not isinstance(raw, Mapping) or raw.get("format") != SWEEP_FORMAT:
            raise ConfigError(f"not a RegLab sweep definition (format must be {SWEEP_FORMAT!r})")
        base = from_dict(raw.get("base_config"))
        params = []
        for p in raw.get("params") or []:
            rng = p.get("range")
            params.append(
                SweepParam(
                    field=p["field"],
                    values=tuple(_canonical(base, p["field"], v, p["text"]) for v in p.get("values") or []),
                    text=p["text"],
                    range=(rng[0], float(rng[1]), float(rng[2])) if rng else None,
                )
            )
        prune = raw.get("prune")
        definition = make_definition(
            base,
            params,
            sampling=raw.get("sampling", "grid"),
            budget=raw.get("budget"),
            sample_seed=raw.get("sample_seed", 0),
            seeds=raw.get("seeds", 1),
            prune=PruneSettings(**prune) if prune else None,
        )
        reason = definition.difference(raw)
        if reason is not None:
            raise ConfigError(f"sweep definition does not expand to its own trials: {reason}")
        return definition


# ---------------------------------------------------------------- parsing


def parse_param(text: str, base: ExperimentConfig) -> SweepParam:
    """``FIELD=SPEC`` (see the module docstring) -> SweepParam; ConfigError names ``--param TEXT``."""
    where = f"--param {text}"
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"{where}: expected FIELD=VALUES, e.g. regularization.l2=0,0.01,0.1")
    path, _, spec_text = text.partition("=")
    path, spec_text = path.strip(), spec_text.strip()
    try:
        field_spec(path)
    except ConfigError:
        raise ConfigError(
            f"{where}: {path or '(empty)'} is not a config field (e.g. regularization.l2)"
        ) from None
    if not spec_text:
        raise ConfigError(f"{where}: no values after '='")
    head = spec_text.split(":", 1)[0]
    if head in RANGE_KINDS and ":" in spec_text:
        return _parse_range(where, path, spec_text, base)
    if spec_text.startswith("["):
        try:
            items = json.loads(spec_text)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            raise ConfigError(f"{where}: not a valid JSON list ({exc})") from None
        if not isinstance(items, list):
            raise ConfigError(f"{where}: expected a JSON list of values")
    else:
        items = [_scalar(item.strip()) for item in spec_text.split(",")]
        if any(item == "" for item in items):
            raise ConfigError(f"{where}: an empty value in the list")
    return make_param(path, items, base, text=text)


def make_param(
    path: str, items: Sequence[Any], base: ExperimentConfig, text: str | None = None
) -> SweepParam:
    """A list parameter from raw values (what the window builds); each value checked by the config."""
    text = text if text is not None else f"{path}={json.dumps(_plain(list(items)))}"
    where = f"--param {text}"
    try:
        field_spec(path)
    except ConfigError:
        raise ConfigError(f"{where}: {path} is not a config field") from None
    if len(items) == 0:
        raise ConfigError(f"{where}: no values")
    values: list[Any] = []
    for item in items:
        v = _canonical(base, path, item, text)
        if v not in values:
            values.append(v)
    return SweepParam(path, tuple(values), text)


def make_range(
    path: str, kind: str, lo: float, hi: float, n: int | None, base: ExperimentConfig, text: str | None = None
) -> SweepParam:
    """A log/lin range parameter (n None: only for random sampling, drawn from [lo, hi])."""
    text = text if text is not None else f"{path}={kind}:{lo:g}:{hi:g}" + (f":{n}" if n is not None else "")
    where = f"--param {text}"
    spec = field_spec(path)
    if spec.kind not in _RANGE_FIELD_KINDS:
        raise ConfigError(f"{where}: {path} takes no range (a {spec.kind} field); list its values")
    if kind not in RANGE_KINDS:
        raise ConfigError(f"{where}: a range is log:LO:HI:N or lin:LO:HI:N")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(f"{where}: LO and HI must be finite numbers")
    if kind == "log" and (lo <= 0 or hi <= 0):
        raise ConfigError(f"{where}: a log range needs LO > 0 and HI > 0 (use lin: or list 0 separately)")
    integer = spec.kind in ("int", "int_list")
    # both ends must be values the field accepts
    for end in (lo, hi):
        _canonical(base, path, round(end) if integer else end, text)
    if n is None:
        return SweepParam(path, (), text, (kind, float(lo), float(hi)))
    if not 1 <= n <= MAX_TRIALS:
        raise ConfigError(f"{where}: N must be in [1, {MAX_TRIALS}], got {n}")
    raw = np.geomspace(lo, hi, n) if kind == "log" else np.linspace(lo, hi, n)
    items = [int(round(float(x))) if integer else _sig6(float(x)) for x in raw]
    param = make_param(path, items, base, text=text)
    return SweepParam(path, param.values, text, (kind, float(lo), float(hi)))


def _parse_range(where: str, path: str, spec_text: str, base: ExperimentConfig) -> SweepParam:
    parts = spec_text.split(":")
    if len(parts) not in (3, 4):
        raise ConfigError(f"{where}: a range is {parts[0]}:LO:HI:N (N values from LO to HI)")
    try:
        lo, hi = float(parts[1]), float(parts[2])
    except ValueError:
        raise ConfigError(f"{where}: LO and HI must be numbers") from None
    n = None
    if len(parts) == 4:
        try:
            n = int(parts[3])
        except ValueError:
            raise ConfigError(f"{where}: N must be a whole number, got {parts[3]!r}") from None
    return make_range(path, parts[0], lo, hi, n, base, text=f"{path}={spec_text}")


def _scalar(item: str) -> Any:
    try:
        return json.loads(item)
    except (json.JSONDecodeError, ValueError, RecursionError):
        return item


def _canonical(base: ExperimentConfig, path: str, item: Any, text: str) -> Any:
    """The value as the config holds it after validation (hidden widths expanded to the base depth)."""
    spec = field_spec(path)
    value = item
    if spec.kind == "int_list" and not isinstance(item, (list, tuple)):
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ConfigError(
                f"--param {text}: {path} takes widths (64) or architectures ([64, 32]), got {item!r}"
            )
        value = [item] * max(1, len(base.model.hidden))
    try:
        cfg = base.replace(**{path: value})
    except ConfigError as exc:
        raise ConfigError(f"--param {text}: {exc}") from None
    return cfg.get(path)


# ---------------------------------------------------------------- trials


def trial_id(values: Mapping[str, Any], seed: int) -> str:
    """A stable, filesystem-safe id: ``l2=0.01_seed=0-3fa2b9c1d0``.

    The slug (field names and values, shortened) is for people; the hash of the canonical
    values and seed makes ids unique and independent of parameter order."""
    digest = hashlib.sha1(canonical_json({"values": dict(values), "seed": int(seed)}).encode()).hexdigest()[
        :10
    ]
    parts = [f"{p.rsplit('.', 1)[-1]}={_slug_value(values[p])}" for p in sorted(values)]
    slug = re.sub(r"[^A-Za-z0-9.=,+_-]", "", "_".join([*parts, f"seed={seed}"]))
    if len(slug) > 60:
        slug = slug[:60].rstrip("_")
    return f"{slug}-{digest}"


def _slug_value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "x".join(_slug_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    if v is None:
        return "all"
    return str(v)


def make_definition(
    base: ExperimentConfig,
    params: Sequence[SweepParam],
    *,
    sampling: str = "grid",
    budget: int | None = None,
    sample_seed: int = 0,
    seeds: int = 1,
    prune: PruneSettings | None = None,
) -> SweepDefinition:
    """Validate the settings, expand the points and trials, and check every trial's config."""
    params = tuple(params)
    if not params:
        raise ConfigError("--param: give at least one parameter to vary (FIELD=VALUES)")
    seen: set[str] = set()
    for p in params:
        if p.field in seen:
            raise ConfigError(f"--param {p.text}: {p.field} is given twice")
        seen.add(p.field)
    if sampling not in SAMPLINGS:
        raise ConfigError(f"--sample must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    if not isinstance(seeds, int) or isinstance(seeds, bool) or not 1 <= seeds <= 1000:
        raise ConfigError(f"--seeds must be an integer in [1, 1000], got {seeds!r}")
    if "training.seed" in seen and seeds > 1:
        raise ConfigError("--param training.seed and --seeds > 1 cannot be combined: vary the seed one way")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
        raise ConfigError(f"--budget must be a positive integer, got {budget!r}")
    if not isinstance(sample_seed, int) or isinstance(sample_seed, bool) or sample_seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {sample_seed!r}")
    if sampling == "grid":
        for p in params:
            if not p.values:
                raise ConfigError(f"--param {p.text}: a grid needs N values (e.g. {p.text}:5)")
        points = [dict(zip((p.field for p in params), combo)) for combo in _product(params)]
        if budget is not None and len(points) > budget:
            raise ConfigError(
                f"--budget {budget}: the grid has {len(points)} points; raise --budget or use fewer values"
            )
    else:
        if budget is None:
            raise ConfigError("--sample random needs --budget N (the number of points to draw)")
        points = _random_points(params, base, budget, sample_seed)
    if len(points) * seeds > MAX_TRIALS:
        raise ConfigError(f"the sweep has {len(points) * seeds} trials; at most {MAX_TRIALS} are allowed")

    base_seed = base.training.seed
    trials: list[Trial] = []
    for i, point in enumerate(points):
        _check_point(base, params, point)
        for k in range(seeds):
            seed = int(point["training.seed"]) if "training.seed" in point else base_seed + k
            trials.append(Trial(trial_id(point, seed), point, seed, i))
    if len({t.id for t in trials}) != len(trials):  # only possible with repeated points: a bug
        raise ConfigError("--param: two trials have the same values and seed")
    if base_seed + seeds - 1 > field_spec("training.seed").hi:
        raise ConfigError("--seeds: training.seed + seeds − 1 exceeds the largest seed")
    return SweepDefinition(base, params, sampling, budget, sample_seed, seeds, prune, tuple(trials))


def _product(params: Sequence[SweepParam]):
    return itertools.product(*(p.values for p in params))


def _check_point(base: ExperimentConfig, params: Sequence[SweepParam], point: Mapping[str, Any]) -> None:
    """The point's values together must make a valid config (e.g. hidden depth vs a per-layer keep_prob)."""
    try:
        base.replace(**point)
    except ConfigError as exc:
        given = ", ".join(f"--param {p.text}" for p in params)
        raise ConfigError(
            f"{given}: the point {canonical_json(point)} is not a valid config: {exc}"
        ) from None


def _random_points(
    params: Sequence[SweepParam], base: ExperimentConfig, budget: int, seed: int
) -> list[dict[str, Any]]:
    rng = np.random.default_rng([int(seed), 0x5EE9])
    discrete = all(p.values for p in params)
    if discrete:
        size = math.prod(len(p.values) for p in params)
        if size <= budget:  # the whole grid is within budget: every point, once
            return [dict(zip((p.field for p in params), c)) for c in _product(params)]
    points: list[dict[str, Any]] = []
    keys: set[str] = set()
    attempts = 0
    while len(points) < budget and attempts < 100 * budget:
        attempts += 1
        point = {p.field: _draw(p, base, rng) for p in params}
        key = canonical_json(point)
        if key not in keys:
            keys.add(key)
            points.append(point)
    return points


def _draw(p: SweepParam, base: ExperimentConfig, rng: np.random.Generator) -> Any:
    if p.values:
        return p.values[int(rng.integers(len(p.values)))]
    kind, lo, hi = p.range
    a, b = min(lo, hi), max(lo, hi)
    x = math.exp(rng.uniform(math.log(a), math.log(b))) if kind == "log" else rng.uniform(a, b)
    spec = field_spec(p.field)
    x = int(round(x)) if spec.kind in ("int", "int_list") else _sig6(x)
    return _canonical(base, p.field, x, p.text)
