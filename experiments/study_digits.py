"""Study 4: how much of a network's test accuracy is its start, and how much its data order.

    python experiments/study_digits.py [--out runs/digits] [--quick]

scikit-learn's 8x8 digits as odd-vs-even (1,352 images to train on, 445 held out;
64 standardized pixels). 64-32-1 networks (tanh hidden units, Glorot-normal starts,
binary cross-entropy, plain SGD at 0.05) trained four ways at a matched number of
examples seen (40 epochs): full batch, and minibatches of 256, 64 and 16. Each
minibatch condition trains a crossed 32 x 32 table of starts (``train_many(...,
crossed=(32, 32))``): a row shares an initialization, a column a data order, so a
two-way analysis of variance splits the spread of test accuracy into the part due
to the initialization, the part due to the data order, and what is left (their
interaction). Findings (report.md): the spread per condition, those shares, the
accuracy of ensembles against their size, held-out curves against examples seen.

The run folder is resumable: each condition's results are one file in
``conditions/``, written whole when the condition is done.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from jaxbp.internal import write_atomic

EPOCHS, ROWS, COLS, LR = 40, 32, 32, 0.05
QUICK = dict(epochs=4, rows=4, cols=4)
BATCHES = (None, 256, 64, 16)
SIZES = (64, 32, 1)


def name(batch) -> str:
    return "full batch" if batch is None else f"batch {batch}"


def run_condition(task, batch, *, epochs, rows, cols, progress):
    n = len(task.y)
    steps = epochs * (1 if batch is None else n // batch)
    kw = dict(crossed=(rows, cols), batch_size=batch) if batch else {}
    r = jaxbp.train_many(
        jax.random.key(0), SIZES, task.x.astype(np.float32), task.y.astype(np.float32),
        n_inits=rows * cols, steps=steps, learning_rate=LR, scheme="glorot_normal",
        activation="tanh", record_every=steps // epochs,
        x_test=task.x_test, y_test=task.y_test, keep_params=True, progress=progress, **kw,
    )  # fmt: skip
    probs = jax.vmap(
        lambda p: jax.nn.sigmoid(
            jaxbp.forward(p, jnp.asarray(task.x_test, jnp.float32), activation="tanh")
        )
    )(r.params)
    return {
        "steps": np.array(steps),
        "test_accuracy": r.test_accuracy,
        "test_loss": r.test_loss,
        "accuracy": r.accuracy,
        "history": r.history,
        "test_loss_history": r.test_loss_history,
        "test_accuracy_history": r.test_accuracy_history,
        "probabilities": np.asarray(probs).reshape(rows * cols, -1),
        "seconds": np.array(r.seconds),
    }


def variance_shares(acc: np.ndarray, rows: int, cols: int) -> dict[str, float]:
    """Two-way random-effects ANOVA without replication on a rows x cols table: variance
    components of initialization (rows), data order (columns) and the rest (interaction)."""
    t = acc.reshape(rows, cols).astype(np.float64)
    grand = t.mean()
    ms_row = cols * np.sum((t.mean(axis=1) - grand) ** 2) / (rows - 1)
    ms_col = rows * np.sum((t.mean(axis=0) - grand) ** 2) / (cols - 1)
    resid = t - t.mean(axis=1, keepdims=True) - t.mean(axis=0, keepdims=True) + grand
    ms_res = np.sum(resid**2) / ((rows - 1) * (cols - 1))
    comp = {
        "initialization": max(0.0, (ms_row - ms_res) / cols),
        "data order": max(0.0, (ms_col - ms_res) / rows),
        "interaction": ms_res,
    }
    total = sum(comp.values()) or 1.0
    return {k: v / total for k, v in comp.items()} | {"total variance": sum(comp.values())}


def ensemble_curve(probs, y, sizes, draws=100, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k in sizes:
        accs = [
            np.mean(
                (probs[rng.choice(len(probs), k, replace=False)].mean(axis=0) > 0.5) == (y > 0.5)
            )
            for _ in range(draws if k < len(probs) else 1)
        ]
        out.append((np.mean(accs), np.quantile(accs, 0.1), np.quantile(accs, 0.9)))
    return np.array(out)


def figures(out: Path, results, task, shares, curves, sizes):
    plt = jaxbp.pyplot()
    colors = dict(zip(results, ["#6e7781", "#0969da", "#1a7f37", "#cf222e"]))
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    a, b, c, d = axes.ravel()
    n_test = len(task.y_test)
    for cond, res in results.items():
        acc = res["test_accuracy"]
        a.hist(acc, bins=np.arange(acc.min() - 0.5 / n_test, acc.max() + 1 / n_test, 1 / n_test),
               histtype="step", lw=1.6, color=colors[cond], label=f"{cond}: median {np.median(acc):.1%}")  # fmt: skip
    a.set_xlabel(f"test accuracy ({n_test} held-out images)")
    a.set_ylabel("networks")
    a.set_title("Spread of test accuracy over starts and data orders")
    a.legend(fontsize=8)
    names = [k for k in shares]
    left = np.zeros(len(names))
    for part, color in (
        ("initialization", "#0969da"),
        ("data order", "#9a6700"),
        ("interaction", "#8c959f"),
    ):
        v = np.array([shares[k][part] for k in names])
        b.barh(names, v, left=left, color=color, label=part)
        left += v
    b.set_xlim(0, 1)
    b.set_xlabel("share of the variance of test accuracy")
    b.set_title("What the spread is made of (two-way ANOVA)")
    b.legend(fontsize=8, loc="lower right")
    for cond, curve in curves.items():
        c.plot(sizes[: len(curve)], curve[:, 0], "o-", ms=3, color=colors[cond], label=cond)
        c.fill_between(
            sizes[: len(curve)], curve[:, 1], curve[:, 2], color=colors[cond], alpha=0.15
        )
    c.set_xscale("log", base=2)
    c.set_xlabel("ensemble size (networks whose probabilities are averaged)")
    c.set_ylabel("test accuracy")
    c.set_title("Ensembles: mean and 10-90% over random draws")
    c.legend(fontsize=8)
    n = len(task.y)
    for cond, res in results.items():
        h = res["test_loss_history"]
        seen = (
            np.linspace(0, 1, h.shape[1], endpoint=False)
            * int(res["steps"])
            * (n if cond == "full batch" else int(cond.split()[1]))
            / n
        )
        lo, med, hi = np.quantile(h, [0.1, 0.5, 0.9], axis=0)
        d.plot(seen, med, color=colors[cond], label=cond)
        d.fill_between(seen, lo, hi, color=colors[cond], alpha=0.15)
    d.set_yscale("log")
    d.set_xlabel("epochs (examples seen / training set)")
    d.set_ylabel("held-out cross-entropy (median, 10-90%)")
    d.set_title("Held-out loss against examples seen")
    d.legend(fontsize=8)
    fig.suptitle("Digits, odd vs even, 64-32-1 tanh, SGD 0.05: full batch against minibatches")
    fig.tight_layout()
    (out / "figures").mkdir(exist_ok=True)
    path = out / "figures" / "digits.png"
    tmp = path.with_name(".digits.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def report(out: Path, results, task, shares, curves, sizes, epochs, rows, cols) -> str:
    lines = [
        "# Study: start against data order on the digits",
        "",
        f"{len(task.y):,} training images, {len(task.y_test)} held out (odd vs even digits). "
        f"64-32-1 tanh networks, Glorot-normal starts, SGD at {LR}, {epochs} epochs each "
        f"(the same number of examples seen in every condition). Each condition trains "
        f"{rows * cols:,} networks; the minibatch conditions as a {rows} x {cols} table "
        "(a row shares an initialization, a column a data order).",
        "",
        "## Findings",
        "",
        "| condition | steps | median test accuracy | 10-90% | std | init share | data-order share | interaction | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cond, res in results.items():
        acc = res["test_accuracy"]
        q = np.quantile(acc, [0.1, 0.5, 0.9])
        s = shares.get(cond)
        parts = (
            [f"{s['initialization']:.0%}", f"{s['data order']:.0%}", f"{s['interaction']:.0%}"]
            if s
            else ["all (one order)", "-", "-"]
        )
        lines.append(
            f"| {cond} | {int(res['steps']):,} | {q[1]:.1%} | {q[0]:.1%}-{q[2]:.1%} | "
            f"{acc.std():.2%} | " + " | ".join(parts) + f" | {float(res['seconds']):.0f} |"
        )
    best = max(results, key=lambda k: np.median(results[k]["test_accuracy"]))
    lines += ["", f"- At {epochs} epochs the best median test accuracy is with **{best}**."]
    for cond, s in shares.items():
        t = results[cond]["test_accuracy"].reshape(rows, cols)
        within_row = t.std(axis=1, ddof=1).mean()  # same start, other data orders
        within_col = t.std(axis=0, ddof=1).mean()  # same data order, other starts
        lines.append(
            f"- {cond}: of the variance of test accuracy ({np.sqrt(s['total variance']):.2%} std), "
            f"{s['initialization']:.0%} is the start alone, {s['data order']:.0%} the data order "
            f"alone and {s['interaction']:.0%} their interaction. Another data order for the same "
            f"start moves the accuracy by {within_row:.2%} (std); another start for the same "
            f"order by {within_col:.2%}."
            + (
                " No data order is better across starts: what the order does depends on the start."
                if s["data order"] < 0.05 < s["interaction"]
                else ""
            )
        )
    for cond, curve in curves.items():
        single = curve[0, 0]
        lines.append(
            f"- Ensembles ({cond}): one network {single:.1%} on average; {sizes[len(curve) - 1]} "
            f"averaged: {curve[-1, 0]:.1%} ({curve[-1, 0] - single:+.1%})."
        )
    lines += ["", "![digits](figures/digits.png)", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs") / "digits")
    ap.add_argument("--quick", action="store_true", help="a much smaller version, for a smoke test")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    jaxbp.use_cpu_cores()
    size = dict(epochs=EPOCHS, rows=ROWS, cols=COLS) | (QUICK if args.quick else {})
    task = jaxbp.load_task("digits")
    (args.out / "conditions").mkdir(parents=True, exist_ok=True)
    results = {}
    t0 = time.perf_counter()
    for batch in BATCHES:
        path = args.out / "conditions" / f"{name(batch).replace(' ', '_')}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                stored = dict(z)
            if stored["probabilities"].shape[0] == size["rows"] * size["cols"]:
                results[name(batch)] = stored
                continue
        res = run_condition(task, batch, progress=False if args.no_progress else None, **size)
        write_atomic(path, lambda f, r=res: np.savez(f, **r))
        results[name(batch)] = res
        print(f"{name(batch)}: {float(res['seconds']):.0f} s", file=sys.stderr)
    shares = {
        k: variance_shares(v["test_accuracy"], size["rows"], size["cols"])
        for k, v in results.items()
        if k != "full batch"
    }
    n = size["rows"] * size["cols"]
    sizes = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if k <= n]
    curves = {k: ensemble_curve(v["probabilities"], task.y_test, sizes) for k, v in results.items()}
    figures(args.out, results, task, shares, curves, sizes)
    text = report(args.out, results, task, shares, curves, sizes, **size)
    text += f"\n_This call took {time.perf_counter() - t0:.0f} s on {len(jax.devices())} {jax.default_backend()} device(s)._\n"
    write_atomic(args.out / "report.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
