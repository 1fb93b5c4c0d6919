"""The course's experiments over seeds, registered for :mod:`loopy_edu.sweep`.

Each is the protocol of one chapter, written once here so that the chapter, the sweep command
and the stored results in ``results/`` run the same code:

- ``murray``: Murray's periodic task trained by BPTT, RFLO or the readout alone (Chapter 9);
- ``continual``: task A, then task B, with plain or complex-synapse weights (Chapter 10);
- ``fa_mnist``: MNIST by backprop, feedback alignment or the last layer alone (Chapter 8);
- ``loopy_mc``: the memory capacity of a loopy network with its graph fixed (Part IV);
- ``loopy_copy``: Arjovsky's copy task read out by ridge from the same networks (Part IV);
- ``loopy_vs_lstm``: an untrained loopy network against an untrained LSTM, one readout
  (Chapter 11);
- ``loopy_plastic_mc``: ``loopy_mc`` after an unsupervised local rule has run (Chapter 12);
- ``loopy_readouts``: the same loopy features read out by ridge, RLS, NLMS or LMS (Chapter 12);
- ``sorn_counting``: the SORN counting task, full and ablated (Chapter 12);
- ``cued_gate``, ``lstm_cued``: cued recall by a gated slot (hand-wired or learned by a
  three-factor rule) and by an LSTM trained by BPTT (Chapter 12);
- ``lstm_selective_copy``: the LSTM baseline of selective copying (Chapter 12);
- ``loopy_selective_copy``, ``loopy_adding``: a loopy network trained by local learning only
  (:func:`loopy_edu.local_learning.train_local`) on selective copying and on the adding problem
  (Chapter 12);
- ``parity_ponder``: 16-bit parity by ACT, PonderNet, a fixed loop or the tall SLN (Chapters
  14 and 15); ``parity_lateral``: the lateralized SLN's stop (Chapter 15);
- ``prefix_parity_easy_to_hard``: a looped convolutional SLN trained on short prefix parity and
  tested on longer strings with more loops (Chapter 15);
- ``composition``: chains of bit-string primitives by the wide SLN, its one-expert ablation or a
  parameter-matched RNN, trained on short chains and tested on longer ones (Chapter 15).

An experiment is ``fn(seed, **settings) -> dict`` of numbers and small arrays; the seed sets
everything random in it (initial weights, feedback matrices, mini-batch order).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from .bptt import bptt
from .checks import check_choice, check_number, check_positive
from .data import load_mnist
from .feedback_alignment import fa_grad_fn, random_feedback as mlp_feedback
from .gates import KEEPS, gate_inputs, gate_probability, slot, three_factor_update
from .graphs import erdos_renyi, fixed_in_degree, ring, scale_spectral_radius, small_world
from .halting import ACTCell, LoopedCell, PonderCell
from .loopy import LoopyNetwork
from .local_learning import (RULES as LOCAL_RULES, LocalRule, evaluate as local_evaluate,
                             train_local)
from .lstm import LSTM
from .mlp import MLP
from .online_readout import RLS, lms, lms_step
from .optim import SGD, Adam, clip_grad_norm, make_optimizer
from .plasticity import NORMS, RULES, adapt
from .reservoir import memory_capacity, ridge
from .rflo import random_feedback, rflo
from .rnn import RNN
from .sln import STOPS as SLN_STOPS, TallSLN
from .sln_conv import ConvSLN, matched_channels
from .sln_lateral import CriticCell, LateralSLN, exactly_right
from .sln_wide import WideSLN, gate_entropy
from .sorn import SORN, logistic_readout
from .sweep import experiment
from .synapses import SynapseChain
from .tasks import (PRIMITIVES, Task, accuracy as task_accuracy, adding, adding_baseline,
                    arjovsky_copy, bit_program, counting, cued_recall, memory_capacity_task,
                    parity_vectors, prefix_parity, selective_copy, sines)
from .train import train, train_batches, train_sequences

# --- Chapter 9: Murray's periodic task --------------------------------------------------------

MURRAY_T, MURRAY_LR, MURRAY_CLIP = 100, 1e-3, 3.0


def periodic_task(T: int = MURRAY_T) -> Task:
    """Murray's target: three sines of periods T, T/2 and T/4 after a start pulse at t = 1."""
    t = np.arange(1, T + 1)
    target = (np.sin(2 * np.pi * t / T) + 0.5 * np.sin(4 * np.pi * t / T)
              + 0.25 * np.sin(8 * np.pi * t / T))
    xs = np.zeros((T, 1, 1))                         # (T, B, n_in)
    xs[0] = 1.0                                      # the start pulse
    return Task(xs, target[:, None, None].copy(), np.ones((T, 1)), "mse", "periodic")


def murray_net(seed: int, n_rec: int = 50, alpha: float = 0.1, g: float = 1.5) -> RNN:
    """Murray's network: strong input weights and a small random readout."""
    m = RNN(1, n_rec, 1, alpha=alpha, seed=seed, spectral_radius=g, backend="numba")
    m.params["W_in"][:] = 3.0                        # h_1 = α tanh(3) ≈ 0.1 in every unit
    rng = np.random.default_rng(1000 + seed)
    m.params["W_out"][:] = 0.1 * (2 * rng.random((1, n_rec)) - 1) / np.sqrt(n_rec)
    return m


def readout_only(model, xs, targets, loss, mask):
    """BPTT's gradient with the recurrent network left as it was initialised."""
    value, grads = bptt(model, xs, targets, loss, mask)
    for k in ("W_in", "W_rec", "b_rec"):
        grads[k] = np.zeros_like(grads[k])
    return value, grads


def cos_out_B(model: RNN, B: np.ndarray) -> float:
    """The cosine between the readout W_out and RFLO's feedback B (N, 1)."""
    w, b = model.params["W_out"][0], B[:, 0]
    return float(w @ b / np.linalg.norm(w) / np.linalg.norm(b))


@experiment(choices={"method": ("bptt", "rflo", "readout")}, quick={"trials": 1000},
            curves=("mse", "align", "clipped"))
def murray(seed: int, method: str = "bptt", trials: int = 30_000) -> dict[str, Any]:
    """Murray's periodic task (Chapter 9): one update per trial, plain SGD, norm clipped at 3.

    The seed sets the network (``murray_net(seed)``) and RFLO's feedback
    (``random_feedback(net, seed=100 + seed)``). Returns ``mse_final`` (the mean MSE of the last
    100 trials) and, per block of 100 trials, ``mse`` (its mean MSE), ``clipped`` (the fraction
    of clipped updates) and ``align`` (cos(W_out, B) after the block's first trial); and
    ``output``, the trained network's output (T,).
    """
    check_positive(trials, "trials", integer=True)
    if trials % 100:
        raise ValueError(f"trials: expected a multiple of 100, got {trials}")
    task, net = periodic_task(), murray_net(seed)
    B = random_feedback(net, seed=100 + seed)
    rule = {"bptt": bptt, "readout": readout_only,
            "rflo": lambda m, x, y, loss, mask: rflo(m, x, y, B, loss, mask)}[method]
    align = []
    hist = train_sequences(net, lambda s: task, SGD(MURRAY_LR), trials, clip=MURRAY_CLIP,
                           grad_fn=rule, progress=False,
                           callback=lambda s, m, h: align.append(cos_out_B(m, B))
                           if s % 100 == 0 else None)
    mse = np.array(hist.loss).reshape(-1, 100) * 2 / MURRAY_T     # MSE per trial = 2L/T
    clipped = np.array(hist.grad_norm).reshape(-1, 100) > MURRAY_CLIP
    return {"mse_final": mse[-1].mean(), "mse": mse.mean(axis=1),
            "clipped": clipped.mean(axis=1), "align": np.array(align),
            "output": net.predict(task.xs)[:, 0, 0]}


# --- Chapter 10: continual learning with complex synapses -------------------------------------

CONTINUAL_T = 100


def cued_task(channel: int, periods: list[int], seed: int) -> Task:
    """A sines task whose start pulse arrives on input ``channel`` of 2."""
    task = sines(CONTINUAL_T, n_sines=len(periods), periods=periods, seed=seed)
    xs = np.zeros((CONTINUAL_T, 1, 2))               # (T, B, n_in)
    xs[:, :, channel] = task.xs[:, :, 0]
    return Task(xs, np.ascontiguousarray(task.targets), task.mask, task.loss, task.name)


def score(model: RNN, task: Task) -> tuple[float, float]:
    """(MSE per step, correlation of output and target) on one task."""
    ys = model.states(task.xs, "numba") @ model.params["W_out"].T + model.params["b_out"]
    y, target = ys.ravel(), task.targets.ravel()
    return float(np.mean((y - target) ** 2)), float(np.corrcoef(y, target)[0, 1])


@experiment(choices={"rule": ("rflo", "bptt")})
def continual(seed: int, m: int = 1, rule: str = "rflo", lr: float = 0.05,
              lr_chain: float = 0.2, g12: float = 0.1, steps: int = 1500) -> dict[str, float]:
    """Task A, then task B (Chapter 10); W_rec is a chain of m beakers when m > 1.

    The seed sets the initial weights and RFLO's feedback. Returns, after training on A and
    after training on B, the MSE and the correlation with the target on both tasks:
    ``corr_A_after_B`` and so on.
    """
    check_positive(m, "m", integer=True)
    check_positive(steps, "steps", integer=True)
    task_A, task_B = cued_task(0, [25], seed=1), cued_task(1, [20, 40], seed=2)
    model = RNN(2, 32, 1, alpha=0.2, seed=seed, spectral_radius=0.9)
    B = random_feedback(model, seed=seed + 1)
    chain = None
    if m > 1:
        chain = SynapseChain(m, model.params["W_rec"].shape, g12=g12, g_leak=0.0)
        chain.u[:] = model.params["W_rec"]          # every level starts at the initial weight
        model.params["W_rec"] = chain.weight         # the network reads u_1
    out = {}
    for name, task in (("A", task_A), ("B", task_B)):
        for _ in range(steps):
            if rule == "rflo":
                _, grads = rflo(model, task.xs, task.targets, B, task.loss, task.mask)
            else:
                _, grads = model.loss_and_grads(task)
            clip_grad_norm(grads, 1.0)
            for k, p in model.params.items():
                if chain is not None and k == "W_rec":
                    chain.step(-lr_chain * grads[k])
                else:
                    p -= lr * grads[k]
        for on, t in (("A", task_A), ("B", task_B)):
            out[f"mse_{on}_after_{name}"], out[f"corr_{on}_after_{name}"] = score(model, t)
    return out


# --- Chapter 8: feedback alignment on MNIST ---------------------------------------------------

def shallow(model: MLP, X: np.ndarray, y: np.ndarray):
    """Backprop's gradient with the first layer frozen: only the output layer learns."""
    loss, grads = model.loss_and_grads(X, y)
    grads["W1"][:] = 0.0
    grads["b1"][:] = 0.0
    return loss, grads


@experiment(choices={"method": ("bp", "fa", "shallow")}, quick={"epochs": 1},
            curves=("test_error",))
def fa_mnist(seed: int, method: str = "fa", epochs: int = 10, hidden: int = 1000,
             lr: float = 0.1, batch: int = 32) -> dict[str, Any]:
    """MNIST by backprop, feedback alignment or the last layer alone (Chapter 8).

    A 784-hidden-10 sigmoid network, SGD in mini-batches. The seed sets the initial weights,
    the mini-batch order, and (seed + 1) FA's feedback. Returns ``test_error`` (%) after every
    epoch, ``test_error_final``, and ``fallback`` (True on the 8,000-image offline split).
    """
    check_positive(epochs, "epochs", integer=True)
    check_positive(hidden, "hidden", integer=True)
    data = load_mnist(warn=False)
    model = MLP([784, hidden, 10], "sigmoid", seed=seed, dtype=np.float32)
    if method == "fa":
        rule = fa_grad_fn(mlp_feedback(model, seed=seed + 1))
    else:
        rule = {"bp": lambda mdl, X, y: mdl.loss_and_grads(X, y), "shallow": shallow}[method]
    hist = train(model, data.x_train, data.y_train, make_optimizer("sgd", lr=lr), epochs=epochs,
                 batch_size=batch, X_test=data.x_test, y_test=data.y_test, seed=seed,
                 grad_fn=rule, eval_train=False, progress=False)
    error = 100 * (1 - np.array(hist.test_acc))
    return {"test_error": error, "test_error_final": error[-1], "fallback": data.fallback}


# --- Part IV: memory capacity of loopy networks -----------------------------------------------

MC_GRAPHS = {"ring": lambda n, k, seed: ring(n),
             "fixed_in_degree": lambda n, k, seed: fixed_in_degree(n, k, seed=seed),
             "erdos_renyi": lambda n, k, seed: erdos_renyi(n, k / (n - 1), seed=seed),
             "small_world": lambda n, k, seed: small_world(n, k, 0.1, seed=seed)}


@experiment(choices={"graph": tuple(MC_GRAPHS), "activation": ("linear", "tanh"),
                     "inputs": ("random_sign", "equal")})
def loopy_mc(seed: int, n: int = 100, graph: str = "fixed_in_degree", k: int = 10,
             spectral_radius: float = 0.95, activation: str = "tanh",
             inputs: str = "random_sign", input_scale: float = 0.1,
             steps: int = 25_000, alpha_min: float = 1.0) -> dict[str, Any]:
    """Jaeger's memory capacity of a loopy network whose graph stays as drawn (Part IV).

    Jaeger's protocol: u(t) ~ U(-0.5, 0.5), ``steps`` steps scored on the last 20 % after a
    washout of 2n + 100, delays up to 2n, ridge 1e-9. The graph (``ring``: the cycle, every
    weight equal; the others with k synapses per unit on average) is scaled to
    ``spectral_radius``; the input weights are ``input_scale`` times random signs, or all
    equal (``"equal"``, a controllability failure on the ring). The leaks are log-spaced from
    ``alpha_min`` to 1 over the units (a leak spectrum; 1 is no leak). The seed sets the graph,
    the signs and the input. Returns ``mc``, ``mc_over_n`` and ``mc_k`` (delays 1..2n).
    """
    check_positive(steps, "steps", integer=True)
    check_number(alpha_min, "alpha_min", low=0.0, high=1.0, low_open=True)
    W = scale_spectral_radius(MC_GRAPHS[graph](n, k, seed), spectral_radius)
    alpha = np.geomspace(alpha_min, 1.0, n) if alpha_min < 1.0 else 1.0
    model = LoopyNetwork(1, n, 1, graph=W, activation=activation, alpha=alpha, seed=seed)
    signs = (np.random.default_rng(seed).choice([-1.0, 1.0], n) if inputs == "random_sign"
             else np.ones(n))
    model.params["W_in"][:, 0] = input_scale * signs
    mc, mc_k, _ = _measure_mc(model, steps, seed)
    return {"mc": mc, "mc_over_n": mc / n, "mc_k": mc_k}


def _measure_mc(model: LoopyNetwork, steps: int,
                seed: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Jaeger's protocol on a model with one input: MC, MC_k (2n,) and the scored states."""
    n = model.n_rec
    washout, k_max = 2 * n + 100, 2 * n
    task = memory_capacity_task(steps + washout + k_max, k_max, seed=seed + 1)
    hs = model.states(task.xs)[:, 0]                                       # (T, n)
    mc, mc_k = memory_capacity(hs, task.xs[:, 0, 0], k_max, reg=1e-9, washout=washout)
    return mc, mc_k, hs[washout:]


def _sequence_states(states: Callable, make_task: Callable, count: int, seed: int,
                     last: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The states at the ``last`` steps of ``count`` sequences of ``make_task(batch, seed)``
    (last count, N), the class each step must output, and the number of classes; 50 sequences
    at a time, so that only their states are ever held."""
    X, y = [], []
    for chunk in range(0, count, 50):
        task = make_task(min(50, count - chunk), seed + chunk)
        hs = states(np.ascontiguousarray(task.xs))[-last:]              # (last, B, N)
        X.append(hs.reshape(-1, hs.shape[-1]))
        y.append(task.targets[-last:].argmax(-1).ravel())
    return np.concatenate(X), np.concatenate(y), task.targets.shape[-1]


@experiment(choices={"graph": ("ring", "fixed_in_degree"), "activation": ("linear", "tanh")})
def loopy_copy(seed: int, delay: int = 100, n: int = 1000, graph: str = "fixed_in_degree",
               k: int = 10, spectral_radius: float = 0.99, activation: str = "linear",
               train: int = 1000, test: int = 200, reg: float = 1e-6) -> dict[str, Any]:
    """Arjovsky's copy task (10 of 8 symbols, recalled after ``delay`` steps) read out by one
    ridge readout from the recall steps' states of a loopy network whose graph stays as drawn
    (Part IV): a test of what a fixed network keeps, not of learning.

    The blank is no input (its input weights are 0), so that a ring of weight 1 does not add
    up a constant drive. The seed sets the graph, the input weights and the sequences;
    ``train`` and ``test`` sequences give 10 samples each. Returns ``accuracy`` (per symbol, on
    the test sequences; chance is 1/8) and ``accuracy_by_position`` (10,).
    """
    for value, name in ((delay, "delay"), (train, "train"), (test, "test")):
        check_positive(value, name, integer=True)
    W = scale_spectral_radius(MC_GRAPHS[graph](n, k, seed), spectral_radius)
    model = LoopyNetwork(10, n, 1, graph=W, activation=activation, seed=seed)
    model.params["W_in"][:, 0] = 0.0                       # the blank channel
    make = lambda batch, s: arjovsky_copy(delay, batch=batch, seed=s)      # noqa: E731
    X, y, _ = _sequence_states(model.states, make, train, 1_000_000 * (seed + 1), 10)
    y = y - 1                                               # the 8 symbols; 0 is the blank
    W_out, b_out = ridge(X, np.eye(8)[y], reg)
    X, y, _ = _sequence_states(model.states, make, test, 1_000_000 * (seed + 1) + train, 10)
    y = y - 1
    right = ((X @ W_out.T + b_out).argmax(-1) == y).reshape(-1, 10)   # (sequences, position)
    return {"accuracy": right.mean(), "accuracy_by_position": right.mean(axis=0)}


# --- ch. 11, experiment 1: a random loopy network against a random LSTM ---------------------

# The ridge penalties tried, relative to the mean diagonal of the centred X^T X, so that one
# grid fits features of any scale; the largest first, so that a tie keeps the smoother readout.
RELATIVE_REGS = (1e1, 1e-1, 1e-3, 1e-5, 1e-7, 1e-9)


def _penalties(X: np.ndarray) -> np.ndarray:
    """``RELATIVE_REGS`` times the mean diagonal of the centred X^T X, for X (rows, N)."""
    return np.array(RELATIVE_REGS) * len(X) * X.var(axis=0).mean()


def _classify(states: Callable, make_task: Callable, last: int, seed: int, train: int,
              val: int, test: int) -> tuple[float, float, float]:
    """Ridge read-out accuracy on ``test`` sequences, with the penalty chosen among
    ``RELATIVE_REGS`` on ``val`` sequences and the readout refitted on train + val; returns
    the test accuracy, the validation accuracy and the chosen relative penalty. The sequences
    depend only on ``seed``, so that every model reads the same ones."""
    X, y, classes = _sequence_states(states, make_task, train + val, seed, last)
    cut, regs = train * last, _penalties(X)
    scores = []
    for reg in regs:
        W_out, b_out = ridge(X[:cut], np.eye(classes)[y[:cut]], reg)
        scores.append(np.mean((X[cut:] @ W_out.T + b_out).argmax(-1) == y[cut:]))
    best = int(np.argmax(scores))
    W_out, b_out = ridge(X, np.eye(classes)[y], regs[best])
    X, y, _ = _sequence_states(states, make_task, test, seed + train + val, last)
    accuracy = np.mean((X @ W_out.T + b_out).argmax(-1) == y)
    return float(accuracy), float(scores[best]), RELATIVE_REGS[best]


@experiment(choices={"model": ("loopy", "lstm"), "task": ("copy", "cued", "mc"),
                     "graph": ("fixed_in_degree", "ring"), "activation": ("tanh", "linear")})
def loopy_vs_lstm(seed: int, model: str = "loopy", forget_bias: float = 0.0,
                  task: str = "copy", n: int = 1000, input_scale: float = 1.0,
                  graph: str = "fixed_in_degree", k: int = 10, spectral_radius: float = 0.99,
                  activation: str = "tanh", delay: int = 100, train: int = 1000, val: int = 250,
                  test: int = 250, steps: int = 15_000) -> dict[str, Any]:
    """An untrained loopy network against an untrained LSTM of as many units, read out by the
    same ridge readout from the same sequences (Chapter 11, experiment 1).

    ``model="loopy"``: a LoopyNetwork of ``n`` units on the graph (k synapses per unit, or the
    ring) scaled to ``spectral_radius``; ``"lstm"``: an LSTM of ``n`` cells with PyTorch's
    recurrent weights and every bias 0 but the forget gate's, ``forget_bias``. Both take input
    weights ``input_scale`` times N(0, 1), none from copy's blank. Tasks: ``"copy"``
    (Arjovsky's, 10 symbols read at the 10 recall steps), ``"cued"`` (cued recall, read at the
    go step), both at ``delay``, with ``train``, ``val`` and ``test`` sequences; ``"mc"``
    (Jaeger's memory capacity: ``steps`` scored steps after a washout of 2n + 100, delays up
    to 2n, the last 20 % tested). The ridge penalty is chosen among ``RELATIVE_REGS`` on a
    validation split (the last quarter of mc's training steps) and the readout refitted on
    train + validation. The seed sets the network and the sequences, which do not depend on the
    model. Returns ``score`` (test accuracy, chance 1/8; or the MC), ``val_score`` (by which a
    sweep can choose ``input_scale`` too) and ``reg``, and for mc ``mc_k`` (delays 1..2n).
    """
    for value, name in ((n, "n"), (delay, "delay"), (train, "train"), (val, "val"),
                        (test, "test"), (steps, "steps")):
        check_positive(value, name, integer=True)
    check_number(input_scale, "input_scale", 0.0)
    check_number(forget_bias, "forget_bias")
    n_in = {"copy": 10, "cued": 10, "mc": 1}[task]
    if model == "loopy":
        if forget_bias != 0.0:
            raise ValueError(f"forget_bias: expected 0.0 for model 'loopy' (it has no gates), "
                             f"got {forget_bias!r}")
        W = scale_spectral_radius(MC_GRAPHS[graph](n, k, seed), spectral_radius)
        net = LoopyNetwork(n_in, n, 1, graph=W, activation=activation, seed=seed)
        W_in = net.params["W_in"]                                       # (n, n_in)
    else:
        net = LSTM(n_in, n, 1, seed=seed, forget_bias=forget_bias, backend="numba")
        W_in = net.params["W_ih"]                                       # (4n, n_in)
    # Drawn apart from the networks' own weights, and the same for both models but for shape.
    W_in[:] = input_scale * np.random.default_rng((seed, 1)).standard_normal(W_in.shape)
    if task == "copy":
        W_in[:, 0] = 0.0                  # the blank is no input, as in loopy_copy
    states = partial(net.states, backend="numba")
    if task != "mc":
        make = arjovsky_copy if task == "copy" else cued_recall
        score, val_score, reg = _classify(
            states, lambda batch, s: make(delay, batch=batch, seed=s),
            10 if task == "copy" else 1, 1_000_000 * (seed + 1), train, val, test)
        return {"score": score, "val_score": val_score, "reg": reg}
    washout, k_max = 2 * n + 100, 2 * n
    T = steps + washout + k_max
    inputs = memory_capacity_task(T, k_max, seed=seed + 1)
    hs = states(inputs.xs)[:, 0]                                        # (T, n)
    u = inputs.xs[:, 0, 0]
    # memory_capacity tests on its last round(0.2 steps) steps; the choice sees only those
    # before, of which its own last quarter validates.
    fit = T - round(0.2 * steps)
    regs = _penalties(hs[washout + k_max:fit])
    scores = [memory_capacity(hs[:fit], u[:fit], k_max, reg, washout, 0.25)[0]
              for reg in regs]
    best = int(np.argmax(scores))
    mc, mc_k = memory_capacity(hs, u, k_max, regs[best], washout)
    return {"score": mc, "val_score": scores[best], "reg": RELATIVE_REGS[best], "mc_k": mc_k}


# --- ch. 12: unsupervised plasticity and memory capacity --------------------------------------

@experiment(choices={"rule": RULES, "normalise": NORMS})
def loopy_plastic_mc(seed: int, n: int = 200, k: int = 10, spectral_radius: float = 0.95,
                     rule: str = "off", eta: float = 1e-4, epochs: int = 1,
                     adapt_steps: int = 10_000, normalise: str = "none", tau: float = 100.0,
                     mu: float = 0.0, sigma: float = 0.2, input_scale: float = 0.1,
                     steps: int = 25_000) -> dict[str, Any]:
    """Jaeger's memory capacity of a tanh loopy network after an unsupervised local rule
    (:func:`loopy_edu.plasticity.adapt`) has run on a U(-0.5, 0.5) input stream of
    ``adapt_steps`` steps, ``epochs`` times (Chapter 12, experiment 2).

    The network is :func:`loopy_mc`'s (fixed in-degree k, scaled to ``spectral_radius``,
    input weights ``input_scale`` times random signs) and so is the measurement, on fresh
    input; ``rule="off"`` is the plasticity-off control, the same network for the same seed
    (the adaptation stream has its own seed). Returns ``mc``, ``mc_over_n``, ``mc_k`` (delays
    1..2n), ``radius_after``, the spectral radius after adaptation, and ``state_sd``, the
    standard deviation of the states the capacity was measured on.
    """
    check_positive(steps, "steps", integer=True)
    if check_positive(adapt_steps, "adapt_steps", integer=True) < 2:
        raise ValueError(f"adapt_steps: expected at least 2 steps, got {adapt_steps}")
    W = scale_spectral_radius(fixed_in_degree(n, k, seed=seed), spectral_radius)
    model = LoopyNetwork(1, n, 1, graph=W, activation="tanh", seed=seed)
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], n)          # loopy_mc's
    model.params["W_in"][:, 0] = input_scale * signs
    history = {"spectral_radius": [spectral_radius]}
    if rule != "off":
        stream = memory_capacity_task(adapt_steps, 1, seed=1_000_000 + seed).xs
        history = adapt(model, stream, rule=rule, eta=eta, epochs=epochs, normalise=normalise,
                        tau=tau, mu=mu, sigma=sigma)
    mc, mc_k, hs = _measure_mc(model, steps, seed)
    return {"mc": mc, "mc_over_n": mc / n, "mc_k": mc_k,
            "radius_after": float(history["spectral_radius"][-1]),
            "state_sd": float(hs.std())}


# --- ch. 12, SORN: the counting task ----------------------------------------------------------

SORN_VARIANTS = {"full": (True, True, True), "ip_only": (False, True, False),
                 "off": (False, False, False), "no_stdp": (False, True, True),
                 "no_ip": (True, False, True), "no_sn": (True, True, False)}


def word_positions(symbols: np.ndarray) -> np.ndarray:
    """The position of each symbol of a counting stream within its word (A and D are 0); the
    stream must start at a word's first letter. (T,) -> (T,)"""
    steps = np.arange(len(symbols))
    starts = np.where(np.isin(symbols, (0, 3)), steps, 0)
    return steps - np.maximum.accumulate(starts)


@experiment(choices={"variant": tuple(SORN_VARIANTS)})
def sorn_counting(seed: int, n: int = 20, variant: str = "full", n_e: int = 200,
                  plastic_steps: int = 50_000, readout_steps: int = 5000,
                  C: float = 1.0) -> dict[str, Any]:
    """The SORN counting task (Lazar, Pipa & Triesch 2009) with SORN_V2's protocol: a SORN
    sees the words "A B^n C" and "D E^n F" (at random, 1/2 each) for ``plastic_steps`` steps
    with the ``variant``'s plasticity on (STDP, IP, SN: (True, True, True) for ``"full"``,
    see ``SORN_VARIANTS``), then, frozen, ``readout_steps`` steps to fit SORN_V2's logistic
    regression readout (:func:`loopy_edu.sorn.logistic_readout`, penalty 1/C) and
    ``readout_steps`` more to test it.

    The readout reads x(t) and predicts two labels of the input at t + 1: its symbol
    (``accuracy``, Lazar et al.'s prediction task; no readout can beat ``ceiling`` = 1 -
    0.5/(n + 2), since the next word is a coin flip), and its position in its word
    (``position_accuracy``, the label SORN_V2 scores: ``source.sequence_ind()``), which
    needs the count. ``end_accuracy`` is the symbol accuracy on the steps whose next symbol
    ends a word (C or F), the steps where counting matters. Also returns the excitatory
    firing ``rate`` during the test. The seed sets the network and the stream.
    """
    for value, name in ((plastic_steps, "plastic_steps"), (readout_steps, "readout_steps")):
        check_positive(value, name, integer=True)
    stdp, ip, sn = SORN_VARIANTS[variant]
    model = SORN(n_e=n_e, stdp=stdp, ip=ip, sn=sn, seed=seed)
    task = counting(plastic_steps + 2 * readout_steps, n, seed=1_000_000 * (seed + 1))
    symbols = np.concatenate([task.xs[:1, 0].argmax(-1), task.targets[:, 0].argmax(-1)])
    labels = {"accuracy": (symbols[1:], 6), "position_accuracy": (word_positions(symbols)[1:],
                                                                  n + 2)}
    model.run(task.xs[:plastic_steps, 0])
    X = model.run(task.xs[plastic_steps:, 0], plastic=False).astype(np.float64)   # (2R, N_e)
    train, test = slice(0, readout_steps), slice(readout_steps, None)
    out = {}
    for key, (label, classes) in labels.items():
        label = label[plastic_steps:]
        W_out, b_out = logistic_readout(X[train], label[train], classes, C)
        right = (X[test] @ W_out.T + b_out).argmax(-1) == label[test]
        out[key] = float(right.mean())
        if key == "accuracy":
            out["end_accuracy"] = float(right[np.isin(label[test], (2, 5))].mean())
    return {**out, "ceiling": 1 - 0.5 / (n + 2), "rate": float(X[test].mean())}


# --- ch. 12, local readouts -------------------------------------------------------------------

@experiment(choices={"readout": ("nlms", "lms", "rls", "ridge"), "task": ("copy", "cued")},
            quick={"epochs": 1}, curves=("accuracy_by_epoch",))
def loopy_readouts(seed: int, readout: str = "nlms", epochs: int = 10, task: str = "copy",
                   delay: int = 100, n: int = 1000, k: int = 10,
                   spectral_radius: float = 0.99, activation: str = "linear",
                   train: int = 1000, test: int = 200, reg: float = 1e-6,
                   eta: float = 0.1) -> dict[str, Any]:
    """One set of loopy features read out by ridge (batch), RLS (online, not local), NLMS or
    LMS (online, local), trained on the same samples (Chapter 12).

    The network is ``loopy_copy``'s (a fixed-in-degree graph scaled to ``spectral_radius``,
    drawn with ``seed``); the features are its states at the 10 recall steps of Arjovsky's copy
    (``task="copy"``, delay ``delay``, the blank channel silent) or at the go step of cued
    recall (``"cued"``, ``delay`` distractor steps), computed once, with a constant 1 appended
    for the bias; the targets are one-hot. Ridge and RLS use the penalty ``reg`` (RLS's
    P_0 = I / reg, so its first epoch is ridge with the bias penalised too); NLMS uses the step
    ``eta``; LMS the step eta / mean ‖z‖² over the training samples, so that ``eta`` is a
    fraction of the same stability limit for both. Each epoch is one pass over the training
    samples in a fresh order drawn from ``seed``. Returns ``accuracy`` (the argmax of the
    linear output on the test sequences' samples, after the last epoch) and
    ``accuracy_by_epoch`` (epochs,), of length 1 for ridge, which is one solve.
    """
    for value, name in ((epochs, "epochs"), (delay, "delay"), (train, "train"),
                        (test, "test")):
        check_positive(value, name, integer=True)
    W = scale_spectral_radius(fixed_in_degree(n, k, seed=seed), spectral_radius)
    model = LoopyNetwork(10, n, 1, graph=W, activation=activation, seed=seed)
    if task == "copy":
        model.params["W_in"][:, 0] = 0.0                   # the blank channel
        make, last = (lambda b, s: arjovsky_copy(delay, batch=b, seed=s)), 10
    else:
        make, last = (lambda b, s: cued_recall(delay, batch=b, seed=s)), 1
    base = 1_000_000 * (seed + 1)
    X, y, classes = _sequence_states(model.states, make, train, base, last)
    X_test, y_test, _ = _sequence_states(model.states, make, test, base + train, last)
    Z, Z_test = (np.hstack([a, np.ones((len(a), 1))]) for a in (X, X_test))   # (rows, n + 1)
    Y = np.eye(classes)[y]

    def accuracy(W_out: np.ndarray) -> float:
        return float(np.mean((Z_test @ W_out.T).argmax(-1) == y_test))

    if readout == "ridge":
        W_out, b_out = ridge(X, Y, reg)
        curve = [accuracy(np.hstack([W_out, b_out[:, None]]))]
    else:
        rng, curve = np.random.default_rng(seed), []
        rls = RLS(n + 1, classes, reg) if readout == "rls" else None
        W_out = rls.W if rls else np.zeros((classes, n + 1))
        step = eta / np.mean(np.sum(Z * Z, axis=1)) if readout == "lms" else eta
        for _ in range(epochs):
            order = rng.permutation(len(Z))
            if rls:
                rls.fit(Z[order], Y[order])
            else:
                lms(W_out, Z[order], Y[order], step, normalized=readout == "nlms")
            curve.append(accuracy(W_out))
    return {"accuracy": curve[-1], "accuracy_by_epoch": np.array(curve)}


# --- ch. 12, cued recall and selective copying ------------------------------------------------

GATES = ("hand", "learned", "off")
CUE = 8                                    # cued recall's input channel of the cue flag


def _check_schedule(sequences: int, batch: int, eval_every: int, test: int) -> int:
    """The number of updates, ``sequences / batch``, after checking the four counts."""
    for value, name in ((sequences, "sequences"), (batch, "batch"),
                        (eval_every, "eval_every"), (test, "test")):
        check_positive(value, name, integer=True)
    if sequences % batch:
        raise ValueError(f"sequences: expected a multiple of batch = {batch}, got {sequences}")
    return sequences // batch


def _evaluated(step: int, batch: int, eval_every: int) -> bool:
    """Whether update ``step`` (from 0) takes the count of sequences seen past a multiple of
    ``eval_every``: a curve point every ``eval_every`` sequences whatever the batch, at the
    same updates in a short run and in a long one."""
    return (step + 1) * batch // eval_every > step * batch // eval_every


def _slot_features(net: LoopyNetwork, xs: np.ndarray, gate: str, keep: str, w: np.ndarray,
                   coins: np.random.Generator | None) -> tuple:
    """The readout's features [slot, 1] (B, N + 1) for cued recall's inputs xs (T, B, 10),
    and the gate's decisions (T, B); for the learned gate also what it read (T, B, M) and its
    probabilities (T, B), else None. Without ``coins`` the learned gate opens where
    g_t > 1/2."""
    hs = net.states(np.ascontiguousarray(xs))                           # (T, B, N)
    z = g = None
    if gate == "off":                    # no slot: the readout reads the go step's state
        writes = np.zeros(hs.shape[:2], dtype=bool)
        writes[-1] = True
    elif gate == "hand":
        writes = xs[:, :, CUE] > 0
    else:
        z = gate_inputs(xs, hs)
        g = gate_probability(w, z)
        writes = coins.random(g.shape) < g if coins is not None else g > 0.5
    s = slot(hs, writes, keep)
    return np.hstack([s, np.ones((len(s), 1))]), writes, z, g


@experiment(choices={"gate": GATES, "keep": KEEPS}, quick={"sequences": 2000},
            curves=("curve",))
def cued_gate(seed: int, gate: str = "hand", keep: str = "first", T: int = 100, n: int = 200,
              k: int = 10, spectral_radius: float = 0.95, sequences: int = 15_000,
              batch: int = 20,
              eta: float = 0.02, eta_gate: float = 0.3, gate_bias: float = -1.5,
              eval_every: int = 1000, test: int = 500) -> dict[str, Any]:
    """Cued recall at delay ``T`` (:func:`loopy_edu.tasks.cued_recall`) from a fixed loopy
    network and a gated slot (:mod:`loopy_edu.gates`), read out by NLMS (Chapter 12,
    experiment 7).

    The network (n tanh units, fixed in-degree k, scaled to ``spectral_radius``, drawn with
    ``seed``) never changes. ``gate="hand"`` writes its state into the slot when the cue flag
    is on; ``"learned"``: a gate unit decides from [x_t, h_t, 1] and learns by reward ×
    eligibility (:func:`loopy_edu.gates.three_factor_update`, rate ``eta_gate``, bias
    starting at ``gate_bias``, r̄ a running mean of the reward); ``"off"`` (the control) has
    no slot: the readout reads the go step's state. The slot keeps the gate's first write
    (``keep="first"``) or its last (``"last"``): the same for the hand-wired gate, not for one
    that learns (:mod:`loopy_edu.gates`). The readout, on [slot, 1], learns by NLMS
    (step ``eta``), one sample after another; the reward is whether its prediction before its
    step was right. Training sees ``sequences`` fresh sequences, ``batch`` at a time; every
    ``eval_every`` sequences, the accuracy on ``test`` fixed sequences (the learned gate
    opening where g_t > 1/2) joins ``curve``. Returns ``accuracy`` (at the end; chance is
    1/8), ``curve``, ``sequences_seen`` (where each point was taken), ``train_reward`` (the
    mean reward between points), and, on the test sequences at the end, ``writes`` (mean
    writes per sequence, the steps after the first included) and ``cue_held`` (the fraction
    whose slot holds the cue step's state).
    """
    check_choice(gate, "gate", GATES)
    check_choice(keep, "keep", KEEPS)
    steps = _check_schedule(sequences, batch, eval_every, test)
    check_positive(T, "T", integer=True)
    check_positive(n, "n", integer=True)
    for value, name in ((eta, "eta"), (eta_gate, "eta_gate")):
        check_positive(value, name)
    check_number(gate_bias, "gate_bias")
    net = LoopyNetwork(10, n, 1, k=k, spectral_radius=spectral_radius, seed=seed)
    W_out = np.zeros((8, n + 1))                                        # reads [slot, 1]
    w = np.zeros(10 + n + 1)                                            # the gate's weights
    w[-1] = gate_bias
    coins = np.random.default_rng((seed, 2))             # the learned gate's decisions
    base = 1_000_000 * (seed + 1)
    test_task = cued_recall(T, batch=test, seed=base - 1)
    test_y = test_task.targets[-1].argmax(-1)

    def evaluate() -> tuple[float, np.ndarray]:
        Z, writes, _, _ = _slot_features(net, test_task.xs, gate, keep, w, None)
        return float(np.mean((Z @ W_out.T).argmax(-1) == test_y)), writes

    curve, seen, rewards, reward_mean, baseline = [], [], [], [], 1 / 8
    for s in range(steps):
        task = cued_recall(T, batch=batch, seed=base + s)
        Z, writes, z, g = _slot_features(net, task.xs, gate, keep, w, coins)
        Y = task.targets[-1]                                            # (B, 8), one-hot
        reward = ((Z @ W_out.T).argmax(-1) == Y.argmax(-1)).astype(float)
        for z_b, y_b in zip(Z, Y):
            lms_step(W_out, z_b, y_b, eta, normalized=True)
        if gate == "learned":
            w += three_factor_update(z, g, writes, reward, baseline, eta_gate, keep)
            baseline += 0.1 * (reward.mean() - baseline)
        rewards.append(reward.mean())
        if _evaluated(s, batch, eval_every):
            curve.append(evaluate()[0])
            seen.append((s + 1) * batch)
            reward_mean.append(np.mean(rewards))
            rewards = []
    final, writes = evaluate()
    cue_step = test_task.xs[:, :, CUE].argmax(0)                        # (B,)
    kept = writes.argmax(0) if keep == "first" else len(writes) - 1 - writes[::-1].argmax(0)
    return {"accuracy": final, "curve": np.array(curve), "sequences_seen": np.array(seen),
            "train_reward": np.array(reward_mean),
            "writes": float(writes.sum(0).mean()) if gate != "off" else 0.0,
            "cue_held": float(np.mean((kept == cue_step) & writes.any(0)))}


def lstm_hidden(n_params: int, n_in: int, n_out: int) -> int:
    """The number of cells H whose LSTM (:class:`loopy_edu.lstm.LSTM`, readout included) has
    the parameter count nearest ``n_params`` (the smaller H on a tie) ::

        count(H) = 4H (n_in + H + 1) + n_out (H + 1)

    Parameters
    ----------
    n_params : int
        The parameter budget.
    n_in, n_out : int
        The task's inputs and outputs.

    Returns
    -------
    int
        H.
    """
    for value, name in ((n_params, "n_params"), (n_in, "n_in"), (n_out, "n_out")):
        check_positive(value, name, integer=True)
    counts = {H: 4 * H * (n_in + H + 1) + n_out * (H + 1) for H in range(1, n_params + 1)}
    return min(counts, key=lambda H: (abs(counts[H] - n_params), H))


def _train_lstm(model: LSTM, make_task: Callable[[int, int], Task], test_task: Task,
                sequences: int, batch: int, lr: float, clip: float,
                eval_every: int) -> dict[str, Any]:
    """BPTT with Adam on fresh batches ``make_task(batch, step)``, the gradient's norm clipped
    at ``clip``. Returns the accuracy on ``test_task`` every ``eval_every`` sequences
    (``curve``, ``sequences_seen``), the mean training loss between points (``train_loss``),
    and the outputs on the test task at the end (``ys``, (T, B, n_out))."""
    curve, seen = [], []

    def record(step: int, m: LSTM, hist: Any) -> None:
        if _evaluated(step, batch, eval_every):
            curve.append(task_accuracy(m.predict(test_task.xs), test_task))
            seen.append((step + 1) * batch)

    hist = train_sequences(model, lambda s: make_task(batch, s), Adam(lr), sequences // batch,
                           clip=clip, progress=False, callback=record)
    ends = [0] + [n // batch for n in seen]
    return {"curve": np.array(curve), "sequences_seen": np.array(seen),
            "train_loss": np.array([np.mean(hist.loss[a:b]) for a, b in zip(ends, ends[1:])]),
            "ys": model.predict(test_task.xs)}


def _check_lstm(lr: float, clip: float, forget_bias: float) -> None:
    check_positive(lr, "lr")
    check_positive(clip, "clip")
    check_number(forget_bias, "forget_bias")


@experiment(quick={"sequences": 3200}, curves=("curve",))
def lstm_cued(seed: int, T: int = 100, sequences: int = 100_000, lr: float = 1e-3,
              hidden: int = 40, forget_bias: float = 1.0, batch: int = 32, clip: float = 1.0,
              eval_every: int = 1000, test: int = 500) -> dict[str, Any]:
    """Cued recall at delay ``T`` learned by an LSTM of ``hidden`` cells, BPTT and Adam
    (Chapter 12, experiment 7's baseline): the loss only at the go step, the gradient's norm
    clipped at ``clip`` before each update, ``batch`` fresh sequences per update.

    The seed sets the initial weights (forget gate bias ``forget_bias``) and the sequences.
    Returns ``accuracy`` (on ``test`` fixed sequences, at the end; chance is 1/8), ``curve``
    (the same every ``eval_every`` sequences), ``sequences_seen`` and ``train_loss`` (the mean
    training loss between points; ln 8 = 2.08 is chance).
    """
    steps = _check_schedule(sequences, batch, eval_every, test)
    check_positive(T, "T", integer=True)
    check_positive(hidden, "hidden", integer=True)
    _check_lstm(lr, clip, forget_bias)
    base = 1_000_000 * (seed + 1)
    test_task = cued_recall(T, batch=test, seed=base - 1)
    model = LSTM(10, hidden, 8, seed=seed, forget_bias=forget_bias, backend="numba")
    out = _train_lstm(model, lambda b, s: cued_recall(T, batch=b, seed=base + s), test_task,
                      steps * batch, batch, lr, clip, eval_every)
    return {"accuracy": task_accuracy(out.pop("ys"), test_task), **out}


@experiment(quick={"sequences": 3200}, curves=("curve",))
def lstm_selective_copy(seed: int, L: int = 200, sequences: int = 100_000, lr: float = 1e-3,
                        forget_bias: float = 1.0, hidden: int = 0, batch: int = 32,
                        clip: float = 1.0, eval_every: int = 1000,
                        test: int = 500) -> dict[str, Any]:
    """Selective copying (:func:`loopy_edu.tasks.selective_copy`: 8 tokens of 8 symbols among
    noise in ``L`` steps, recalled in order after a marker) learned by an LSTM, BPTT and Adam
    (Chapter 12, experiment 8's baseline): the loss at the 8 recall steps, the gradient's
    norm clipped at ``clip`` before each update, ``batch`` fresh sequences per update.

    ``hidden=0`` takes the H whose parameter count is nearest 9,000 (:func:`lstm_hidden`; 41
    cells, 8,864 parameters, for the task's 10 inputs and 8 outputs). The seed sets the
    initial weights (forget gate bias ``forget_bias``) and the sequences. Returns
    ``accuracy`` (per token, on ``test`` fixed sequences, at the end; chance is 1/8),
    ``accuracy_by_position`` (8,), ``curve`` (the per-token accuracy every ``eval_every``
    sequences), ``sequences_seen``, ``train_loss`` (the mean training loss between points,
    summed over the 8 recall steps: 8 ln 8 = 16.6 is chance), ``cells`` (H) and
    ``n_params``.
    """
    steps = _check_schedule(sequences, batch, eval_every, test)
    check_positive(L, "L", integer=True)
    if hidden != 0:
        check_positive(hidden, "hidden", integer=True)
    _check_lstm(lr, clip, forget_bias)
    base = 1_000_000 * (seed + 1)
    test_task = selective_copy(L, batch=test, seed=base - 1)
    H = hidden or lstm_hidden(9000, test_task.n_in, test_task.n_out)
    model = LSTM(test_task.n_in, H, test_task.n_out, seed=seed, forget_bias=forget_bias,
                 backend="numba")
    out = _train_lstm(model, lambda b, s: selective_copy(L, batch=b, seed=base + s), test_task,
                      steps * batch, batch, lr, clip, eval_every)
    recall = slice(L + 1, None)                                         # the 8 output steps
    right = (out.pop("ys")[recall].argmax(-1)
             == test_task.targets[recall].argmax(-1))                   # (8, B)
    return {"accuracy": float(right.mean()), "accuracy_by_position": right.mean(axis=1), **out,
            "cells": H, "n_params": sum(p.size for p in model.params.values())}


# --- ch. 12, the moonshot: selective copying with local learning only ------------------------

LOCAL_READOUTS = ("nlms", "ridge")


def _local_run(seed: int, make_task: Callable[[int, int], Task], n: int, k: int,
               spectral_radius: float, alpha: float, input_scale: float, bias: float,
               rule: LocalRule, readout: str, reg: float, sequences: int, batch: int,
               eta: float, eval_every: int, test: int) -> dict[str, Any]:
    """A tanh loopy network (fixed in-degree k, drawn with ``seed``, biases N(0, bias²),
    readout from zero) trained by :func:`loopy_edu.local_learning.train_local` on
    ``make_task(batch, seed')`` and scored on ``test`` fixed sequences. ``readout="ridge"``
    (a control, not local) then refits the readout by ridge (penalty ``reg``) on the states
    of the masked-in steps of the same training sequences, to show what the states hold.
    Returns the curves, the final score of :func:`loopy_edu.local_learning.evaluate`
    (``score``) and the count of readout weights.
    """
    check_choice(readout, "readout", LOCAL_READOUTS)
    steps = _check_schedule(sequences, batch, eval_every, test)
    check_positive(n, "n", integer=True)
    check_number(bias, "bias", 0.0)
    check_positive(reg, "reg")
    base = 1_000_000 * (seed + 1)
    test_task = make_task(test, base - 1)
    model = LoopyNetwork(test_task.n_in, n, test_task.n_out, k=k,
                         spectral_radius=spectral_radius, alpha=alpha,
                         input_scale=input_scale, seed=seed)
    model.params["b_rec"][:] = np.random.default_rng((seed, 3)).standard_normal(n) * bias
    model.params["W_out"][:], model.params["b_out"][:] = 0.0, 0.0
    hist = train_local(model, lambda s: make_task(batch, base + s), sequences, rule=rule,
                       eta=eta, eval_task=test_task, eval_every=eval_every)
    if readout == "ridge":
        tasks = [make_task(batch, base + s) for s in range(steps)]
        X = np.concatenate([rule.states(model, t.xs)[t.mask > 0] for t in tasks])  # (S, n)
        Y = np.concatenate([t.targets[t.mask > 0] for t in tasks])                  # (S, n_out)
        model.params["W_out"][:], model.params["b_out"][:] = ridge(X, Y, reg)
    return {"score": local_evaluate(model, test_task, rule),
            "curve": np.array(hist.test_acc), "test_loss": np.array(hist.test_loss),
            "train_accuracy": np.array(hist.train_acc),
            "sequences_seen": np.array(hist.sequences_seen),
            "readout_weights": model.params["W_out"].size + model.params["b_out"].size}


@experiment(choices={"rule": LOCAL_RULES, "readout": LOCAL_READOUTS},
            quick={"sequences": 500}, curves=("curve",))
def loopy_selective_copy(seed: int, L: int = 200, rule: str = "fast_weights",
                         readout: str = "nlms", sequences: int = 2000, n: int = 100,
                         k: int = 10, spectral_radius: float = 0.3, alpha: float = 1.0,
                         input_scale: float = 0.3, bias: float = 0.5, rule_eta: float = 2.5e-4,
                         decay: float = 1.0, eta: float = 0.1, reg: float = 1e-4,
                         batch: int = 20, eval_every: int = 500,
                         test: int = 200) -> dict[str, Any]:
    """Selective copying (:func:`loopy_edu.tasks.selective_copy`, 8 tokens among noise in
    ``L`` steps) learned by a loopy network with local learning only (Chapter 12, experiment
    8's contender). The network: ``n`` tanh units, fixed in-degree ``k``, spectral radius
    ``spectral_radius``, leak ``alpha``, inputs N(0, input_scale²), biases N(0, bias²),
    drawn with ``seed``. It learns by :func:`loopy_edu.local_learning.train_local` with the
    rule ``rule`` (rate ``rule_eta``, fast-weight decay ``decay``) and an NLMS readout (step
    ``eta``) of at most 9,000 weights, on ``sequences`` fresh sequences, ``batch`` at a time.
    ``rule="off"`` is the plasticity-off ablation: the same network, readout and sequences;
    ``readout="ridge"`` the non-local control of what the states hold (``_local_run``).

    Returns ``accuracy`` (per token on ``test`` fixed sequences, at the end; chance 1/8),
    ``accuracy_by_position`` (8,), ``curve`` (NLMS's accuracy every ``eval_every`` sequences
    and at the end), ``test_loss``, ``train_accuracy`` (the online accuracy between points),
    ``sequences_seen`` and ``readout_weights``.
    """
    check_positive(L, "L", integer=True)
    if 8 * (n + 1) > 9000:
        raise ValueError(f"n: expected at most 1124 units (8 (n + 1) <= 9,000 readout "
                         f"weights), got {n}")
    out = _local_run(seed, lambda b, s: selective_copy(L, batch=b, seed=s), n, k,
                     spectral_radius, alpha, input_scale, bias,
                     LocalRule(rule, eta=rule_eta, decay=decay), readout, reg, sequences,
                     batch, eta, eval_every, test)
    score = out.pop("score")
    return {"accuracy": score["accuracy"], "accuracy_by_position": score["by_step"], **out}


@experiment(choices={"rule": LOCAL_RULES, "readout": LOCAL_READOUTS},
            quick={"sequences": 2000}, curves=("curve_mse",))
def loopy_adding(seed: int, T: int = 100, rule: str = "fast_weights", readout: str = "nlms",
                 sequences: int = 10_000, n: int = 100, k: int = 10,
                 spectral_radius: float = 0.3, alpha: float = 1.0, input_scale: float = 0.3,
                 bias: float = 0.5, rule_eta: float = 5e-4, decay: float = 1.0,
                 eta: float = 0.1, reg: float = 1e-6, batch: int = 20, eval_every: int = 2000,
                 test: int = 200) -> dict[str, Any]:
    """The adding problem at length ``T`` (:func:`loopy_edu.tasks.adding`) learned by a loopy
    network with local learning only (Chapter 12, experiment 4): the code path and settings
    of :func:`loopy_selective_copy`, on the adding task, with no input line wired to a gate.

    Why fast weights with λ = 1 can add: A_T = η Σ_t h_t h_tᵀ holds the products of the
    inputs at each step, the marker times the value beside it among them, and the network's
    random biases (standard deviation ``bias``) give every state a constant part, a fixed key
    through which A_T y reads them out linearly. The plasticity-off control (``rule="off"``)
    has the same biases.

    Returns ``mse`` (the mean squared error on ``test`` fixed sequences, without the loss's ½;
    predicting the mean scores ``baseline`` = 1/6), ``accuracy`` (the fraction whose absolute
    error is below 0.04), ``curve_mse`` (NLMS's test mse every ``eval_every`` sequences and at
    the end), ``train_accuracy``, ``sequences_seen`` and ``readout_weights``.
    """
    check_positive(T, "T", integer=True)
    out = _local_run(seed, lambda b, s: adding(T, batch=b, seed=s), n, k, spectral_radius,
                     alpha, input_scale, bias, LocalRule(rule, eta=rule_eta, decay=decay),
                     readout, reg, sequences, batch, eta, eval_every, test)
    score, _ = out.pop("score"), out.pop("curve")
    curve = 2 * out.pop("test_loss")                # one step, one output: mse = 2 × the loss
    return {"mse": score["mse"], "accuracy": score["accuracy"],
            "baseline": 2 * adding_baseline(), "curve_mse": curve, **out}


# --- ch. 14: adaptive computation on parity ---------------------------------------------------

PONDER_METHODS = ("act", "ponder", "fixed", "tall")


def _ponder_model(method: str, n_bits: int, hidden: int, max_steps: int, tau: float,
                  beta: float, lambda_p: float, stop: str, tol: float, seed: int) -> Any:
    if method == "tall":
        return TallSLN(n_bits, hidden, 1, max_steps, stop=stop, tol=tol, tau=tau, seed=seed)
    if method == "act":
        return ACTCell(n_bits, hidden, 1, max_steps, tau=tau, seed=seed)
    if method == "ponder":
        return PonderCell(n_bits, hidden, 1, max_steps, beta=beta, lambda_p=lambda_p, seed=seed)
    return LoopedCell(n_bits, hidden, 1, max_steps, seed=seed)


@experiment(choices={"method": PONDER_METHODS, "stop": SLN_STOPS}, quick={"steps": 1000},
            curves=("curve",))
def parity_ponder(seed: int, method: str = "act", tau: float = 1e-3, max_steps: int = 10,
                  beta: float = 0.01, lambda_p: float = 0.2, stop: str = "agree",
                  tol: float = 0.1, n_bits: int = 16,
                  hidden: int = 128, train_high: int = 0, steps: int = 100_000,
                  batch: int = 128, lr: float = 1e-3, eval_every: int = 1000,
                  test: int = 1000) -> dict[str, Any]:
    """Static parity (:func:`loopy_edu.tasks.parity_vectors`) learned by one tanh cell that
    ponders (Chapter 14): ``method`` ``"act"`` (:class:`~loopy_edu.halting.ACTCell`, ponder
    cost ``tau``, at most ``max_steps`` steps), ``"ponder"``
    (:class:`~loopy_edu.halting.PonderCell`, ``beta``, ``lambda_p``, ``max_steps`` unrolled)
    or ``"fixed"`` (:class:`~loopy_edu.halting.LoopedCell`, exactly ``max_steps`` loops; 1 is
    the no-ACT control), or ``"tall"`` (:class:`~loopy_edu.sln.TallSLN`, two lobes of
    ``hidden`` units, stop rule ``stop``, agreement within ``tol``, ponder cost ``tau`` for
    ``"halt"``; Chapter 15). Adam at ``lr``, ``steps`` updates of ``batch`` fresh vectors of
    ``n_bits``, with difficulty 1..``train_high`` (0: all of 1..n_bits; n_bits // 2 is
    PonderNet's extrapolation split), as aakhundov/tf-rnn-adaptive trains Graves's task.

    The seed sets the weights and every batch. Evaluated at the end on ``test`` vectors of each
    difficulty k = 1..n_bits. Returns ``mean_error`` (the mean over k of the error at k,
    Graves's measure), ``error_k`` and ``ponder_k`` (per k; ponder is ACT's N + R,
    PonderNet's halting step, the fixed cell's loops), ``ponder`` (its mean), ``loops_k`` and
    ``loops`` (the loops run: N for ACT, whose ponder N + R is 2 for one loop),
    ``error_trained`` and ``error_new`` (the mean error over the trained and the untrained
    difficulties), ``spearman`` (of ponder against k over all test vectors), ``n_params``, and
    ``curve``: the error on ``test`` mixed vectors of the trained difficulties every
    ``eval_every`` updates.
    """
    check_choice(method, "method", PONDER_METHODS)
    for value, name in ((steps, "steps"), (batch, "batch"), (eval_every, "eval_every"),
                        (test, "test"), (hidden, "hidden"), (n_bits, "n_bits")):
        check_positive(value, name, integer=True)
    high = n_bits if train_high == 0 else train_high
    model = _ponder_model(method, n_bits, hidden, max_steps, tau, beta, lambda_p, stop, tol,
                          seed)
    base = 1_000_000 * (seed + 1)
    check_X, check_Y, _ = parity_vectors(test, n_bits, (1, high), seed=base - 1)
    curve = []

    def record(step, model, hist):
        if (step + 1) % eval_every == 0:
            curve.append(float(((model.predict(check_X)[0] > 0.5) != (check_Y > 0.5)).mean()))

    train_batches(model, lambda s: parity_vectors(batch, n_bits, (1, high), seed=base + s)[:2],
                  Adam(lr=lr), steps, progress=False, callback=record)
    error_k, ponder_k, loops_k, ks, ponders = [], [], [], [], []
    for k in range(1, n_bits + 1):
        X, Y, _ = parity_vectors(test, n_bits, k, seed=base - 1 - k)
        probs, ponder = model.predict(X)
        error_k.append(float(((probs > 0.5) != (Y > 0.5)).mean()))
        ponder_k.append(float(ponder.mean()))
        # ACT's ponder N + R lies in (N, N + 1]; the others' ponder is the loops themselves.
        uses_R = method == "act" or method == "tall" and stop == "halt"
        loops_k.append(float((np.ceil(ponder) - 1 if uses_R else ponder).mean()))
        ks.append(np.full(test, k)), ponders.append(ponder)
    error_k = np.array(error_k)
    ponders = np.concatenate(ponders)
    rho = spearmanr(np.concatenate(ks), ponders).statistic if np.ptp(ponders) > 0 else np.nan
    return {"mean_error": float(error_k.mean()), "error_k": error_k,
            "ponder_k": np.array(ponder_k),
            "ponder": float(np.mean(ponder_k)), "loops_k": np.array(loops_k),
            "loops": float(np.mean(loops_k)), "error_trained": float(error_k[:high].mean()),
            "error_new": float(error_k[high:].mean()) if high < n_bits else float("nan"),
            "spearman": float(rho),                   # NaN where ponder is constant
            "n_params": sum(p.size for p in model.params.values()), "curve": np.array(curve)}


# --- ch. 15: the lateralized SLN's stop on parity ---------------------------------------------

@experiment(choices={"method": ("lateral", "cell")}, quick={"steps": 1000},
            curves=("curve",))
def parity_lateral(seed: int, theta: float = 0.9, hidden: int = 88, critic: int = 88,
                   max_loops: int = 10, critic_weight: float = 1.0, n_bits: int = 16,
                   steps: int = 20_000, batch: int = 128, lr: float = 1e-3,
                   eval_every: int = 1000, test: int = 1000,
                   method: str = "lateral") -> dict[str, Any]:
    """Static parity (:func:`loopy_edu.tasks.parity_vectors`) learned by the lateralized SLN
    (:class:`~loopy_edu.sln_lateral.LateralSLN`, Chapter 15, experiment 4): an actor of
    ``hidden`` units, a critic of ``critic`` units weighted ``critic_weight``, all
    ``max_loops`` loops supervised in training, stopped at test time at the first score ≥
    ``theta``. ``method`` ``"cell"`` is its one-model control, TRM's design: one cell of
    ``hidden`` units with the critic as its halting head
    (:class:`~loopy_edu.sln_lateral.CriticCell`; ``critic`` unused; 128 units give 18,946
    weights against the SLN's 19,010). Adam at ``lr``, ``steps`` updates of ``batch`` fresh
    vectors of ``n_bits`` with difficulty 1..n_bits; the seed sets the weights and every batch.

    Evaluated at the end on ``test`` vectors of each difficulty k = 1..n_bits, every loop run:
    ``mean_error`` and ``error_k`` (the answer where the critic stopped, Graves's mean over
    k), ``error_fixed`` and ``error_fixed_k`` (the same model's answer at the cap: the
    fixed-max-loops bar), ``loops_k``, ``loops`` and ``loop_fraction`` (loops used, and as a
    fraction of the cap), ``halted`` (the fraction of vectors whose score reached θ),
    ``precision`` (P(correct | halted)), ``error_by_loop`` (max_loops,) (the error after each
    loop, mean over k), the critic's calibration over every loop and vector in 10 equal bins of
    the score: ``calib_score`` (mean score), ``calib_accuracy`` (fraction right) and
    ``calib_count``; ``spearman`` (loops against k), ``n_params``, and ``curve``: the error at
    θ on ``test`` mixed vectors every ``eval_every`` updates.
    """
    for value, name in ((steps, "steps"), (batch, "batch"), (eval_every, "eval_every"),
                        (test, "test"), (n_bits, "n_bits")):
        check_positive(value, name, integer=True)
    check_choice(method, "method", ("lateral", "cell"))
    model = (LateralSLN(n_bits, hidden, 1, critic, max_loops, theta, critic_weight, seed=seed)
             if method == "lateral" else
             CriticCell(n_bits, hidden, 1, max_loops, theta, critic_weight, seed=seed))
    base = 1_000_000 * (seed + 1)
    check_X, check_Y, _ = parity_vectors(test, n_bits, seed=base - 1)
    curve = []

    def record(step, model, hist):
        if (step + 1) % eval_every == 0:
            curve.append(float(((model.predict(check_X)[0] > 0.5) != (check_Y > 0.5)).mean()))

    train_batches(model, lambda s: parity_vectors(batch, n_bits, seed=base + s)[:2],
                  Adam(lr=lr), steps, progress=False, callback=record)
    right, scores, stops, ks = [], [], [], []
    for k in range(1, n_bits + 1):
        X, Y, _ = parity_vectors(test, n_bits, k, seed=base - 1 - k)
        c = model.forward(X)
        right.append(exactly_right(c["Q"], Y)), scores.append(c["C"]), stops.append(c["N"])
        ks.append(np.full(test, k))
    right, scores = np.stack(right), np.stack(scores)       # (n_bits, max_loops, test)
    stops, b = np.stack(stops), np.arange(test)              # (n_bits, test)
    at_stop = np.stack([r[N - 1, b] for r, N in zip(right, stops)])
    halted = np.stack([C[N - 1, b] >= theta for C, N in zip(scores, stops)])
    bins = np.minimum((scores * 10).astype(int), 9).ravel()
    count = np.bincount(bins, minlength=10)
    per_bin = lambda v: np.bincount(bins, v.ravel(), minlength=10) / np.maximum(count, 1)
    rho = spearmanr(np.concatenate(ks), stops.ravel()).statistic if np.ptp(stops) else np.nan
    return {"mean_error": float(1 - at_stop.mean()), "error_k": 1 - at_stop.mean(axis=1),
            "error_fixed": float(1 - right[:, -1].mean()),
            "error_fixed_k": 1 - right[:, -1].mean(axis=1),
            "loops_k": stops.mean(axis=1), "loops": float(stops.mean()),
            "loop_fraction": float(stops.mean() / max_loops), "halted": float(halted.mean()),
            "precision": float(at_stop[halted].mean()) if halted.any() else float("nan"),
            "error_by_loop": 1 - right.mean(axis=(0, 2)), "calib_score": per_bin(scores),
            "calib_accuracy": per_bin(right.astype(float)), "calib_count": count,
            "spearman": float(rho), "n_params": sum(p.size for p in model.params.values()),
            "curve": np.array(curve)}


# --- ch. 15, experiment 3: easy to hard on prefix parity --------------------------------------

def easy_to_hard_loops(n_bits: int, iterations: int, train_bits: int) -> int:
    """The test-time loop rule of experiment 3, fixed before any test: loops in proportion to
    the length, ::

        loops(n_bits) = ceil(iterations × n_bits / train_bits),

    since one loop carries information a fixed number of positions; a net trained with one
    loop is feed-forward and is tested with one.

    Parameters
    ----------
    n_bits : int
        The test length.
    iterations : int
        The loops in training.
    train_bits : int
        The training length.

    Returns
    -------
    int
    """
    return 1 if iterations == 1 else -(-iterations * n_bits // train_bits)


@experiment(choices={"lobes": (2, 1)}, quick={"steps": 500}, curves=("curve",))
def prefix_parity_easy_to_hard(seed: int, lobes: int = 2, channels: int = 16,
                               iterations: int = 32, supervise_from: int = 0,
                               recall: bool = True, kernel_size: int = 3, steps: int = 8000,
                               batch: int = 32, lr: float = 2e-3, clip: float = 1.0,
                               train_bits: int = 16, test_bits: str = "16,32,64",
                               test: int = 500, overthink: float = 2.0) -> dict[str, Any]:
    """Easy to hard (Chapter 15, experiment 3): a :class:`~loopy_edu.sln_conv.ConvSLN` trained
    on prefix parity (:func:`loopy_edu.tasks.prefix_parity`) of ``train_bits`` and tested on
    longer strings with more loops (:func:`easy_to_hard_loops`), as DeepThinking nets are.

    ``lobes`` 2, or 1 for the single looped network at matched parameters (its width is
    :func:`~loopy_edu.sln_conv.matched_channels` of ``channels``); ``iterations`` 1 is the
    non-looping control. The loss supervises the loops ``supervise_from``..``iterations``
    (0: the model's default, the second half). Adam at ``lr``, gradients clipped to norm
    ``clip``, ``steps`` updates of ``batch`` fresh strings; the seed sets the weights and every
    string.

    Returns ``accuracy`` (exact-string accuracy on ``test`` strings of each length of
    ``test_bits`` at the rule's loops; also as ``accuracy_<bits>``), ``bit_accuracy`` (per
    position), ``lengths`` (the test lengths), ``test_iterations`` (the rule's loops),
    ``accuracy_by_loops`` (len(lengths), ``overthink`` × the longest length's loops):
    exact-string accuracy after each loop, ``n_params``, ``width`` (the channels used) and
    ``curve``, the training loss averaged over each 100 updates.
    """
    check_choice(lobes, "lobes", (1, 2))
    for value, name in ((channels, "channels"), (iterations, "iterations"), (steps, "steps"),
                        (batch, "batch"), (train_bits, "train_bits"), (test, "test")):
        check_positive(value, name, integer=True)
    check_number(overthink, "overthink", 1.0)
    try:
        lengths = [int(v) for v in test_bits.split(",")]
    except ValueError:
        lengths = []
    if not lengths or min(lengths) < 1:
        raise ValueError(f"test_bits: expected positive integers separated by commas, such as "
                         f"'16,32,64', got {test_bits!r}")
    width = channels if lobes == 2 else matched_channels(channels, kernel_size)
    model = ConvSLN(width, lobes, kernel_size, iterations, supervise_from or None, recall,
                    seed=seed)
    base = 1_000_000 * (seed + 1)
    hist = train_batches(model, lambda s: prefix_parity(batch, train_bits, seed=base + s),
                         Adam(lr=lr), steps, clip=clip, progress=False)
    rules = [easy_to_hard_loops(n, iterations, train_bits) for n in lengths]
    most = int(np.ceil(overthink * max(rules)))
    out: dict[str, Any] = {}
    exact, bits, by_loops = [], [], []
    for i, (n_bits, loops) in enumerate(zip(lengths, rules)):
        X, Y = prefix_parity(test, n_bits, seed=base - 1 - i)
        right = (model.predict(X, most, every_loop=True) > 0.5) == (Y > 0.5)  # (loops, B, L)
        by_loops.append(right.all(axis=2).mean(axis=1))
        exact.append(float(by_loops[-1][loops - 1]))
        bits.append(float(right[loops - 1].mean()))
        out[f"accuracy_{n_bits}"] = exact[-1]
    losses = np.asarray(hist.loss)
    return {**out, "accuracy": np.array(exact), "bit_accuracy": np.array(bits),
            "lengths": np.array(lengths), "test_iterations": np.array(rules),
            "accuracy_by_loops": np.array(by_loops), "width": width,
            "n_params": sum(p.size for p in model.params.values()),
            "curve": np.array([losses[i:i + 100].mean() for i in range(0, len(losses), 100)])}


# --- ch. 15, experiment 5: the wide SLN on composition ----------------------------------------

COMPOSITION_METHODS = ("wide", "wide1", "rnn")


def composition_params(method: str, n_bits: int, hidden: int, n_experts: int = 4) -> int:
    """The parameter count of experiment 5's model ``method`` with ``hidden`` units on
    :func:`~loopy_edu.tasks.bit_program` strings of ``n_bits`` (tokens of n_in = n_bits + 7):
    the wide SLN (``"wide"``: ``n_experts`` per lobe; ``"wide1"``: one), with D = H + n_in, ::

        3 (D + 1) + 2 E (D + 1)(H + 1) + n_bits (H + 1)

    and the single looped network (``"rnn"``, :class:`~loopy_edu.rnn.RNN`), ::

        H (n_in + H + 1) + n_bits (H + 1)

    Parameters
    ----------
    method : str
        ``"wide"``, ``"wide1"`` or ``"rnn"``.
    n_bits, hidden, n_experts : int
        The string length, the units H, the experts E per lobe (``"wide"`` only).

    Returns
    -------
    int
    """
    check_choice(method, "method", COMPOSITION_METHODS)
    n_in = n_bits + len(PRIMITIVES) + 1
    if method == "rnn":
        return hidden * (n_in + hidden + 1) + n_bits * (hidden + 1)
    E, D = (n_experts if method == "wide" else 1), hidden + n_in
    return 3 * (D + 1) + 2 * E * (D + 1) * (hidden + 1) + n_bits * (hidden + 1)


def composition_hidden(method: str, n_bits: int = 8, match_hidden: int = 32,
                       n_experts: int = 4) -> int:
    """The width of ``method`` whose parameter count (:func:`composition_params`) is closest
    to that of the wide SLN with ``match_hidden`` units and ``n_experts`` experts per lobe
    (the smaller width on a tie): the parameter-matched controls of experiment 5. At the
    defaults (13,080 weights) the RNN gets 103 units (13,089) and the one-expert SLN 70
    (13,038).

    Parameters
    ----------
    method : str
        ``"wide"`` (which returns ``match_hidden``), ``"wide1"`` or ``"rnn"``.
    n_bits, match_hidden, n_experts : int
        The string length, and the width and experts of the wide SLN to match.

    Returns
    -------
    int
    """
    budget = composition_params("wide", n_bits, match_hidden, n_experts)
    return min(range(1, budget + 1), key=lambda h: (
        abs(composition_params(method, n_bits, h, n_experts) - budget), h))


def _token_kinds(X: np.ndarray, n_bits: int) -> np.ndarray:  # X (B, T, n_in) -> (B, T)
    # 0 the string, 1..len(PRIMITIVES) the ops, then "end", then padding (all zeros).
    kind = np.where(X[:, :, -1] == 1, len(PRIMITIVES) + 1, len(PRIMITIVES) + 2)
    ops = X[:, :, n_bits:-1]
    kind = np.where(ops.any(axis=2), 1 + ops.argmax(axis=2), kind)
    kind[:, 0] = 0
    return kind


def _routes_by_token(model: WideSLN, X: np.ndarray, cap: int, n_bits: int) -> np.ndarray:
    """Counts (len(PRIMITIVES) + 3, 2 E + 1) of the hard routes: rows the kind of token the
    loop read, columns the left experts, the right experts, then the output (the stop)."""
    lobe, expert = model.routes(X, cap)                                   # (B, cap) each
    E = model.n_experts
    X = np.concatenate([X, np.zeros((len(X), max(cap - X.shape[1], 0), X.shape[2]))], 1)
    kind = _token_kinds(X[:, :cap], n_bits)
    route = np.where(lobe == 2, 2 * E, lobe * E + expert)
    ran = lobe >= 0
    counts = np.zeros((len(PRIMITIVES) + 3, 2 * E + 1))
    np.add.at(counts, (kind[ran], route[ran]), 1)
    return counts


def _information(counts: np.ndarray) -> float:
    """I(row; column) / H(row) of a table of joint counts: the fraction of the row's entropy
    that the column tells (1: the route names the op; 0: the two are independent)."""
    if counts.sum() == 0:
        return float("nan")
    joint = counts / counts.sum()
    rows, cols = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    info = (joint[nz] * np.log(joint[nz] / (rows @ cols)[nz])).sum()
    h_rows = -(rows[rows > 0] * np.log(rows[rows > 0])).sum()
    return float(info / h_rows) if h_rows > 0 else float("nan")


def _sequence_task(X: np.ndarray, Y: np.ndarray, k: np.ndarray) -> Task:
    """bit_program's (X, Y, k) as the RNN's Task: it reads the tokens one per step and is
    scored (MSE on the 0/1 bits) at the end token, step k + 1."""
    xs = np.ascontiguousarray(X.transpose(1, 0, 2))                      # (T, B, n_in)
    b = np.arange(len(X))
    targets, mask = np.zeros(xs.shape[:2] + Y.shape[1:]), np.zeros(xs.shape[:2])
    targets[k + 1, b], mask[k + 1, b] = Y, 1.0
    return Task(xs, targets, mask, "mse", "bit_program")


@experiment(choices={"method": COMPOSITION_METHODS}, quick={"steps": 500}, curves=("curve",))
def composition(seed: int, method: str = "wide", n_bits: int = 8, hidden: int = 0,
                match_hidden: int = 32, n_experts: int = 4, max_loops: int = 7,
                ponder_cost: float = 0.01, entropy_cost: float = 0.003, train_low: int = 1,
                train_high: int = 3, test_high: int = 8, steps: int = 10_000,
                batch: int = 64, lr: float = 0.03, clip: float = 1.0,
                eval_every: int = 500, test: int = 500) -> dict[str, Any]:
    """The wide SLN on composition (Chapter 15, experiment 5): programs of k named bit-string
    primitives (:func:`loopy_edu.tasks.bit_program`) on strings of ``n_bits``, trained on
    k = ``train_low``..``train_high`` and tested on every k up to ``test_high``.

    ``method`` ``"wide"`` is :class:`~loopy_edu.sln_wide.WideSLN` (``n_experts`` per lobe,
    ``ponder_cost``, ``entropy_cost``, cap ``max_loops`` ≥ train_high + 2 in training, so that
    the longest program's end token is read); ``"wide1"`` the same with one expert per lobe,
    the ablation of the experts; ``"rnn"`` the single looped network
    (:class:`~loopy_edu.rnn.RNN`, tanh), which reads the same tokens and answers at the end
    token (MSE on the bits: it has no BCE). ``hidden`` is the method's own width; 0 takes the
    width whose parameter count matches the wide SLN with ``match_hidden`` units and
    ``n_experts`` experts (:func:`composition_hidden`). Adam at ``lr``, gradients clipped to
    norm ``clip`` (0: not clipped), ``steps`` updates of ``batch`` fresh programs; the seed
    sets the weights and every program. The defaults are the wide SLN's tuned settings (the
    RNN's best was ``lr=0.005``, ``clip=0``).

    The test rule, fixed before testing: the hard pass (each gate's argmax) with the cap moved
    with the program, k + max_loops − train_high (the slack after the end token kept); a bit
    is 1 where the answer is > 1/2. On ``test`` programs of each k = 1..test_high it returns
    ``accuracy_k`` (whole string right) and ``bit_accuracy_k``; ``accuracy_trained`` and
    ``accuracy_ood`` (their mean over the trained k and over k > train_high); ``loops_k``
    (the loops used: the stop, or the cap; the RNN's tokens read, k + 2); ``stops_at_end``
    (the fraction that stop at the loop that reads the end token, k + 2); ``gate_entropy``
    (the main gate's and the expert gates' mean entropy in nats over the soft pass's loops,
    of at most log 3 and log E); ``soft_accuracy_k`` (the soft pass's answer, as trained:
    the train/test gap); ``expert_use`` (2 E,) (the share of the lobes' hard runs
    taken by each left expert, then each right one); ``route_by_token``
    (len(PRIMITIVES) + 3, 2 E + 1): for the tokens read (the string, each primitive in
    :data:`~loopy_edu.tasks.PRIMITIVES` order, "end", padding), the share of loops routed to
    each left expert, right expert, and the output; ``op_information`` (how much of the op's
    entropy the route taken at an op token tells, in [0, 1]); ``n_params``, ``width`` and
    ``curve``, whole-string accuracy on ``test`` programs of the trained k every
    ``eval_every`` updates. The RNN's gate and route results are NaN.
    """
    check_choice(method, "method", COMPOSITION_METHODS)
    for value, name in ((n_bits, "n_bits"), (match_hidden, "match_hidden"),
                        (n_experts, "n_experts"), (train_low, "train_low"), (steps, "steps"),
                        (batch, "batch"), (eval_every, "eval_every"), (test, "test")):
        check_positive(value, name, integer=True)
    for value, name, low in ((hidden, "hidden", 0), (train_high, "train_high", train_low),
                             (test_high, "test_high", train_high),
                             (max_loops, "max_loops", train_high + 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    check_number(clip, "clip", 0.0)
    width = hidden or composition_hidden(method, n_bits, match_hidden, n_experts)
    n_in, rnn = n_bits + len(PRIMITIVES) + 1, method == "rnn"
    model = (RNN(n_in, width, n_bits, seed=seed) if rnn else
             WideSLN(n_in, width, n_bits, n_experts if method == "wide" else 1, max_loops,
                     entropy_cost, ponder_cost, seed=seed))
    trained = (train_low, train_high)
    base = 1_000_000 * (seed + 1)

    def answer(X, k, cap):  # -> probabilities (B, n_bits), loops or tokens read (B,)
        if rnn:
            ys = model.predict(np.ascontiguousarray(X.transpose(1, 0, 2)))   # (T, B, n_bits)
            return ys[k + 1, np.arange(len(X))], k + 2
        return model.predict(X, cap)

    check_X, check_Y, check_k = bit_program(test, n_bits, trained, seed=base - 1)
    curve = []

    def record(step, model, hist):
        if (step + 1) % eval_every == 0:
            right = (answer(check_X, check_k, max_loops)[0] > 0.5) == (check_Y > 0.5)
            curve.append(float(right.all(axis=1).mean()))

    fit = dict(steps=steps, clip=clip or None, progress=False, callback=record)
    if rnn:
        train_sequences(model, lambda s: _sequence_task(*bit_program(
            batch, n_bits, trained, seed=base + s)), Adam(lr=lr), **fit)
    else:
        train_batches(model, lambda s: bit_program(batch, n_bits, trained, seed=base + s)[:2],
                      Adam(lr=lr), **fit)
    exact, bits, loops_k, at_end, entropy, soft = [], [], [], [], [], []
    routes = 0.0
    for k in range(1, test_high + 1):
        X, Y, ks = bit_program(test, n_bits, k, seed=base - 1 - k)
        cap = k + max_loops - train_high
        probs, loops = answer(X, ks, cap)
        right = (probs > 0.5) == (Y > 0.5)
        exact.append(right.all(axis=1).mean()), bits.append(right.mean())
        loops_k.append(loops.mean()), at_end.append((loops == k + 2).mean())
        if rnn:
            continue
        c = model.forward(X, cap)
        entropy.append([gate_entropy(c["pi"]), gate_entropy(c["gamma"])])
        soft.append(((c["y"] > 0) == (Y > 0.5)).all(axis=1).mean())
        routes = routes + _routes_by_token(model, X, cap, n_bits)
    exact = np.array(exact)
    nan = float("nan")
    if rnn:
        gates = dict(stops_at_end=nan, gate_entropy=np.full(2, nan),
                     soft_accuracy_k=np.full(test_high, nan),
                     expert_use=np.full(1, nan), route_by_token=np.full((1, 1), nan),
                     op_information=nan)
    else:
        ops = routes[1:len(PRIMITIVES) + 1]
        lobes = routes[:, :-1].sum(axis=0)
        with np.errstate(invalid="ignore"):
            shares = routes / routes.sum(axis=1, keepdims=True)          # NaN: never read
        gates = dict(stops_at_end=float(np.mean(at_end)),
                     gate_entropy=np.mean(entropy, axis=0), soft_accuracy_k=np.array(soft),
                     expert_use=lobes / max(lobes.sum(), 1), route_by_token=shares,
                     op_information=_information(ops))
    return {"accuracy_k": exact, "bit_accuracy_k": np.array(bits),
            "accuracy_trained": float(exact[train_low - 1:train_high].mean()),
            "accuracy_ood": float(exact[train_high:].mean()) if test_high > train_high else nan,
            "loops_k": np.array(loops_k), **gates, "width": width,
            "n_params": sum(p.size for p in model.params.values()), "curve": np.array(curve)}
