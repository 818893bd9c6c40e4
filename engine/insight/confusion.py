"""Confusion matrix of a classifier, and the members of one of its cells.

Rows are the true class, columns the predicted class: ``M[t, p]`` counts the samples of
class t predicted as p, so the diagonal holds the correct predictions, ``M.sum()`` is
the set size and ``trace(M) / M.sum()`` the accuracy. The predicted class is the most
probable one of ``MLP.predict_proba``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.batches import EVAL_CHUNK, iter_network_input
from engine.network import MLP


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """int64 ``(n_classes, n_classes)``: ``M[t, p]`` = number of samples of true class t predicted as p."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in length")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} must hold class indices in [0, {n_classes})")
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def predicted_classes(probs: np.ndarray) -> np.ndarray:
    """The most probable class per row of probs ``(n, C)``: ``(n,)`` int64."""
    return np.argmax(probs, axis=1).astype(np.int64)


def predict_raw(
    net: MLP,
    X_raw: np.ndarray,
    norm_mean: np.ndarray,
    norm_std: np.ndarray,
    chunk_size: int = EVAL_CHUNK,
) -> np.ndarray:
    """Class probabilities ``(n, C)`` of raw samples X_raw ``(n, ...)`` (uint8 images or float vectors).

    Normalized chunk by chunk as evaluation normalizes them (``engine.batches``), then
    ``net.predict_proba``; a large image set never exists whole as float.
    """
    probs = np.empty((len(X_raw), net.n_classes), dtype=net.dtype)
    workspace = net.inference_workspace(min(max(len(X_raw), 1), chunk_size))
    for start, stop, F in iter_network_input(X_raw, norm_mean, norm_std, net.dtype, chunk_size):
        net.predict_proba(F, out=probs[start:stop], workspace=workspace)
    return probs


@dataclass(frozen=True)
class CellMembers:
    """The samples of one confusion-matrix cell, most confident first.

    indices ``(k,)`` into the evaluated set; probs ``(k, C)`` their predicted probabilities;
    confidence ``(k,)`` = the probability of the predicted class (``probs[:, pred_class]``).
    """

    true_class: int
    pred_class: int
    indices: np.ndarray
    probs: np.ndarray
    confidence: np.ndarray


def cell_members(
    y_true: np.ndarray, probs: np.ndarray, true_class: int, pred_class: int, limit: int | None = None
) -> CellMembers:
    """The samples of true class ``true_class`` predicted as ``pred_class`` (a click on cell M[t, p]).

    probs ``(n, C)`` from ``predict_proba`` (the prediction is its argmax). Sorted by the
    predicted class's probability, highest first (ties keep set order): in an off-diagonal
    cell the most confident mistakes come first. ``limit`` keeps only the first ones.
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    probs = np.asarray(probs)
    if probs.ndim != 2 or len(probs) != len(y_true):
        raise ValueError(f"probs must be (n, C) with n = {len(y_true)}, got {probs.shape}")
    c = probs.shape[1]
    if not (0 <= true_class < c and 0 <= pred_class < c):
        raise ValueError(f"classes must be in [0, {c}), got ({true_class}, {pred_class})")
    members = np.flatnonzero((y_true == true_class) & (predicted_classes(probs) == pred_class))
    confidence = probs[members, pred_class]
    order = np.argsort(-confidence, kind="stable")
    if limit is not None:
        order = order[: max(0, int(limit))]
    members = members[order]
    return CellMembers(int(true_class), int(pred_class), members, probs[members], probs[members, pred_class])
