"""Train / dev / test splits: seeded, optionally stratified, with deterministic rounding.

Sizes: the total of every set is ``n · fraction`` rounded by the largest-remainder method
(floors first, the leftover examples go to the sets with the largest fractional parts, ties
to the earlier set), so the sizes always add up to ``n`` and each set gets its share.
Stratified splits also round every class by largest remainder, under the constraint that
the per-class counts add up to those set totals; so every set keeps the class proportions
as closely as whole examples allow.

Refusals (``DataError`` naming ``data.split``): a set with a non-zero fraction that would
be empty, a class with no training example, and, when stratified, a class missing from
the dev or test set although that set is in use. The membership within a class (which
examples go where) is drawn from the Generator passed in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.errors import DataError

SET_NAMES = ("train", "dev", "test")


def split_rng(seed: int) -> np.random.Generator:
    """The Generator a split with data.seed uses (its own stream, apart from data generation)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED5])


def train_subset_rng(seed: int) -> np.random.Generator:
    """The Generator ``data.train_limit``'s subset uses (a stream of its own, apart from the split)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x71D17])


def train_subset(
    y: np.ndarray,
    limit: int,
    stratify: bool,
    rng: np.random.Generator,
    classes: Sequence[str] | None = None,
    check: bool = True,
) -> np.ndarray:
    """Positions ``(min(limit, n),)`` into the training labels y ``(n,)``: the examples kept by
    ``data.train_limit`` (learning curves), sorted int64.

    Stratified: every class keeps its share, ``limit · n_c / n`` rounded by largest remainder
    (as a split rounds). Otherwise a seeded random subset. Within a class the kept examples are
    a prefix of one seeded permutation, so a smaller limit keeps a subset of what a larger one
    keeps (up to a shift of one example between classes where the rounding moves it). A limit
    of n or more keeps every example. Raises DataError naming ``data.train_limit`` when a class
    would keep no example, unless check=False.
    """
    y = np.asarray(y)
    n = len(y)
    if limit >= n:
        return np.arange(n, dtype=np.int64)
    names = _class_names(y, classes)
    sizes = np.bincount(y, minlength=len(names)) if n else np.zeros(len(names), np.int64)
    if stratify:
        counts = largest_remainder(int(limit), sizes)
        parts = []
        for c in range(len(names)):
            members = np.flatnonzero(y == c)
            parts.append(members[rng.permutation(len(members))[: counts[c]]])
        keep = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    else:
        keep = rng.permutation(n)[:limit]
        counts = np.bincount(y[keep], minlength=len(names))
    if check:
        for c, name in enumerate(names):
            if sizes[c] > 0 and counts[c] == 0:
                raise DataError(
                    f"data.train_limit {limit} leaves class {name!r} with no training examples "
                    f"(it has {int(sizes[c])} of the {n}); use a larger limit"
                    + ("" if stratify else " or stratify")
                )
    return np.sort(keep).astype(np.int64)


def split_label(fractions: Sequence[float]) -> str:
    """``(0.98, 0.01, 0.01)`` -> ``"98/1/1"``; a zero test fraction is left out (``"70/30"``)."""
    fr = _fractions(fractions)
    parts = fr if fr[2] > 0 else fr[:2]
    return "/".join(f"{100 * f:.4g}" for f in parts)


def largest_remainder(n: int, fractions: Sequence[float]) -> np.ndarray:
    """Integer counts ``(len(fractions),)`` adding up to n, proportional to fractions."""
    fr = np.asarray(fractions, dtype=np.float64)
    quota = n * fr / fr.sum()
    counts = np.floor(quota + 1e-9).astype(np.int64)
    rest = n - int(counts.sum())
    if rest > 0:
        remainder = quota - counts
        # stable sort on -remainder: ties go to the earlier set (train before dev before test)
        order = np.argsort(-remainder, kind="stable")
        counts[order[:rest]] += 1
    return counts


def allocate(class_sizes: Sequence[int], fractions: Sequence[float], stratify: bool) -> np.ndarray:
    """Per-class, per-set counts ``(n_classes, 3)``; rows add up to class_sizes.

    Set totals (column sums) are the largest-remainder shares of the whole set. Stratified:
    each cell starts at floor(n_c · f_s) and the leftover units go to the cells with the
    largest fractional parts whose row and column still lack examples. Not stratified:
    only the column sums are fixed here (the class mix comes from the shuffle), and the
    returned rows are the expected counts, not used for sampling.
    """
    fr = _fractions(fractions)
    sizes = np.asarray(class_sizes, dtype=np.int64)
    totals = largest_remainder(int(sizes.sum()), fr)
    if not stratify:
        return (
            np.vstack([largest_remainder(int(s), fr) for s in sizes])
            if len(sizes)
            else np.zeros((0, 3), np.int64)
        )
    quota = sizes[:, None] * fr[None, :]
    cells = np.floor(quota + 1e-9).astype(np.int64)
    row_need = sizes - cells.sum(axis=1)
    col_need = totals - cells.sum(axis=0)
    remainder = (quota - cells).ravel()
    # Largest remainders first; ties broken by class then set, so the result is deterministic.
    for flat in np.argsort(-remainder, kind="stable"):
        c, s = divmod(int(flat), 3)
        if row_need[c] > 0 and col_need[s] > 0 and remainder[flat] > 0:
            cells[c, s] += 1
            row_need[c] -= 1
            col_need[s] -= 1
    # Whatever is left (rare: remainders exhausted) is paired up; totals of both agree.
    for c in range(len(sizes)):
        while row_need[c] > 0:
            s = int(np.argmax(col_need))
            cells[c, s] += 1
            row_need[c] -= 1
            col_need[s] -= 1
    return cells


def split_indices(
    y: np.ndarray,
    fractions: Sequence[float],
    stratify: bool,
    rng: np.random.Generator,
    classes: Sequence[str] | None = None,
    check: bool = True,
) -> dict[str, np.ndarray]:
    """Split the examples with labels y ``(n,)`` into train/dev/test index arrays.

    Returns ``{"train_idx", "dev_idx", "test_idx"}``, each int64 and sorted; together they
    cover ``range(n)`` exactly once. Raises DataError when a set or a class would be empty,
    unless check=False (a live display that shows the empty cells next to the error).
    """
    y = np.asarray(y)
    fr = _fractions(fractions)
    names = _class_names(y, classes)
    n_classes = len(names)
    sizes = np.bincount(y, minlength=n_classes) if len(y) else np.zeros(n_classes, np.int64)
    if check:
        _check_totals(len(y), fr)
    parts: list[list[np.ndarray]] = [[], [], []]
    if stratify:
        cells = allocate(sizes, fr, stratify=True)
        if check:
            _check_cells(cells, sizes, fr, names, stratified=True)
        for c in range(n_classes):
            members = np.flatnonzero(y == c)
            members = members[rng.permutation(len(members))]
            bounds = np.cumsum(cells[c])
            for s, chunk in enumerate(np.split(members, bounds[:-1])):
                parts[s].append(chunk)
    else:
        totals = largest_remainder(len(y), fr)
        order = rng.permutation(len(y))
        for s, chunk in enumerate(np.split(order, np.cumsum(totals)[:-1])):
            parts[s].append(chunk)
        train_counts = np.bincount(y[parts[0][0]], minlength=n_classes)
        cells = np.zeros((n_classes, 3), np.int64)
        cells[:, 0] = train_counts
        cells[:, 1:] = 1  # only train membership of classes is required without stratification
        if check:
            _check_cells(cells, sizes, fr, names, stratified=False)
    return {
        f"{name}_idx": np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64)
        for name, p in zip(SET_NAMES, parts)
    }


def split_counts(
    y: np.ndarray,
    fractions: Sequence[float],
    stratify: bool,
    seed: int,
    classes: Sequence[str] | None = None,
    check: bool = True,
) -> dict[str, dict[str, int]]:
    """Per-split, per-class counts ``{"train": {"cat": 40, ...}, "dev": ..., "test": ...}``.

    The same counts the split with ``split_rng(seed)`` gives (prepare uses that Generator).
    check=False returns the counts even for a split that would be refused (for a live
    display that shows the zeros next to the error).
    """
    y = np.asarray(y)
    names = _class_names(y, classes)
    idx = split_indices(y, fractions, stratify, split_rng(seed), names, check=check)
    return {
        s: {names[c]: int(v) for c, v in enumerate(np.bincount(y[idx[f"{s}_idx"]], minlength=len(names)))}
        for s in SET_NAMES
    }


# ---------------------------------------------------------------- helpers


def _fractions(fractions: Sequence[float]) -> np.ndarray:
    fr = [float(f) for f in fractions]
    if len(fr) == 2:
        fr.append(0.0)
    if len(fr) != 3 or any(not np.isfinite(f) or f < 0 for f in fr) or sum(fr) <= 0:
        raise DataError(
            f"data.split must be 2 or 3 non-negative fractions (train, dev[, test]), got {fractions!r}"
        )
    if fr[0] <= 0:
        raise DataError("data.split[0] (train fraction) must be > 0")
    arr = np.asarray(fr, dtype=np.float64)
    return arr / arr.sum()


def _class_names(y: np.ndarray, classes: Sequence[str] | None) -> list[str]:
    if y.size and (y.min() < 0 or not np.issubdtype(y.dtype, np.integer)):
        raise DataError("labels must be non-negative integers")
    n_classes = int(y.max()) + 1 if y.size else 0
    if classes is None:
        return [f"class {c}" for c in range(n_classes)]
    names = [str(c) for c in classes]
    if len(names) < n_classes:
        raise DataError(f"labels go up to {n_classes - 1} but only {len(names)} class names were given")
    return names


def _check_totals(n: int, fr: np.ndarray) -> None:
    totals = largest_remainder(n, fr)
    label = split_label(fr)
    for s, name in enumerate(SET_NAMES):
        if fr[s] > 0 and totals[s] == 0:
            raise DataError(
                f"data.split {label} leaves the {name} set empty ({n} examples × {fr[s]:.4g} = "
                f"{n * fr[s]:.3g}); use a larger {name} fraction or more data"
            )


def _check_cells(
    cells: np.ndarray, sizes: np.ndarray, fr: np.ndarray, names: list[str], stratified: bool
) -> None:
    label = split_label(fr)
    for c, name in enumerate(names):
        if sizes[c] == 0:
            raise DataError(f"class {name!r} has no examples; remove it or add data")
        for s, set_name in enumerate(SET_NAMES):
            if s > 0 and not stratified:
                continue
            if fr[s] > 0 and cells[c, s] == 0:
                tail = (
                    f"use a larger {set_name} fraction or more data"
                    if s > 0
                    else "use a larger train fraction, stratify, or more data"
                )
                raise DataError(
                    f"data.split {label} leaves class {name!r} with no {set_name} examples "
                    f"(it has only {int(sizes[c])}); {tail}"
                )
