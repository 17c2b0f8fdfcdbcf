"""The seed exercise worked end to end, as text for a terminal.

Used by ``jaxbp demo`` and ``experiments/week9_q2.py``. Presentation only: every
number comes from the library's public functions.
"""

from __future__ import annotations

import numpy as np

from .grads._check import check_grads
from .nn._mlp import compute_loss, forward_trace
from .nn._tree import to_augmented
from .teach._exercises import seed_exercise
from .training._train import sgd_update, train
from .util._text import table

__all__ = ["seed_demo"]


def _table(header, rows) -> list[str]:
    """Names left, numbers right."""
    return table(header, rows, right=range(1, len(header)))


def _seed_labels():
    """(layer, row, col) -> (the seed's name, what the weight connects), augmented layout."""
    labels = {}
    for r, src in enumerate(["1 (bias)", "x1", "x2", "x3"]):
        for c, dst in enumerate(["H1", "H2"]):
            labels[(0, r, c)] = (f"W11[{2 * r + c + 1}]", f"{src} -> {dst}")
    for r, src in enumerate(["1 (bias)", "G(H1)", "G(H2)"]):
        labels[(1, r, 0)] = (f"w2{r + 1}", f"{src} -> O")
    return labels


def seed_demo(*, learning_rate: float = 0.5, steps: int = 50, dtype="float64") -> str:
    """The seed exercise (Week 9 Q2) worked through: forward, three gradients, an update, training."""
    ex = seed_exercise(dtype=dtype)
    out = _intro(ex, dtype)
    out += _forward_section(ex)
    check = check_grads(ex.params, ex.x, ex.y, activation=ex.activation, loss=ex.loss)
    out += _gradient_section(ex, check)
    out += _update_section(ex, check, learning_rate)
    out += _training_section(ex, learning_rate, steps)
    return "\n".join(out)


def _intro(ex, dtype) -> list[str]:
    """The network, the input and the weights in the exercise's layout."""
    p, x, y = ex.params, ex.x, ex.y
    out = []
    say = out.append
    say("jaxbp demo: Week 9 Q2, the seed exercise")
    say("=" * 41)
    say("A 3-2-1 network: sigmoid hidden units H1, H2, one sigmoid output; binary cross-entropy.")
    say(
        f"Input x = {np.asarray(x)[0].tolist()} (a bias input 1 in front), label y = {float(y[0]):g}, dtype {dtype}."
    )
    say(
        "Weights in the exercise's augmented layout (row 0 = bias, rows = inputs, columns = units):"
    )
    aug = [np.asarray(m) for m in to_augmented(p)]
    say("  W11 (4 x 2) = " + np.array2string(aug[0], separator=", ").replace("\n", "\n" + " " * 16))
    say("  W2j (3 x 1) = " + np.array2string(aug[1][:, 0], separator=", "))
    say("")
    return out


def _forward_section(ex) -> list[str]:
    """H1, H2, G(H), O, Z and the loss, with the numbers put in as the exercise writes them."""
    p, x, y = ex.params, ex.x, ex.y
    aug = [np.asarray(m) for m in to_augmented(p)]
    out = []
    say = out.append
    t = forward_trace(p, x, activation=ex.activation)
    h1, h2 = np.asarray(t.h[0])[0]
    g1, g2 = np.asarray(t.a[0])[0]
    o = float(t.logits[0, 0])
    z = float(t.probs[0, 0])
    loss = float(compute_loss(p, x, y, activation=ex.activation, loss=ex.loss))
    xs = np.asarray(x)[0]
    w = aug[0]
    say("Forward pass")
    say("------------")
    for name, col, val in (("H1", 0, h1), ("H2", 1, h2)):
        terms = " + ".join(f"({w[r + 1, col]:g})({xs[r]:g})" for r in range(3))
        say(f"  {name} = {w[0, col]:g} + {terms} = {val:.8g}")
    say(f"  G(H1) = 1 / (1 + e^-{h1:g}) = {g1:.8f}")
    say(f"  G(H2) = 1 / (1 + e^{-h2:g}) = {g2:.8f}")
    v = aug[1][:, 0]
    say(f"  O = {v[0]:g} + ({v[1]:g})({g1:.8f}) + ({v[2]:g})({g2:.8f}) = {o:.8f}")
    say(f"  Z = G(O) = {z:.8f}")
    say(f"  L = -[y log Z + (1 - y) log(1 - Z)] = {loss:.8f}")
    say("")
    return out


def _gradient_section(ex, check) -> list[str]:
    """Every weight's gradient by autodiff, by hand and by finite differences, side by side."""
    y = ex.y
    z = float(forward_trace(ex.params, ex.x, activation=ex.activation).probs[0, 0])
    out = []
    say = out.append
    say(
        "Gradients three ways: autodiff (jax.grad), manual (chain rule by hand), numerical (central differences)"
    )
    say("-" * 99)
    say(
        f"  dL/dO = Z - y = {z - float(y[0]):.8f}   (the exercise's (z - y) / (z (1 - z)) times z (1 - z))"
    )
    labels = _seed_labels()
    rows = []
    for layer in range(2):
        aug_grads = [
            np.asarray(to_augmented(g)[layer])
            for g in (check.autodiff, check.manual, check.numerical)
        ]
        for (li, r, c), (name, conn) in labels.items():
            if li != layer:
                continue
            a, m, n = (g[r, c] for g in aug_grads)
            rows.append(
                [
                    name,
                    conn,
                    f"{a:+.10f}",
                    f"{m:+.10f}",
                    f"{n:+.10f}",
                    f"{abs(m - a):.1e}",
                    f"{abs(n - a):.1e}",
                ]
            )
    out.extend(
        "  " + line
        for line in _table(
            ["weight", "connects", "autodiff", "manual", "numerical", "|man-auto|", "|num-auto|"],
            rows,
        )
    )
    say("")
    say(
        f"  manual vs autodiff: {'agree' if check.manual_vs_autodiff.ok else 'DISAGREE'}. {check.manual_vs_autodiff.explanation[0]}"
    )
    say(
        f"  numerical vs autodiff: {'agree' if check.numerical_vs_autodiff.ok else 'DISAGREE'}. {next((n for n in check.notes if n.startswith('finite differences')), '')}"
    )
    say("")
    return out


def _update_section(ex, check, learning_rate) -> list[str]:
    """One step of the seed's rule w' = w - lr * dL/dw, weight by weight."""
    p, x, y = ex.params, ex.x, ex.y
    labels = _seed_labels()
    loss = float(compute_loss(p, x, y, activation=ex.activation, loss=ex.loss))
    out = []
    say = out.append
    new = sgd_update(p, check.manual, learning_rate)
    new_loss = float(compute_loss(new, x, y, activation=ex.activation, loss=ex.loss))
    say(f"One SGD update, w' = w - lr * dL/dw with lr = {learning_rate:g}")
    say("-" * 50)
    rows = []
    for layer in range(2):
        before, grad_, after = (
            np.asarray(to_augmented(t_)[layer]) for t_ in (p, check.manual, new)
        )
        for (li, r, c), (name, _) in labels.items():
            if li == layer:
                rows.append(
                    [name, f"{before[r, c]:+.6f}", f"{grad_[r, c]:+.6f}", f"{after[r, c]:+.6f}"]
                )
    out.extend("  " + line for line in _table(["weight", "w", "dL/dw", "w'"], rows))
    say(f"  loss {loss:.6f} -> {new_loss:.6f}")
    say("")
    return out


def _training_section(ex, learning_rate, steps) -> list[str]:
    """Training as one compiled program, with manual and with autodiff gradients."""
    p, x, y = ex.params, ex.x, ex.y
    out = []
    say = out.append
    run = train(
        p, x, y, learning_rate, steps=steps, activation=ex.activation, loss=ex.loss, grad="manual"
    )
    run_ad = train(
        p, x, y, learning_rate, steps=steps, activation=ex.activation, loss=ex.loss, grad="autodiff"
    )
    hist = np.asarray(run.history.loss)
    say(
        f"Training: {steps} SGD steps at lr = {learning_rate:g}, compiled as one program (lax.scan in jit)"
    )
    say("-" * 80)
    marks = sorted({0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000} & set(range(steps)) | {steps - 1})
    top = max(hist[0], 1e-12)
    for s in marks:
        bar = "#" * max(1, round(40 * hist[s] / top))
        say(f"  step {s:>5}  loss {hist[s]:.6f}  {bar}")
    say(
        f"  final  loss {float(run.final_loss):.6f}  (Z = {1 / (1 + np.exp(-float(forward_trace(run.params, x).logits[0, 0]))):.4f})"
    )
    diff = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(
            [leaf for layer in run.params for leaf in layer.values()],
            [leaf for layer in run_ad.params for leaf in layer.values()],
        )
    )
    say(
        f"  trained with manual and with autodiff gradients: final weights differ by at most {diff:.1e}"
    )
    return out
