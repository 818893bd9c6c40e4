"""Early stopping bookkeeping: which epoch is best, and when patience has run out.

A small pure class with no arrays: the trainer feeds it one monitored value per epoch and
keeps the best weights itself. ``dev_loss`` is better when lower, ``dev_acc`` when higher;
an epoch counts as an improvement only when it beats the best value by *more than*
``min_delta``. The first finite value is always an improvement.

NaN or infinite values are never an improvement. When *every* value so far is NaN (say,
dev data holding NaN), no epoch is best: ``best_epoch`` stays 0, patience still runs out
after ``patience`` epochs, and nothing is restored — the run keeps its last epoch's
weights, its summary has ``best_epoch`` 0 and ``best_metrics`` null, and the trainer adds
the ``dev_not_finite`` warning. Keras' ``EarlyStopping(restore_best_weights=True)``
restores the *first* epoch's weights in this case; we do not, because a NaN metric says
nothing about which epoch is better, and restoring one would make the summary name a best
epoch that was never measured.
"""

from __future__ import annotations

import math

from engine.config import EarlyStoppingConfig

LOWER_IS_BETTER = {"dev_loss": True, "dev_acc": False}


class EarlyStopping:
    """Tracks the best epoch by ``monitor``; ``should_stop`` after ``patience`` epochs without improvement.

    Also used with ``enabled=False`` to mark the best epoch for the summary and the curves;
    then it never asks to stop.
    """

    def __init__(
        self,
        monitor: str = "dev_loss",
        patience: int = 10,
        min_delta: float = 0.0,
        enabled: bool = True,
        restore_best: bool = True,
    ):
        if monitor not in LOWER_IS_BETTER:
            raise ValueError(f"monitor must be one of {', '.join(LOWER_IS_BETTER)}, got {monitor!r}")
        if patience < 1:
            raise ValueError(f"patience must be ≥ 1, got {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be ≥ 0, got {min_delta}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.enabled = bool(enabled)
        self.restore_best = bool(restore_best) and self.enabled
        self.lower_is_better = LOWER_IS_BETTER[monitor]
        self.best_value: float | None = None
        self.best_epoch: int = 0  # 0 = no epoch seen yet
        self.epochs_without_improvement = 0

    @classmethod
    def from_config(cls, cfg: EarlyStoppingConfig) -> EarlyStopping:
        return cls(cfg.monitor, cfg.patience, cfg.min_delta, cfg.enabled, cfg.restore_best)

    def is_improvement(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best_value is None:
            return True
        if self.lower_is_better:
            return value < self.best_value - self.min_delta
        return value > self.best_value + self.min_delta

    def update(self, epoch: int, value: float) -> bool:
        """Record the monitored value of an epoch; returns True when it is the new best."""
        if self.is_improvement(value):
            self.best_value = float(value)
            self.best_epoch = int(epoch)
            self.epochs_without_improvement = 0
            return True
        self.epochs_without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.enabled and self.epochs_without_improvement >= self.patience

    def stop_message(self) -> str:
        """Why training stopped, e.g. 'dev_loss did not improve by more than 0 for 10 epochs; best 0.312 at epoch 14'."""
        if self.best_value is None:
            return (
                f"{self.monitor} was never a finite number in {self.epochs_without_improvement} epochs, "
                "so no epoch is best"
            )
        best = f"{self.best_value:.4g}"
        return (
            f"{self.monitor} did not improve by more than {self.min_delta:g} for "
            f"{self.epochs_without_improvement} epochs; best {best} at epoch {self.best_epoch}"
        )
