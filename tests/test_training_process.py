"""Training in a child process (what the window does): the same numbers as in-process, stop,
pause, layer statistics, weights, and a child that dies."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from engine.config import from_dict
from engine.experiment import run_experiment
from engine.prepare import prepare_data
from engine.runs import load_run
from engine.training_process import TrainingProcess

CFG = {
    "data": {"source": "builtin:moons", "n_samples": 300, "noise": 0.25},
    "model": {"hidden": [16, 8]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 20, "batch_size": 32},
}


def drain(proc: TrainingProcess, timeout: float = 60.0) -> list[tuple]:
    messages: list[tuple] = []
    end = time.monotonic() + timeout
    while not proc.done() and time.monotonic() < end:
        messages.extend(proc.poll())
        time.sleep(0.02)
    assert proc.done(), "the training process did not finish"
    proc.join(10)
    return messages


def records_of(messages):
    return [r for m in messages if m[0] == "records" for r in m[1]]


def test_the_child_trains_exactly_like_the_engine_in_process(tmp_path):
    cfg = from_dict(CFG)
    data = prepare_data(cfg)
    proc = TrainingProcess(cfg, tmp_path / "child", data=data, max_blas_threads=1)
    proc.start()
    messages = drain(proc)
    assert messages[-1][0] == "finished" and messages[-1][1]["stop_reason"] == "completed"
    child = records_of(messages)
    exp = run_experiment(cfg, tmp_path / "here", data=data, max_blas_threads=1)
    here = list(exp.records())
    assert [r.epoch for r in child] == list(range(1, 21))
    for a, b in zip(child, here):  # every metric bitwise equal, except the timings
        ma, mb = a.metrics_dict(), b.metrics_dict()
        for key in ("seconds", "samples_per_sec"):
            ma.pop(key), mb.pop(key)
        assert ma == mb
    assert load_run(tmp_path / "child").metrics == [r.metrics_dict() for r in child]
    # records come in batches (at most every 50 ms), not one message per epoch
    assert len([m for m in messages if m[0] == "records"]) < 20


def test_stop_is_graceful_and_the_run_is_kept(tmp_path):
    cfg = from_dict({**CFG, "training": {"epochs": 100_000, "batch_size": 32}})
    proc = TrainingProcess(cfg, tmp_path / "run", max_blas_threads=1)
    proc.start()
    seen = []
    while len(records_of(seen)) < 3:
        seen.extend(proc.poll())
        time.sleep(0.01)
    proc.stop()
    seen.extend(drain(proc))
    assert seen[-1][0] == "finished" and seen[-1][1]["stop_reason"] == "cancelled"
    run = load_run(tmp_path / "run")
    assert run.summary["stop_reason"] == "cancelled" and len(run.metrics) == len(records_of(seen))


def test_pause_holds_training_and_resume_goes_on(tmp_path):
    cfg = from_dict({**CFG, "training": {"epochs": 100_000, "batch_size": 32}})
    proc = TrainingProcess(cfg, tmp_path / "run", max_blas_threads=1)
    proc.start()
    seen = []
    while len(records_of(seen)) < 2:
        seen.extend(proc.poll())
        time.sleep(0.01)
    proc.pause()
    time.sleep(0.3)  # an epoch in flight may still arrive
    seen.extend(proc.poll())
    n = len(records_of(seen))
    time.sleep(0.5)
    seen.extend(proc.poll())
    assert len(records_of(seen)) == n  # nothing trains while paused
    proc.resume()
    while len(records_of(seen)) <= n:
        seen.extend(proc.poll())
        time.sleep(0.01)
    proc.stop()
    drain(proc)


def test_weights_and_layer_statistics_on_request(tmp_path):
    from engine.network import MLP

    cfg = from_dict({**CFG, "training": {"epochs": 60, "batch_size": 32}})
    data = prepare_data(cfg)
    proc = TrainingProcess(cfg, tmp_path / "run", data=data, max_blas_threads=1)
    proc.want_stats(True)
    proc.start()
    proc.request_weights()
    messages = drain(proc)
    weights = [m for m in messages if m[0] == "weights"]
    stats = [m for m in messages if m[0] == "stats"]
    assert len(weights) == 1  # one request, one answer
    _, epoch, params, sizes = weights[0]
    assert sizes == [2, 16, 8, 2] and 1 <= epoch <= 60
    assert stats and all(len(m[2]) == 3 for m in stats)  # hidden 1, hidden 2, output
    net = MLP(sizes, "relu", dtype="float32")
    net.set_params(params)
    assert np.isfinite(net.params).all()


def test_a_child_that_dies_is_reported_in_words(tmp_path):
    cfg = from_dict({**CFG, "training": {"epochs": 100_000, "batch_size": 32}})
    proc = TrainingProcess(cfg, tmp_path / "run", max_blas_threads=1)
    proc.start()
    seen = []
    while not records_of(seen):
        seen.extend(proc.poll())
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    seen.extend(drain(proc))
    kind, message, where = seen[-1]
    assert (kind, where) == ("error", "internal")
    assert message.startswith("The training process ended unexpectedly (exit code -9)")


def test_the_statistics_probe_measures_layer_statistics_on_a_fixed_training_batch():
    from engine.batches import to_network_input
    from engine.insight.layers import layer_statistics
    from engine.network import MLP
    from engine.training_process import STATS_SAMPLES, _StatsProbe

    cfg = from_dict({**CFG, "data": {**CFG["data"], "n_samples": 1000}})
    data = prepare_data(cfg)
    net = MLP([2, 16, 8, 2], "relu", dtype="float32")
    net.initialize("he", 1.0, np.random.default_rng(3))
    probe = _StatsProbe()
    assert probe.due()
    first = probe.measure(net, data)
    idx = np.sort(np.random.default_rng(0).choice(len(data.train), STATS_SAMPLES, replace=False))
    X = to_network_input(np.asarray(data.train[idx]), data.norm_mean, data.norm_std, "float32")
    expected = layer_statistics(net, X, np.asarray(data.train.y)[idx])
    assert first == [s.to_dict() for s in expected]
    assert probe.measure(net, data) == first  # the same batch every time
    assert not probe.due()  # it just ran: the next one waits 20× its cost (5 % of the time)


def test_a_child_that_cannot_start_is_an_error_not_a_hang(tmp_path, monkeypatch):
    # e.g. a script that opens the window without `if __name__ == "__main__":` (the fork
    # server re-imports it), or no memory to fork: the run ends with the reason, and closing
    # the window (shutdown) does not trip over a process that never started
    proc = TrainingProcess(from_dict(CFG), tmp_path / "run", max_blas_threads=1)

    def refuse():
        raise RuntimeError("An attempt has been made to start a new process\n before bootstrapping")

    monkeypatch.setattr(proc._proc, "start", refuse)
    proc.start()
    messages = drain(proc, timeout=5)
    assert messages == [
        (
            "error",
            "The training process could not start: An attempt has been made to start a new process "
            "before bootstrapping",
            "internal",
        )
    ]
    assert not proc.is_alive() and proc.join(1) and proc.shutdown(1)
    assert proc.poll() == []
