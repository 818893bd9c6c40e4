"""model.output sigmoid: one output unit with binary cross-entropy, checked against independent arithmetic.

Also proves the README's statement about the default two-class softmax: it equals a sigmoid
network on the logit difference, and trains like one whose output layer has twice the
learning rate and half the L2 strength.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import activations, cli
from engine.config import ConfigError, from_dict
from engine.datasets2d import make_2d
from engine.errors import DataError
from engine.experiment import run_experiment
from engine.gradcheck import check_config, gradient_check
from engine.losses import binary_cross_entropy, binary_cross_entropy_grad, sigmoid
from engine.network import MLP, network_sizes, output_units
from engine.optimizers import SGD, Adam, Momentum
from engine.prepare import prepare_data
from engine.runs import load_model
from engine.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent

X3 = np.array([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]])
Y3 = np.array([0, 1, 1])


def _tiny_sigmoid_net(dtype="float64"):
    net = MLP([2, 3, 1], "tanh", dtype=dtype, max_batch=4, output="sigmoid")
    net.W[0][...] = [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]]
    net.b[0][...] = [0.01, -0.02, 0.03]
    net.W[1][...] = [[0.7], [-0.8], [0.9]]
    net.b[1][...] = [0.05]
    return net


def _reference_bce(W1, b1, W2, b2, X, y):
    """Cost and gradients with per-sample loops and math.log (independent of the engine)."""
    n = len(X)
    gW1, gb1, gW2, gb2 = np.zeros_like(W1), np.zeros_like(b1), np.zeros_like(W2), np.zeros_like(b2)
    loss = 0.0
    for s in range(n):
        z1 = [sum(X[s, i] * W1[i, j] for i in range(2)) + b1[j] for j in range(3)]
        a1 = [math.tanh(z) for z in z1]
        z2 = sum(a1[j] * W2[j, 0] for j in range(3)) + b2[0]
        p = 1.0 / (1.0 + math.exp(-z2))
        loss += -(y[s] * math.log(p) + (1 - y[s]) * math.log(1 - p)) / n
        dz2 = (p - y[s]) / n
        gb2[0] += dz2
        for j in range(3):
            gW2[j, 0] += a1[j] * dz2
            dz1 = W2[j, 0] * dz2 * (1 - a1[j] ** 2)
            gb1[j] += dz1
            for i in range(2):
                gW1[i, j] += X[s, i] * dz1
    return loss, gW1, gb1, gW2, gb2


# ---------------------------------------------------------------- the output layer itself


def test_cost_and_gradients_match_hand_loops():
    net = _tiny_sigmoid_net()
    loss, gW1, gb1, gW2, gb2 = _reference_bce(
        net.W[0].copy(), net.b[0].copy(), net.W[1].copy(), net.b[1].copy(), X3, Y3
    )
    cost, pen = net.loss_and_grad(X3, Y3)
    assert pen == 0.0 and cost == pytest.approx(loss, rel=1e-12)
    for got, want in zip((net.dW[0], net.db[0], net.dW[1], net.db[1]), (gW1, gb1, gW2, gb2)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)
    assert net.evaluate(X3, Y3)[0] == pytest.approx(loss, rel=1e-12)


def test_float32_training_pass_matches_float64():
    net64, net32 = _tiny_sigmoid_net("float64"), _tiny_sigmoid_net("float32")
    c64, _ = net64.loss_and_grad(X3, Y3, l2=0.3, m=3)
    c32, _ = net32.loss_and_grad(X3.astype(np.float32), Y3, l2=0.3, m=3)
    assert c32 == pytest.approx(c64, rel=1e-6)
    assert net32.grads.dtype == np.float32
    np.testing.assert_allclose(net32.grads, net64.grads, rtol=1e-5, atol=1e-7)


def test_losses_module_on_known_values():
    z = np.array([0.0, 2.0, -3.0, 40.0, -800.0])
    y = np.array([1, 0, 0, 1, 1])
    terms = [
        math.log(2),
        math.log(1 + math.exp(2)),
        math.log(1 + math.exp(-3)),
        math.log1p(math.exp(-40)),
        800.0,
    ]
    assert binary_cross_entropy(z, y) == pytest.approx(np.mean(terms), rel=1e-12)
    np.testing.assert_allclose(
        sigmoid(z), [0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(3)), 1.0, 0.0], atol=1e-300
    )
    assert sigmoid(np.array([-800.0]))[0] == 0.0 and sigmoid(np.array([-40.0]))[0] == pytest.approx(
        math.exp(-40)
    )
    expected_grad = (np.array([0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(3)), 1.0, 0.0]) - y) / 5
    np.testing.assert_allclose(binary_cross_entropy_grad(z, y), expected_grad, atol=1e-15)
    # the network's one-layer logits through the losses module
    net = MLP([3, 1], dtype="float64", output="sigmoid")
    net.initialize("random", 1.0, np.random.default_rng(0))
    X = np.random.default_rng(1).standard_normal((6, 3))
    yy = np.array([0, 1, 1, 0, 0, 1])
    cost, _ = net.loss_and_grad(X, yy)
    logits = X @ net.W[0] + net.b[0]
    assert cost == pytest.approx(binary_cross_entropy(logits, yy), rel=1e-12)
    np.testing.assert_allclose(net.dW[0], X.T @ binary_cross_entropy_grad(logits, yy), rtol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huge_logits_give_exact_finite_costs(dtype):
    net = MLP([1, 1], dtype=dtype, output="sigmoid")
    net.W[0][...] = [[1e4]]
    X = np.array([[1.0], [-1.0], [1.0], [-1.0]], dtype=dtype)
    cost, _ = net.loss_and_grad(X, np.array([1, 0, 0, 1]))  # two right by 1e4, two wrong by 1e4
    assert cost == pytest.approx(1e4 / 2, rel=1e-6)
    assert np.isfinite(net.grads).all()
    np.testing.assert_allclose(net.db[0], [(0 - 0 + 1 - 1) / 4], atol=1e-7)  # σ − y: 0, 0, +1, −1
    np.testing.assert_allclose(net.dW[0], [[(1.0 + 1.0) / 4]], rtol=1e-6)  # x·(σ − y): +1, +1
    loss, acc = net.evaluate(X, np.array([1, 0, 0, 1]))
    assert loss == pytest.approx(1e4 / 2, rel=1e-6) and acc == 0.5


def test_predict_proba_is_two_columns_one_minus_p_and_p():
    net = MLP([3, 4, 1], "relu", output="sigmoid")
    net.initialize("he", 3.0, np.random.default_rng(0))
    X = np.random.default_rng(1).standard_normal((9000, 3)).astype(np.float32) * 30
    P = net.predict_proba(X)
    assert P.shape == (9000, 2) and P.dtype == np.float32
    z = np.maximum(X.astype(np.float64) @ net.W[0] + net.b[0], 0) @ net.W[1] + net.b[1]
    p = np.exp(-np.logaddexp(0.0, -z[:, 0]))  # 1 / (1 + e^−z) without overflow warnings
    np.testing.assert_allclose(P[:, 1], p, rtol=1e-4, atol=1e-30)
    np.testing.assert_allclose(P[:, 0], 1 - p, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(net.predict(X), (z[:, 0] > 0).astype(int))


@pytest.mark.parametrize("l2,l1", [(0.0, 0.0), (0.7, 0.0), (0.0, 0.3), (0.5, 0.2)])
@pytest.mark.parametrize("activation", sorted(activations.ACTIVATIONS))
def test_gradient_check_passes(activation, l2, l1):
    rng = np.random.default_rng(3)
    net = MLP([4, 5, 6, 1], activation, dtype="float64", output="sigmoid")
    net.initialize("xavier", 1.0, rng)
    for b in net.b:
        b[...] = rng.standard_normal(b.shape) * 0.3
    X, y = rng.standard_normal((8, 4)), rng.integers(0, 2, 8)
    result = gradient_check(net, X, y, l2=l2, l1=l1)
    assert result["passed"] and result["relative_difference"] < 1e-7, result
    assert result["n_params"] == 4 * 5 + 5 + 5 * 6 + 6 + 6 + 1
    assert "dropout" in result["note"]


def test_gradient_check_catches_a_wrong_output_gradient(monkeypatch):
    rng = np.random.default_rng(4)
    net = MLP([3, 4, 1], "tanh", dtype="float64", output="sigmoid")
    net.initialize("xavier", 1.0, rng)
    X, y = rng.standard_normal((8, 3)), rng.integers(0, 2, 8)
    original = MLP._sigmoid_loss_and_delta

    def forgot_the_mean(self, z, yy, v, n):  # a classic bug: (σ − y) without the 1/n
        loss = original(self, z, yy, v, n)
        z *= n
        return loss

    monkeypatch.setattr(MLP, "_sigmoid_loss_and_delta", forgot_the_mean)
    assert not gradient_check(net, X, y)["passed"]


def test_sizes_and_refusals():
    assert output_units("sigmoid", 2) == 1 and output_units("softmax", 2) == 2
    assert network_sizes(5, (4, 3), 2, "sigmoid") == [5, 4, 3, 1]
    with pytest.raises(ConfigError, match="model.output"):
        output_units("sigmoid", 3)
    with pytest.raises(ValueError):
        MLP([2, 3, 2], output="sigmoid")  # a sigmoid output has one unit
    with pytest.raises(ValueError):
        MLP([2, 3, 1])  # a softmax needs two


def test_three_classes_are_refused_at_training_and_gradcheck_time():
    cfg = from_dict(
        {
            "data": {"source": "builtin:blobs", "n_classes": 3, "n_samples": 60},
            "model": {"hidden": [4], "output": "sigmoid"},
            "training": {"epochs": 1},
        }
    )
    data = prepare_data(cfg)
    with pytest.raises(ConfigError, match=r"model\.output sigmoid needs exactly two classes.*3"):
        Trainer(cfg, data)
    with pytest.raises(ConfigError, match=r"model\.output"):
        check_config(cfg, data)


# ---------------------------------------------------------------- the two-class softmax, explained


def _softmax_and_its_sigmoid_twin(seed=0):
    """A 3-5-2 softmax net and the 3-5-1 sigmoid net on its logit difference z₁ − z₀."""
    rng = np.random.default_rng(seed)
    soft = MLP([3, 5, 2], "relu", dtype="float64", output="softmax")
    soft.initialize("he", 1.0, rng)
    for b in soft.b:
        b[...] = rng.standard_normal(b.shape) * 0.1
    sig = MLP([3, 5, 1], "relu", dtype="float64", output="sigmoid")
    sig.W[0][...], sig.b[0][...] = soft.W[0], soft.b[0]
    sig.W[1][:, 0] = soft.W[1][:, 1] - soft.W[1][:, 0]
    sig.b[1][0] = soft.b[1][1] - soft.b[1][0]
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return soft, sig, X, y


def test_two_class_softmax_equals_sigmoid_on_the_logit_difference():
    soft, sig, X, y = _softmax_and_its_sigmoid_twin()
    np.testing.assert_allclose(sig.predict_proba(X), soft.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(sig.predict(X), soft.predict(X))
    assert sig.evaluate(X, y)[0] == pytest.approx(soft.evaluate(X, y)[0], rel=1e-12)
    # and the hidden layers receive the same gradient
    soft.loss_and_grad(X, y)
    sig.loss_and_grad(X, y)
    np.testing.assert_allclose(sig.dW[0], soft.dW[0], rtol=1e-10, atol=1e-15)
    # the output gradients of the two softmax columns are exact opposites, each equal to the sigmoid's
    np.testing.assert_allclose(soft.dW[1][:, 1], sig.dW[1][:, 0], rtol=1e-10)
    np.testing.assert_allclose(soft.dW[1][:, 0], -sig.dW[1][:, 0], rtol=1e-10)


def _sigmoid_step(sig, X, y, lr_hidden, lr_out, l2_hidden, l2_out, m):
    """One gradient-descent step with per-layer learning rates and L2 strengths (by hand)."""
    sig.loss_and_grad(X, y)
    for i in range(sig.n_layers):
        last = i == sig.n_layers - 1
        lr, l2 = (lr_out, l2_out) if last else (lr_hidden, l2_hidden)
        sig.W[i][...] -= lr * (sig.dW[i] + l2 / m * sig.W[i])
        sig.b[i][...] -= lr * sig.db[i]


def test_softmax_gradient_descent_is_sigmoid_with_twice_the_lr_and_half_the_l2_on_the_output():
    lr, lam, m, steps = 0.3, 0.8, 40, 30
    soft, sig, X, y = _softmax_and_its_sigmoid_twin(seed=1)
    naive = MLP([3, 5, 1], "relu", dtype="float64", output="sigmoid")
    naive.set_params(sig.get_params())
    opt = SGD(lr, soft.n_params, np.float64)
    for _ in range(steps):
        soft.train_step(X, y, opt, l2=lam, l1=0.0, m=m, keep_probs=None, input_keep_prob=1.0, rng=None)
        _sigmoid_step(sig, X, y, lr, 2 * lr, lam, lam / 2, m)
        _sigmoid_step(naive, X, y, lr, lr, lam, lam, m)
    np.testing.assert_allclose(sig.W[0], soft.W[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sig.W[1][:, 0], soft.W[1][:, 1] - soft.W[1][:, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sig.b[1][0], soft.b[1][1] - soft.b[1][0], rtol=1e-9)
    np.testing.assert_allclose(sig.predict_proba(X), soft.predict_proba(X), rtol=1e-9)
    # a sigmoid net with the same lr and λ everywhere does not follow the softmax net
    assert np.abs(naive.W[1][:, 0] - (soft.W[1][:, 1] - soft.W[1][:, 0])).max() > 1e-3


def test_with_momentum_too_the_output_layer_has_twice_the_lr_and_half_the_l2():
    lr, lam, m, beta, steps = 0.2, 0.8, 40, 0.9, 30
    soft, sig, X, y = _softmax_and_its_sigmoid_twin(seed=3)
    opt = Momentum(lr, soft.n_params, np.float64, beta=beta)
    # momentum is elementwise: one instance per layer part, output parts at 2·lr with λ/2
    parts = [
        (sig.W[0], sig.dW[0], lr, lam),
        (sig.b[0], sig.db[0], lr, 0.0),
        (sig.W[1], sig.dW[1], 2 * lr, lam / 2),
        (sig.b[1], sig.db[1], 2 * lr, 0.0),
    ]
    opts = [Momentum(r, p.size, np.float64, beta=beta) for p, _, r, _ in parts]
    for _ in range(steps):
        soft.train_step(X, y, opt, l2=lam, l1=0.0, m=m, keep_probs=None, input_keep_prob=1.0, rng=None)
        sig.loss_and_grad(X, y)
        for (p, g, _, l2), o in zip(parts, opts):
            o.step(p.reshape(-1), (g + l2 / m * p).reshape(-1))
    np.testing.assert_allclose(sig.W[0], soft.W[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sig.W[1][:, 0], soft.W[1][:, 1] - soft.W[1][:, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sig.b[1][0], soft.b[1][1] - soft.b[1][0], rtol=1e-9)


def test_with_adam_and_no_penalty_only_the_output_learning_rate_doubles():
    lr, steps = 0.01, 25
    soft, sig, X, y = _softmax_and_its_sigmoid_twin(seed=2)
    opt = Adam(lr, soft.n_params, np.float64)
    # Adam is elementwise, so one instance per layer part is the same as one over the whole buffer
    parts = [
        (sig.W[0], sig.dW[0], lr),
        (sig.b[0], sig.db[0], lr),
        (sig.W[1], sig.dW[1], 2 * lr),
        (sig.b[1], sig.db[1], 2 * lr),
    ]
    opts = [Adam(r, p.size, np.float64) for p, _, r in parts]
    for _ in range(steps):
        soft.train_step(X, y, opt, l2=0.0, l1=0.0, m=40, keep_probs=None, input_keep_prob=1.0, rng=None)
        sig.loss_and_grad(X, y)
        for (p, g, _), o in zip(parts, opts):
            o.step(p.reshape(-1), g.reshape(-1))
    np.testing.assert_allclose(sig.W[0], soft.W[0], rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(sig.W[1][:, 0], soft.W[1][:, 1] - soft.W[1][:, 0], rtol=1e-8, atol=1e-11)


# ---------------------------------------------------------------- runs, model.npz, evaluate, gradcheck

SIGMOID_RUN = {
    "data": {"source": "builtin:moons", "n_samples": 200, "noise": 0.2, "split": [0.6, 0.2, 0.2], "seed": 3},
    "model": {"hidden": [8, 4], "activation": "relu", "output": "sigmoid"},
    "optimizer": {"name": "adam", "lr": 0.02},
    "training": {"epochs": 30, "batch_size": 32, "seed": 1},
}


def _numpy_sigmoid_network(npz_path, X_raw):
    """p(class 1) from model.npz's arrays alone: normalize, ReLU layers, one sigmoid unit, float64."""
    with np.load(npz_path, allow_pickle=False) as f:
        a = (X_raw - f["norm_mean"].astype(np.float64)) / f["norm_std"].astype(np.float64)
        n_layers = sum(1 for k in f.files if k.startswith("W"))
        for i in range(1, n_layers + 1):
            z = a @ f[f"W{i}"].astype(np.float64) + f[f"b{i}"].astype(np.float64)
            a = np.maximum(z, 0) if i < n_layers else z
    assert a.shape == (len(X_raw), 1)
    return 1.0 / (1.0 + np.exp(-a[:, 0]))


@pytest.fixture(scope="module")
def sigmoid_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("sigmoid") / "run"
    exp = run_experiment(from_dict(SIGMOID_RUN), run)
    for _ in exp.records():
        pass
    return run, exp.summary


def test_saved_model_matches_an_independent_numpy_sigmoid_network(sigmoid_run):
    run, summary = sigmoid_run
    with np.load(run / "model.npz", allow_pickle=False) as f:
        assert f["W3"].shape == (4, 1) and f["b3"].shape == (1,)
        assert json.loads(str(f["config"][()]))["model"]["output"] == "sigmoid"
    model = load_model(run)
    assert model.net.output == "sigmoid" and model.net.layer_sizes == [2, 8, 4, 1]
    sd = make_2d("moons", 200, 0.2, np.random.default_rng(3))
    with np.load(run / "split.npz", allow_pickle=False) as split:
        dev_idx = split["dev_idx"]
    p_ref = _numpy_sigmoid_network(run / "model.npz", sd.X)
    from engine.prepare import transform

    P = model.net.predict_proba(transform(sd.X, model.input_shape, model.norm_mean, model.norm_std))
    np.testing.assert_allclose(P[:, 1], p_ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(np.argmax(P, axis=1), (p_ref > 0.5).astype(int))
    # the summary's dev accuracy and loss are those of the independent network on the dev split
    p_dev, y_dev = p_ref[dev_idx], sd.y[dev_idx]
    dev_acc = float(np.mean((p_dev > 0.5) == (y_dev == 1)))
    dev_loss = float(np.mean(-np.log(np.where(y_dev == 1, p_dev, 1 - p_dev))))
    assert summary["final_metrics"]["dev_acc"] == pytest.approx(dev_acc, abs=1e-12)
    assert summary["final_metrics"]["dev_loss"] == pytest.approx(dev_loss, rel=1e-4)
    assert summary["final_metrics"]["train_acc"] > 0.8  # it learned


def test_evaluate_command_uses_the_sigmoid_output(sigmoid_run, capsys):
    run, _ = sigmoid_run
    assert cli.main(["evaluate", "--run", str(run), "--data", "builtin:moons"]) == 0
    result = json.loads(capsys.readouterr().out)
    sd = make_2d("moons", 200, 0.2, np.random.default_rng(3))
    p = _numpy_sigmoid_network(run / "model.npz", sd.X)
    assert result["accuracy"] == pytest.approx(float(np.mean((p > 0.5) == (sd.y == 1))), abs=1e-12)
    expected_loss = float(np.mean(-np.log(np.where(sd.y == 1, p, 1 - p))))
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-4)


def _rewrite_npz(src: Path, dst: Path, **changes):
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(changes)
    np.savez(dst, **arrays)


def test_load_model_refuses_an_output_width_that_contradicts_the_config(sigmoid_run, tmp_path):
    run, _ = sigmoid_run
    with np.load(run / "model.npz", allow_pickle=False) as f:
        cfg = json.loads(str(f["config"][()]))
    two = tmp_path / "two.npz"
    _rewrite_npz(run / "model.npz", two, W3=np.zeros((4, 2), np.float32), b3=np.zeros(2, np.float32))
    with pytest.raises(DataError, match=r"two\.npz.*model\.output is sigmoid.*W3 has 2 outputs"):
        load_model(two)
    cfg["model"]["output"] = "softmax"
    one = tmp_path / "one.npz"
    _rewrite_npz(run / "model.npz", one, config=np.array(json.dumps(cfg), dtype=np.str_))
    with pytest.raises(DataError, match=r"one\.npz.*W3 has one output unit.*softmax"):
        load_model(one)


def test_gradcheck_command_on_a_sigmoid_config(tmp_path):
    cfg = dict(SIGMOID_RUN, regularization={"l2": 0.5, "l1": 0.1, "keep_prob": 0.8})
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "main.py", "gradcheck", "--config", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["passed"] and result["output"] == "sigmoid"
    assert result["n_params"] == 2 * 8 + 8 + 8 * 4 + 4 + 4 + 1
    assert "dropout" in result["note"]


def test_sigmoid_with_three_classes_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "cfg.json"
    path.write_text(
        json.dumps(
            {
                "data": {"source": "builtin:spiral", "n_classes": 3, "n_samples": 60},
                "model": {"hidden": [4], "output": "sigmoid"},
                "training": {"epochs": 1},
            }
        )
    )
    for args in (
        ["gradcheck", "--config", str(path)],
        ["train", "--config", str(path), "--out", str(tmp_path / "r")],
    ):
        rc = cli.main(args)
        err = capsys.readouterr().err
        assert rc == 2 and "Traceback" not in err, err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "model.output" in lines[0] and "two classes" in lines[0], err
    assert not (tmp_path / "r" / "config.json").exists()  # refused before the run folder was written


def test_an_overflowing_float32_gradient_norm_is_inf_without_a_warning():
    import warnings

    net = MLP([2, 2], dtype="float32")
    net.dW[0][...] = 3e38
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert net.grad_norms() == [float("inf")]
