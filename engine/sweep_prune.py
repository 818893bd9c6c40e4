"""Early stopping of bad trials: asynchronous successive halving (ASHA-style), as a pure object.

Rungs are the epochs ``r, r·η, r·η², …`` (r = ``min_epochs``, η = ``eta``) below a trial's
last epoch. When a trial finishes a rung epoch it reports its dev loss, and the decision is
made at once, against every trial that has reached that rung so far (ASHA's asynchronous
rule, Li et al. 2020, in its "stopping" form as Optuna's SuccessiveHalvingPruner uses it):
with n trials at the rung (this one included), the trial continues when its dev loss is
among the best ``max(1, n // η)``; otherwise it is *pruned* (stops now, ``stop_reason``
``pruned``). So the first trial at a rung always continues, and later ones must beat a
growing field. A NaN / missing dev loss counts as +inf; ties continue.

The decisions depend on the order trials arrive, which is what makes the scheme
asynchronous (no trial waits for others). The sweep runner makes all decisions in one place
(the client), so they are consistent; on resume the rungs are refilled from the finished
trials' metrics (:meth:`SuccessiveHalving.record`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def rung_epochs(min_epochs: int, eta: int, max_epochs: int) -> tuple[int, ...]:
    """Rung epochs ``min_epochs · eta^k`` strictly below max_epochs (a rung at the last epoch decides nothing)."""
    rungs = []
    r = int(min_epochs)
    while r < max_epochs:
        rungs.append(r)
        r *= int(eta)
    return tuple(rungs)


@dataclass(frozen=True)
class RungDecision:
    """The verdict for one trial at one rung: promote (continue) or prune."""

    trial_id: str
    epoch: int
    value: float  # dev loss (inf for NaN)
    promote: bool
    rank: int  # 1 = best among the trials at this rung
    n: int  # trials that have reached this rung, this one included
    keep: int  # how many of them may continue: max(1, n // eta)
    eta: int

    def message(self) -> str:
        verb = "continues" if self.promote else "pruned"
        return (
            f"{verb} at epoch {self.epoch} by successive halving: dev loss {self.value:.4g} ranks "
            f"{self.rank} of {self.n} trials at this rung; the best {self.keep} (1/{self.eta}) continue"
        )


class SuccessiveHalving:
    """ASHA-style rung bookkeeping and decisions (see the module docstring)."""

    def __init__(self, eta: int = 3, min_epochs: int = 1):
        if eta < 2 or min_epochs < 1:
            raise ValueError("eta must be >= 2 and min_epochs >= 1")
        self.eta = int(eta)
        self.min_epochs = int(min_epochs)
        self._rungs: dict[int, dict[str, float]] = {}

    def rungs(self, max_epochs: int) -> tuple[int, ...]:
        return rung_epochs(self.min_epochs, self.eta, max_epochs)

    def is_rung(self, epoch: int) -> bool:
        r = self.min_epochs
        while r < epoch:
            r *= self.eta
        return r == epoch

    def values_at(self, epoch: int) -> dict[str, float]:
        """trial id -> dev loss of every trial recorded at this rung."""
        return dict(self._rungs.get(epoch, {}))

    def record(self, trial_id: str, epoch: int, dev_loss: float | None) -> None:
        """Add a trial's value at a rung without deciding (refilling from finished trials)."""
        self._rungs.setdefault(int(epoch), {})[trial_id] = _value(dev_loss)

    def record_history(self, trial_id: str, dev_losses: Sequence[float | None]) -> None:
        """Record every rung a finished trial passed; dev_losses[i] is epoch i + 1's dev loss."""
        for epoch in self.rungs(len(dev_losses) + 1):
            self.record(trial_id, epoch, dev_losses[epoch - 1])

    def report(self, trial_id: str, epoch: int, dev_loss: float | None) -> RungDecision:
        """A trial finished rung epoch `epoch` with this dev loss: promote or prune it now."""
        if not self.is_rung(epoch):
            raise ValueError(f"epoch {epoch} is not a rung (rungs are {self.min_epochs}·{self.eta}^k)")
        value = _value(dev_loss)
        self.record(trial_id, epoch, value)
        competing = sorted(self._rungs[int(epoch)].values())
        n = len(competing)
        keep = max(1, n // self.eta)
        rank = 1 + sum(1 for v in competing if v < value)
        return RungDecision(
            trial_id, int(epoch), value, value <= competing[keep - 1], rank, n, keep, self.eta
        )


def _value(x: float | None) -> float:
    if x is None:
        return math.inf
    x = float(x)
    return x if math.isfinite(x) else math.inf
