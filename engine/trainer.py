"""The training loop: a generator of one small frozen :class:`EpochRecord` per epoch.

``Trainer(cfg, data, should_stop).run()`` builds the MLP ``[n_features] + hidden +
[n_classes]``, initializes it from ``cfg.training.seed`` and trains with mini-batches
(``batch_size ≥`` training size = full-batch gradient descent, one step per epoch).

Per epoch the record holds (see :data:`METRIC_KEYS`):

- ``cost``: mean mini-batch cost *with* the penalty, measured while training (dropout and
  augmentation on); the L2/L1 penalty uses m = number of training examples;
- ``train_loss``/``train_acc`` and ``dev_loss``/``dev_acc``: mean cross-entropy (no
  penalty) and accuracy in inference mode on un-augmented data. When the training set has
  more than 10,000 samples, train figures are measured on a fixed seeded subset of 10,000;
- ``penalty`` at the end of the epoch, ``weight_norm``, ``grad_norms`` (per layer, last step),
  ``lr``; ``seconds`` is the wall time of the whole epoch (training and evaluation),
  ``samples_per_sec`` the training samples per second of the mini-batch steps alone.

How a run ends (``stop_reason`` of the last record and of :attr:`Trainer.result`):

- ``completed``: all epochs ran.
- ``early_stopping``: the monitored dev metric did not improve for ``patience`` epochs.
- ``diverged``: a mini-batch cost (or the epoch's train loss / weight norm) was NaN or
  infinite. Training stops at once; the weights are put back to the last finite ones (the
  end of the previous epoch, or the best epoch when restore_best is on) and the diverged
  epoch's record describes those weights, with ``cost`` NaN and advice in ``message``.
- ``cancelled``: ``should_stop()`` returned True (checked before every mini-batch, also
  while paused). The partially-run epoch is *not* yielded: its steps are discarded by
  putting back the weights of the last completed epoch, so every record and the final
  weights agree. ``result`` then says ``cancelled`` and the last record yielded has
  ``stop_reason`` None. The same happens when the caller closes the generator.

Outcome warnings (``warnings`` of the last record, of :attr:`Trainer.result` and of
summary.json): a list of ``{"code": ..., "message": ...}`` so callers never match message
text. The codes (:data:`WARNING_CODES`):

- ``diverged``: the cost or the weights became NaN or infinite (stop_reason ``diverged``).
- ``stalled``: every weight gradient was exactly 0 in the last epoch: the network had
  stopped learning (dead ReLUs, saturated units).
- ``weights_unchanged``: the weights ``W`` ended where they started (relative change
  ≤ :data:`UNCHANGED_RTOL`): e.g. a learning rate too small to move float32 weights
  (lr 1e-300), or a penalty so large that its gradient overflows (L2 of 1e30). Not
  given for a diverged run or one stopped before its first epoch ended.
- ``dev_not_finite``: the monitored dev metric was never a finite number, so no epoch is
  best (best_epoch 0) and nothing was restored (see :mod:`engine.early_stopping`).

Each warning's message is also appended to the last record's ``message`` (the text shown
on screen); the codes are the contract.

Best epoch: always tracked by ``early_stopping.monitor`` (also when early stopping is off).
With early stopping enabled and ``restore_best``, the best epoch's weights are put back at
the end of the run, whatever ended it; ``result.final_metrics`` then equal the best
epoch's metrics (the records themselves stay as measured).

Determinism: init, shuffling, dropout, augmentation and the train-metric subset draw from
separate generators spawned from ``cfg.training.seed``; the same seed gives the same records
bitwise apart from ``seconds`` and ``samples_per_sec`` (on one machine with the same BLAS
thread setting: OpenBLAS's sums differ in the last bits between thread counts).

Threads (see :mod:`engine.blas`): a network whose mini-batch step needs less than
:data:`SMALL_STEP_FLOP` of matrix products trains with ONE BLAS thread. Its products are
too small for a second thread to save more than a fraction of a millisecond per step on an
idle machine, while OpenBLAS's threads wait for each other at the end of every product: on
the 2-core build machine with other programs running, a 2-128-128-2 step took 69 ms with 2
BLAS threads against 0.36 ms with 1 (load average 5). Larger networks keep the BLAS setting in force when
the Trainer is built (by default one thread per core; set ``OPENBLAS_NUM_THREADS=1`` on a
machine that other heavy programs share), except when augmenting. An augmented run also
trains with one BLAS thread, and the batch pipeline prepares the next augmented batch in a
background thread on the core BLAS leaves free. Two BLAS threads plus that producer are
three busy threads on two cores: they take cores from each other and BLAS's threads wait for
the slowest at the end of every product. Measured on the 2-core machine (3072-512-256-3,
batch 128, 5,000 images, 10 interleaved epochs each, light load; seconds per epoch, median /
worst): 1 BLAS thread + producer 0.89 / 1.02; 2 + producer 0.93 / 5.0; 2 BLAS threads
augmenting in the training thread 0.91 / 3.0 (best epochs 0.78, 0.74, 0.72: on an idle
machine the three are alike). Without augmentation: 0.72 / 6.3 with 2 threads, 0.87 / 1.25
with 1. The limit holds while the trainer computes an epoch and is lifted while the caller holds a
record. Without a free core (one-core machines) augmentation runs in the training thread.
The choices depend only on the configuration, the BLAS setting and the core count, never on
timing, so runs stay reproducible.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace

import numpy as np

from engine import blas
from engine.batches import BatchPipeline, EvalSet
from engine.config import AugmentConfig, ExperimentConfig
from engine.dataset import ArraySet, PreparedData
from engine.early_stopping import EarlyStopping
from engine.errors import DataError

METRIC_KEYS = (
    "epoch",
    "train_loss",
    "train_acc",
    "dev_loss",
    "dev_acc",
    "cost",
    "penalty",
    "weight_norm",
    "grad_norms",
    "lr",
    "seconds",
    "samples_per_sec",
)
STOP_REASONS = ("completed", "early_stopping", "diverged", "cancelled")
# A run whose every gradient is exactly 0 "completes" without learning anything; say so.
STALLED_ADVICE = (
    "Warning: every weight gradient was 0 in the last epoch, so the network had stopped learning "
    "(dead ReLU units or saturated activations, often after an exploding first step): "
    "try a smaller learning rate or init_scale, or He/Xavier initialization."
)
WARNING_CODES = {
    "diverged": "the cost or the weights became NaN or infinite",
    "stalled": "every weight gradient was 0 in the last epoch",
    "weights_unchanged": "the weights ended where they started",
    "dev_not_finite": "the monitored dev metric was never a finite number",
}
UNCHANGED_RTOL = 1e-6  # ‖W_end − W_start‖ ≤ this × ‖W_start‖: the weights did not move (float32 eps ≈ 1.2e-7)
TRAIN_EVAL_MAX = 10_000  # train metrics on at most this many samples (a fixed seeded subset)
# Matrix-product work of one mini-batch step below which training uses one BLAS thread:
# about 2 ms of products on one core of the build machine (~80 GFLOP/s per core).
SMALL_STEP_FLOP = 150e6


def step_flop(layer_sizes, batch_size: int) -> float:
    """FLOPs of the matrix products of one training step: forward X·W and backward dW for
    every layer, dX for every layer but the first (2·m·n·k each)."""
    pairs = list(zip(layer_sizes[:-1], layer_sizes[1:]))
    mac = sum(a * b for a, b in pairs)
    return 2.0 * batch_size * (2 * mac + sum(a * b for a, b in pairs[1:]))


def json_number(x: float) -> float | None:
    """A float for JSON: NaN and ±inf become None (null)."""
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class EpochRecord:
    """One epoch's metrics (the metrics.jsonl fields) plus bookkeeping."""

    epoch: int
    train_loss: float
    train_acc: float
    dev_loss: float
    dev_acc: float
    cost: float
    penalty: float
    weight_norm: float
    grad_norms: tuple[float, ...]
    lr: float
    seconds: float
    samples_per_sec: float
    best_epoch: int = 0  # best epoch so far by the monitored metric (0 = none yet)
    stop_reason: str | None = None  # set on the last record only
    message: str | None = None  # notes for the user (first record) and why training stopped (last)
    warnings: tuple[dict, ...] = ()  # last record only: {"code", "message"} (see WARNING_CODES)

    def metrics_dict(self) -> dict:
        """Exactly the metrics.jsonl keys; NaN/inf become None so the JSON stays valid."""
        out: dict = {}
        for key in METRIC_KEYS:
            value = getattr(self, key)
            if key == "epoch":
                out[key] = int(value)
            elif key == "grad_norms":
                out[key] = [json_number(g) for g in value]
            else:
                out[key] = json_number(value)
        return out


@dataclass(frozen=True)
class TrainingResult:
    """How a finished run ended. final_metrics describe the weights the network holds now."""

    epochs_run: int  # records yielded (completed epochs, plus the diverged one)
    best_epoch: int  # 0 when no epoch completed
    stop_reason: str
    message: str
    best_metrics: dict | None
    final_metrics: dict | None
    weights_epoch: int  # the epoch whose weights the network holds (0 = initial weights)
    restored_best: bool
    history: tuple[EpochRecord, ...]
    warnings: tuple[dict, ...] = ()  # {"code", "message"} each; see WARNING_CODES


def augmentation_configured(cfg: AugmentConfig) -> bool:
    return cfg != AugmentConfig()


def divergence_advice(lr: float) -> str:
    return (
        "Training diverged (the cost or the weights became NaN or infinite). Try a lower learning rate "
        f"(e.g. {lr / 10:g} instead of {lr:g}), a smaller init_scale or He/Xavier initialization, "
        "and input normalization (data.normalize = standard)."
    )


class Trainer:
    """Trains one MLP on PreparedData according to cfg; see the module docstring."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        data: PreparedData,
        should_stop: Callable[[], bool] | None = None,
        max_blas_threads: int | None = None,
    ):
        """max_blas_threads caps the BLAS threads of this run (the window passes cores − 1 so
        its own thread keeps a core; two BLAS threads that lose a core wait for each other)."""
        from engine.network import MLP
        from engine.optimizers import make_optimizer

        self.cfg = cfg
        self.data = data
        self.should_stop = should_stop
        n_train = len(data.train)
        if n_train == 0:
            raise DataError("the training set is empty: check data.source and data.split")
        tr = cfg.training
        self.dtype = np.dtype(tr.dtype)
        self.n_train = n_train
        self.batch_size = min(tr.batch_size, n_train)
        self.layer_sizes = [data.n_features, *cfg.model.hidden, data.n_classes]

        seeds = np.random.SeedSequence(tr.seed).spawn(5)
        init_rng, shuffle_rng, self._dropout_rng, augment_rng, subset_rng = (
            np.random.default_rng(s) for s in seeds
        )
        self.network = MLP(self.layer_sizes, cfg.model.activation, dtype=tr.dtype, max_batch=self.batch_size)
        self.network.initialize(cfg.model.init, cfg.model.init_scale, init_rng)
        self._initial_W = [W.copy() for W in self.network.W]  # to tell whether training moved them
        self.optimizer = make_optimizer(cfg.optimizer, self.network.params.size, self.dtype)

        self.notes: list[str] = list(data.notes)
        augmenter = None
        if augmentation_configured(cfg.augment):
            if data.is_image:
                from engine.augment import Augmenter

                augmenter = Augmenter(cfg.augment, tuple(data.input_shape), augment_rng)
            else:
                self.notes.append("Augmentation applies to image data only; it is ignored for this 2-D data.")
        # BLAS threads while training (None: keep the setting in force); see the module docstring
        small = step_flop(self.layer_sizes, self.batch_size) < SMALL_STEP_FLOP
        self.blas_threads: int | None = 1 if small or (augmenter is not None and augmenter.enabled) else None
        if max_blas_threads is not None:
            cap = max(1, int(max_blas_threads))
            self.blas_threads = cap if self.blas_threads is None else min(self.blas_threads, cap)
        current = blas.threads()  # None: a BLAS threadpoolctl cannot control, assume every core
        threads_in_run = None if current is None else (self.blas_threads or current)
        self.pipeline = BatchPipeline(
            data.train,
            self.batch_size,
            data.norm_mean,
            data.norm_std,
            shuffle_rng,
            dtype=self.dtype,
            augmenter=augmenter,
            # a producer thread only pays when BLAS leaves a core free (unknown BLAS: assume not)
            prefetch=threads_in_run is not None and threads_in_run < blas.cpu_count(),
        )
        train_eval = data.train
        if n_train > TRAIN_EVAL_MAX:
            idx = np.sort(subset_rng.choice(n_train, TRAIN_EVAL_MAX, replace=False))
            train_eval = ArraySet(data.train.X[idx], data.train.y[idx])
        self._train_eval = EvalSet(train_eval, data.norm_mean, data.norm_std, self.dtype)
        self._dev_eval = EvalSet(data.dev, data.norm_mean, data.norm_std, self.dtype)
        self.early_stopping = EarlyStopping.from_config(cfg.early_stopping)
        if len(data.dev) == 0 and self.early_stopping.enabled:
            # nothing to monitor: stopping after `patience` NaN epochs would be wrong
            self.early_stopping.enabled = self.early_stopping.restore_best = False
            self.notes.append(
                "Early stopping needs a dev set; the dev set is empty, so it is off for this run."
            )

        self._running = threading.Event()
        self._running.set()
        self._started = False
        self.steps = 0  # mini-batch steps taken (and kept) so far
        self.history: list[EpochRecord] = []
        self.result: TrainingResult | None = None
        self.paused_seconds = 0.0  # total time spent paused (left out of epoch timings)

    # ------------------------------------------------------------------ control
    def pause(self) -> None:
        """Block before the next mini-batch until resume() (should_stop is still honoured)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _stop_requested(self) -> bool:
        """Waits while paused; True when should_stop() asks to end the run.

        Time spent paused is added to ``self.paused_seconds`` so epoch timings leave it out.
        """
        stop = self.should_stop
        if not self._running.is_set():
            t_pause = time.perf_counter()
            try:
                while not self._running.wait(0.05):
                    if stop is not None and stop():
                        return True
            finally:
                self.paused_seconds += time.perf_counter() - t_pause
        return stop is not None and bool(stop())

    # ------------------------------------------------------------------ the loop
    def run(self) -> Iterator[EpochRecord]:
        """Train; yield one EpochRecord per epoch. Call once."""
        if self._started:
            raise RuntimeError("Trainer.run() can be called only once")
        self._started = True
        loop = self._loop()
        try:
            while True:
                with blas.limited(self.blas_threads):  # lifted while the caller holds the record
                    record = next(loop, None)
                if record is None:
                    return
                yield record
        finally:
            loop.close()
            if self.result is None:  # the caller closed the generator, or an error escaped
                last = self.history[-1].epoch if self.history else 0
                self._finish("cancelled", f"training was stopped by the caller after epoch {last}", last)

    def _loop(self) -> Iterator[EpochRecord]:
        cfg, net, opt = self.cfg, self.network, self.optimizer
        reg = cfg.regularization
        l2, l1, m = float(reg.l2), float(reg.l1), self.n_train
        keep_probs = cfg.keep_probs()
        input_keep = float(reg.input_keep_prob)
        drop_rng = self._dropout_rng
        es = self.early_stopping
        step = net.train_step
        running = self._running
        should_stop = self.should_stop
        first_message = " ".join(self.notes) or None
        last_finite = net.get_params()  # weights at the end of the last completed epoch
        best_params: np.ndarray | None = None

        for epoch in range(1, cfg.training.epochs + 1):
            t0 = time.perf_counter()
            paused_before = self.paused_seconds
            cost_sum = 0.0
            n_steps = 0
            bad_cost: float | None = None
            cancelled = False
            batches = self.pipeline.epoch()
            try:
                # overflow is expected when a run diverges; it is detected from the cost below
                with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                    for xb, yb in batches:
                        if not running.is_set() or should_stop is not None:
                            if self._stop_requested():
                                cancelled = True
                                break
                        c = step(
                            xb,
                            yb,
                            opt,
                            l2=l2,
                            l1=l1,
                            m=m,
                            keep_probs=keep_probs,
                            input_keep_prob=input_keep,
                            rng=drop_rng,
                        )
                        if not math.isfinite(c):
                            bad_cost = float(c)
                            break
                        cost_sum += c
                        n_steps += 1
            finally:
                batches.close()
            t0 += self.paused_seconds - paused_before  # a pause is not training time
            train_seconds = time.perf_counter() - t0

            if cancelled:
                self._cancel(epoch, n_steps, last_finite, best_params)
                return
            self.steps += n_steps
            if bad_cost is None:
                cost = cost_sum / n_steps
                record_fields = self._measure(l2, l1, m)
                if all(math.isfinite(record_fields[k]) for k in ("train_loss", "weight_norm")):
                    improved = es.update(epoch, record_fields[es.monitor])
                    if improved and es.restore_best:
                        best_params = net.get_params()
                    stop_reason = message = None
                    if es.should_stop:
                        stop_reason, message = "early_stopping", es.stop_message()
                    elif epoch == cfg.training.epochs:
                        stop_reason, message = "completed", f"trained all {epoch} epochs"
                    restored = False
                    if stop_reason and es.restore_best and best_params is not None and es.best_epoch != epoch:
                        net.set_params(best_params)
                        restored = True
                        message += f"; restored the weights of epoch {es.best_epoch}"
                    warnings: tuple[dict, ...] = ()
                    if stop_reason:
                        warnings = self._warnings(stop_reason, record_fields["grad_norms"], epoch)
                        message = _with_warnings(message, warnings)
                    if epoch == 1 and first_message:
                        message = first_message if message is None else f"{first_message} {message}"
                    record = self._record(
                        epoch, record_fields, cost, train_seconds, t0, es.best_epoch, stop_reason, message
                    )
                    if warnings:
                        record = replace(record, warnings=warnings)
                    self.history.append(record)
                    if stop_reason:
                        weights_epoch = es.best_epoch if restored else epoch
                        self._finish(stop_reason, message, weights_epoch, restored, warnings=warnings)
                        yield record
                        return
                    last_finite = net.get_params()
                    yield record
                    continue
                bad_cost = cost  # finite cost, but the weights or the loss overflowed
            yield self._diverge(epoch, bad_cost, last_finite, best_params, t0, train_seconds, l2, l1, m)
            return

    # ------------------------------------------------------------------ helpers
    def _measure(self, l2: float, l1: float, m: int) -> dict:
        net = self.network
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            train_loss, train_acc = self._train_eval.evaluate(net)
            dev_loss, dev_acc = self._dev_eval.evaluate(net)
            penalty = float(net.penalty(l2, l1, m)) if (l2 or l1) else 0.0
            weight_norm = float(net.weight_norm())
            grad_norms = tuple(float(g) for g in net.grad_norms())
        return {
            "train_loss": train_loss,
            "train_acc": train_acc,
            "dev_loss": dev_loss,
            "dev_acc": dev_acc,
            "penalty": penalty,
            "weight_norm": weight_norm,
            "grad_norms": grad_norms,
        }

    def _record(self, epoch, f, cost, train_seconds, t0, best_epoch, stop_reason, message) -> EpochRecord:
        seconds = time.perf_counter() - t0
        return EpochRecord(
            epoch=epoch,
            cost=float(cost),
            lr=float(self.optimizer.lr),
            seconds=seconds,
            samples_per_sec=self.n_train / train_seconds if train_seconds > 0 else float("inf"),
            best_epoch=best_epoch,
            stop_reason=stop_reason,
            message=message,
            **f,
        )

    def _diverge(
        self, epoch, bad_cost, last_finite, best_params, t0, train_seconds, l2, l1, m
    ) -> EpochRecord:
        net, es = self.network, self.early_stopping
        grad_norms = tuple(float(g) for g in net.grad_norms())
        restored_best = es.restore_best and best_params is not None
        net.set_params(best_params if restored_best else last_finite)
        weights_epoch = es.best_epoch if restored_best else epoch - 1
        f = self._measure(l2, l1, m)
        f["grad_norms"] = grad_norms  # of the step that blew up: shows which layer exploded
        kept = f"the weights of epoch {weights_epoch}" if weights_epoch else "the initial weights"
        message = f"{divergence_advice(self.optimizer.lr)} Stopped in epoch {epoch}; kept {kept}."
        warnings = self._warnings("diverged", grad_norms, epoch, message)
        message = _with_warnings(message, warnings[1:])  # the first is the divergence itself
        record = self._record(epoch, f, bad_cost, train_seconds, t0, es.best_epoch, "diverged", message)
        record = replace(record, warnings=warnings)
        self.history.append(record)
        self._finish(
            "diverged", message, weights_epoch, restored_best, final=record.metrics_dict(), warnings=warnings
        )
        return record

    def _cancel(self, epoch, n_steps, last_finite, best_params) -> None:
        net, es = self.network, self.early_stopping
        restored_best = es.restore_best and best_params is not None
        net.set_params(best_params if restored_best else last_finite)
        weights_epoch = es.best_epoch if restored_best else epoch - 1
        kept = f"the weights of epoch {weights_epoch}" if weights_epoch else "the initial weights"
        message = (
            f"cancelled during epoch {epoch} after {n_steps} of {self.pipeline.n_batches} mini-batches; "
            f"that partial epoch is discarded and {kept} are kept"
        )
        self._finish("cancelled", message, weights_epoch, restored_best)

    def _warnings(
        self, stop_reason: str, grad_norms, epoch: int, diverged_message: str | None = None
    ) -> tuple[dict, ...]:
        """The outcome warnings of a run ending now (see WARNING_CODES); grad_norms of the last step."""
        out: list[dict] = []
        if stop_reason == "diverged":
            out.append(
                {"code": "diverged", "message": diverged_message or divergence_advice(self.optimizer.lr)}
            )
        elif grad_norms and not any(g > 0 for g in grad_norms):
            out.append({"code": "stalled", "message": STALLED_ADVICE})
        es = self.early_stopping
        if epoch >= 1 and es.best_value is None and len(self.data.dev) > 0:
            out.append(
                {
                    "code": "dev_not_finite",
                    "message": (
                        f"Warning: {es.monitor} was never a finite number, so no epoch is best and no "
                        "weights were restored; the last epoch's weights are kept. Check the dev data "
                        "for NaN or infinite values."
                    ),
                }
            )
        if stop_reason != "diverged" and self.steps > 0:
            change = self.weight_change()
            if change is not None and change <= UNCHANGED_RTOL:
                out.append({"code": "weights_unchanged", "message": self._unchanged_message(change)})
        return tuple(out)

    def weight_change(self) -> float | None:
        """‖W_now − W_start‖ / ‖W_start‖ over all weight matrices (biases left out); None if not finite.

        With all-zero initial weights: 0.0 when they are still all 0, else inf.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            delta = math.sqrt(
                sum(
                    float(np.sum((W.astype(np.float64) - W0) ** 2))
                    for W, W0 in zip(self.network.W, self._initial_W)
                )
            )
            start = math.sqrt(sum(float(np.sum(W0.astype(np.float64) ** 2)) for W0 in self._initial_W))
        if not math.isfinite(delta):
            return None
        if start == 0.0:
            return 0.0 if delta == 0.0 else math.inf
        return delta / start

    def _unchanged_message(self, change: float) -> str:
        grads = [g for r in self.history for g in r.grad_norms]
        if any(not math.isfinite(g) for g in grads):
            reg = self.cfg.regularization
            cause = (
                "the weight gradients overflowed to infinity, so the optimizer could not use them: "
                f"the penalty is far too strong (l2 {reg.l2:g}, l1 {reg.l1:g})"
            )
        elif grads and not any(g > 0 for g in grads):
            cause = "every weight gradient was 0"
        else:
            cause = (
                f"the learning rate {self.optimizer.lr:g} is too small to move {self.dtype.name} weights: "
                "try 1e-3 (Adam) or 0.1 (SGD)"
            )
        return (
            f"Warning: the weights did not change during training (relative change {change:.1e}), so the "
            f"network learned nothing; {cause}."
        )

    def _finish(
        self,
        stop_reason: str,
        message: str,
        weights_epoch: int,
        restored_best: bool = False,
        final=None,
        warnings: tuple[dict, ...] | None = None,
    ) -> None:
        if warnings is None:  # a cancelled run: nothing was yielded with them
            last = self.history[-1].grad_norms if self.history else ()
            warnings = self._warnings(stop_reason, last, len(self.history))
            message = _with_warnings(message, warnings)
        history = tuple(self.history)
        by_epoch = {r.epoch: r for r in history}
        best = self.early_stopping.best_epoch
        if final is None and weights_epoch in by_epoch:
            final = by_epoch[weights_epoch].metrics_dict()
        self.result = TrainingResult(
            epochs_run=len(history),
            best_epoch=best,
            stop_reason=stop_reason,
            message=message,
            best_metrics=by_epoch[best].metrics_dict() if best in by_epoch else None,
            final_metrics=final,
            weights_epoch=weights_epoch,
            restored_best=restored_best,
            history=history,
            warnings=warnings,
        )


def _with_warnings(message: str | None, warnings) -> str | None:
    """message followed by each warning's text (what the user reads on screen)."""
    texts = [w["message"] for w in warnings]
    if not texts:
        return message
    base = (message or "").rstrip()
    if base and not base.endswith("."):
        base += "."
    return " ".join([base, *texts]) if base else " ".join(texts)


def record_fields() -> tuple[str, ...]:
    """All EpochRecord field names (metrics plus bookkeeping)."""
    return tuple(f.name for f in fields(EpochRecord))
