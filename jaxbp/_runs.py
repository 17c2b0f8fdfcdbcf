"""Sweeps saved to run folders: a TOML config, chunks written atomically, resume after a stop.

A run folder holds ``config.toml`` (the config as run), ``meta.json`` (library and
JAX versions, devices), ``chunks/`` (one ``.npz`` per finished slice of members,
written to a temporary file and renamed, so a chunk is either whole or absent),
and, once every chunk is done, ``members.csv`` (one row per member),
``histories.npz`` and ``summary.json``. Running the same config on the folder
again skips the finished chunks; another config is refused. NumPy files are
read with ``allow_pickle=False``.

Edge of the library: it uses ``train_many`` and the built-in tasks; the core
knows nothing of it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from ._result import ManyResult

__all__ = ["SweepConfig", "run_sweep"]

OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")

# section -> key -> (type, default); None default = required
_SCHEMA: dict[str, dict[str, tuple[Any, Any]]] = {
    "task": {
        "name": (str, None),
        "bits": (int, 3),
        "n": (int, 200),
        "noise": (float, 0.1),
        "seed": (int, 0),
    },
    "network": {
        "sizes": (list, None),
        "activation": (str, "sigmoid"),
        "loss": (str, "bce"),
        "scheme": (str, "normal"),
    },
    "optimizer": {"name": (str, "sgd"), "learning_rates": (list, None)},
    "init": {"scales": (list, [1.0])},
    "run": {
        "n_inits": (int, None),
        "steps": (int, None),
        "record_every": (int, 0),
        "seed": (int, 0),
        "chunk_members": (int, 4096),
        "memory_budget": (int, 0),
        "converge_loss": (float, -1.0),
        "grad": (str, "autodiff"),
    },
}


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A sweep, as read from TOML (sections task, network, optimizer, init, run)."""

    task: str
    task_options: tuple[tuple[str, Any], ...]
    sizes: tuple[int, ...]
    activation: str
    loss: str
    scheme: str
    optimizer: str
    learning_rates: tuple[float, ...]
    init_scales: tuple[float, ...]
    n_inits: int
    steps: int
    record_every: int
    seed: int
    chunk_members: int
    memory_budget: int
    converge_loss: float
    grad: str

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> SweepConfig:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: no such config file")
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML: {e}") from None
        return cls.from_dict(doc, where=str(path))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, where: str = "config") -> SweepConfig:
        unknown = sorted(set(doc) - set(_SCHEMA))
        if unknown:
            raise ValueError(f"{where}: unknown section(s) {unknown}; expected {sorted(_SCHEMA)}")
        vals: dict[str, dict[str, Any]] = {}
        for section, keys in _SCHEMA.items():
            table = doc.get(section, {})
            if not isinstance(table, dict):
                raise ValueError(f"{where}: [{section}] must be a table")
            bad = sorted(set(table) - set(keys))
            if bad:
                raise ValueError(
                    f"{where}: unknown key(s) {bad} in [{section}]; expected some of {sorted(keys)}"
                )
            vals[section] = {}
            for key, (typ, default) in keys.items():
                if key not in table:
                    if default is None:
                        raise ValueError(f"{where}: [{section}] needs the key {key!r}")
                    vals[section][key] = default
                    continue
                v = table[key]
                ok = isinstance(v, typ) and not isinstance(v, bool)
                if typ is float and isinstance(v, int) and not isinstance(v, bool):
                    v, ok = float(v), True
                if not ok:
                    raise ValueError(
                        f"{where}: [{section}] {key} must be a {typ.__name__}; got {v!r}"
                    )
                vals[section][key] = v
        t, n, o, i, r = (vals[k] for k in ("task", "network", "optimizer", "init", "run"))

        def numbers(v, name, positive=True, integer=False):
            if not v or not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in v):
                raise ValueError(f"{where}: {name} must be a non-empty list of numbers; got {v!r}")
            if integer and not all(isinstance(e, int) for e in v):
                raise ValueError(f"{where}: {name} must hold integers; got {v!r}")
            if positive and not all(math.isfinite(e) and e > 0 for e in v):
                raise ValueError(f"{where}: {name} must hold positive finite numbers; got {v!r}")
            return tuple(v)

        sizes = numbers(n["sizes"], "[network] sizes", integer=True)
        if len(sizes) < 2:
            raise ValueError(
                f"{where}: [network] sizes needs at least an input and an output width; got {list(sizes)}"
            )
        if o["name"] not in OPTIMIZERS:
            raise ValueError(
                f"{where}: [optimizer] name must be one of {OPTIMIZERS}; got {o['name']!r}"
            )
        for key in ("n_inits", "steps", "chunk_members"):
            if r[key] < 1:
                raise ValueError(f"{where}: [run] {key} must be a positive integer; got {r[key]}")
        task_options = {
            "parity": ("bits",),
            "moons": ("n", "noise", "seed"),
            "spirals": ("n", "noise", "seed"),
            "breast_cancer": ("seed",),
        }.get(t["name"], ())
        return cls(
            task=t["name"],
            task_options=tuple((k, t[k]) for k in task_options),
            sizes=tuple(int(s) for s in sizes),
            activation=n["activation"],
            loss=n["loss"],
            scheme=n["scheme"],
            optimizer=o["name"],
            learning_rates=tuple(
                float(v) for v in numbers(o["learning_rates"], "[optimizer] learning_rates")
            ),
            init_scales=tuple(float(v) for v in numbers(i["scales"], "[init] scales")),
            n_inits=r["n_inits"],
            steps=r["steps"],
            record_every=r["record_every"],
            seed=r["seed"],
            chunk_members=r["chunk_members"],
            memory_budget=r["memory_budget"],
            converge_loss=r["converge_loss"],
            grad=r["grad"],
        )

    def to_toml(self) -> str:
        """The config as run: every value written out, so the folder says exactly what ran."""

        def lit(v):
            if isinstance(v, str):
                return json.dumps(v)
            if isinstance(v, (list, tuple)):
                return "[" + ", ".join(lit(e) for e in v) + "]"
            if isinstance(v, float):
                return repr(v)
            return str(v)

        sections = {
            "task": {"name": self.task, **dict(self.task_options)},
            "network": {
                "sizes": self.sizes,
                "activation": self.activation,
                "loss": self.loss,
                "scheme": self.scheme,
            },
            "optimizer": {"name": self.optimizer, "learning_rates": self.learning_rates},
            "init": {"scales": self.init_scales},
            "run": {
                k: getattr(self, k)
                for k in (
                    "n_inits",
                    "steps",
                    "record_every",
                    "seed",
                    "chunk_members",
                    "memory_budget",
                    "converge_loss",
                    "grad",
                )
            },
        }
        out = []
        for name, table in sections.items():
            out.append(f"[{name}]")
            out += [f"{k} = {lit(v)}" for k, v in table.items()]
            out.append("")
        return "\n".join(out)

    @property
    def n_members(self) -> int:
        return len(self.learning_rates) * len(self.init_scales) * self.n_inits


def _optimizer(name: str):
    import optax

    from ._train import sgd

    return {"sgd": sgd, "momentum": _Momentum(), "adam": optax.adam, "rmsprop": optax.rmsprop}[name]


@dataclasses.dataclass(frozen=True)
class _Momentum:
    """``optax.sgd(lr, momentum=0.9)`` as a hashable factory (a jit static)."""

    def __call__(self, lr):
        import optax

        return optax.sgd(lr, momentum=0.9)


def _write_atomic(path: Path, write) -> None:
    """Write through a temporary file beside ``path``, then rename: whole or absent."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _prepare_folder(out: Path, config: SweepConfig) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a run folder")
    # Missing parents are made (runs/NAME in a fresh clone); the nearest existing one
    # must be a writable folder.
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not out.exists() and not (parent.is_dir() and os.access(parent, os.W_OK)):
        raise ValueError(f"--out {out}: cannot create it ({parent} is not a writable folder)")
    if out.exists() and not os.access(out, os.W_OK):
        raise ValueError(f"--out {out} is not writable")
    text = config.to_toml()
    existing = out / "config.toml"
    if existing.exists():
        if existing.read_text() != text:
            raise ValueError(
                f"{out} holds a run of another config ({existing}); use a new --out folder, "
                "or rerun with the same config to resume"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise ValueError(
            f"--out {out} exists, is not empty and holds no config.toml: not a run folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "chunks").mkdir(exist_ok=True)
    _write_atomic(existing, lambda f: f.write(text.encode()))


def _meta() -> dict[str, Any]:
    import jax

    from . import __version__

    return {
        "jaxbp": __version__,
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "processes": jax.process_count(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


FIELDS = ("final_loss", "accuracy", "converged_at", "diverged", "history")
TEST_FIELDS = ("test_loss", "test_accuracy")


def _fields(task) -> tuple[str, ...]:
    return FIELDS + (TEST_FIELDS if task.x_test is not None else ())


def _train_kwargs(config: SweepConfig, task, progress) -> dict[str, Any]:
    """``train_many``'s keyword arguments for this sweep (all but key, sizes, x, y, members)."""
    kw = dict(
        n_inits=config.n_inits,
        steps=config.steps,
        learning_rate=np.asarray(config.learning_rates),
        optimizer=_optimizer(config.optimizer),
        init_scale=np.asarray(config.init_scales),
        scheme=config.scheme,
        activation=config.activation,
        loss=config.loss,
        grad=config.grad,
        converge_loss=None if config.converge_loss < 0 else config.converge_loss,
        record_every=config.record_every or None,
        memory_budget=config.memory_budget or None,
        progress=progress,
    )
    if task.x_test is not None:
        kw.update(eval_x=task.x_test, eval_y=task.y_test)
    return kw


def run_sweep(
    config: SweepConfig, out: str | os.PathLike, *, progress: bool | None = None
) -> dict[str, Any]:
    """Run (or resume) a sweep into the folder ``out``; returns the summary.

    Every input is checked before the folder is created or touched.
    """
    import jax

    from ._many import train_many
    from ._tasks import load_task

    out = Path(out)
    task = load_task(config.task, **dict(config.task_options))
    if task.n_features != config.sizes[0]:
        raise ValueError(
            f"[network] sizes starts with {config.sizes[0]} inputs but task {config.task!r} has "
            f"{task.n_features} features"
        )
    kw = _train_kwargs(config, task, progress)
    key = jax.random.key(config.seed)
    # A tiny run validates every argument before anything is written.
    train_many(
        key,
        config.sizes,
        task.x,
        task.y,
        **{**kw, "steps": 1, "record_every": 1, "progress": False},
        members=(0, 1),
    )
    _prepare_folder(out, config)
    if not (out / "meta.json").exists():
        _write_atomic(out / "meta.json", lambda f: f.write(json.dumps(_meta(), indent=2).encode()))
    n = config.n_members
    for start in range(0, n, config.chunk_members):
        stop = min(n, start + config.chunk_members)
        path = out / "chunks" / f"members-{start:09d}-{stop:09d}.npz"
        if path.exists():
            continue  # finished before: chunks are renamed into place only when whole
        r = train_many(key, config.sizes, task.x, task.y, members=(start, stop), **kw)
        arrays = {f: getattr(r, f) for f in _fields(task)}
        _write_atomic(path, lambda f, a=arrays: np.savez(f, **a))
    return _finish(out, config, task)


def _finish(out: Path, config: SweepConfig, task) -> dict[str, Any]:
    n = config.n_members
    parts = sorted((out / "chunks").glob("members-*.npz"))
    fields = _fields(task)
    data = {f: [] for f in fields}
    covered = 0
    for p in parts:
        start, stop = (int(v) for v in p.stem.split("-")[1:])
        if start != covered:
            raise ValueError(
                f"{out}: chunk files do not tile the members (expected one starting at {covered})"
            )
        with np.load(p, allow_pickle=False) as z:
            for f in fields:
                if f not in z:
                    raise ValueError(f"{p}: no {f!r} array (written by another version?)")
                data[f].append(z[f])
        covered = stop
    if covered != n:
        raise ValueError(f"{out}: chunks cover {covered} of {n} members")
    data = {f: np.concatenate(v) for f, v in data.items()}
    ids = np.arange(n)
    g = ids // config.n_inits
    ns = len(config.init_scales)
    lrs = np.asarray(config.learning_rates)[g // ns]
    scales = np.asarray(config.init_scales)[g % ns]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "member",
            "grid_index",
            "learning_rate",
            "init_scale",
            "seed_index",
            "final_loss",
            "accuracy",
            "converged",
            "converged_at",
            "diverged",
            *(TEST_FIELDS if task.x_test is not None else ()),
        ]
    )
    for i in range(n):
        w.writerow(
            [
                i,
                g[i],
                repr(float(lrs[i])),
                repr(float(scales[i])),
                i % config.n_inits,
                f"{float(data['final_loss'][i]):.9g}",
                f"{float(data['accuracy'][i]):.9g}",
                int(data["converged_at"][i] >= 0),
                int(data["converged_at"][i]),
                int(data["diverged"][i]),
                *(f"{float(data[f][i]):.9g}" for f in fields[len(FIELDS) :]),
            ]
        )
    _write_atomic(out / "members.csv", lambda f: f.write(buf.getvalue().encode()))
    _write_atomic(out / "histories.npz", lambda f: np.savez(f, loss=data["history"]))
    result = ManyResult(
        learning_rate=lrs,
        init_scale=scales,
        seed_index=ids % config.n_inits,
        grid_index=g,
        final_loss=data["final_loss"],
        accuracy=data["accuracy"],
        converged=data["converged_at"] >= 0,
        converged_at=data["converged_at"],
        diverged=data["diverged"],
        history=data["history"],
        params=None,
        learning_rates=np.asarray(config.learning_rates),
        init_scales=np.asarray(config.init_scales),
        n_inits=config.n_inits,
        steps=config.steps,
        record_every=config.record_every,
        seconds=0.0,
        test_loss=data.get("test_loss"),
        test_accuracy=data.get("test_accuracy"),
    )
    # JSON has no NaN: a grid point with no finite loss gets null.
    summary = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in result.summary()
    ]
    doc = {"task": config.task, "members": n, "grid": summary}
    _write_atomic(out / "summary.json", lambda f: f.write(json.dumps(doc, indent=2).encode()))
    _figures_and_report(out, config, task, data, g, doc)
    return doc


def pick_members(data, grid_index, n: int = 4) -> list[int]:
    """A few members worth a picture: up to n/2 that converged, from the grid point that
    converged most often, and as many that did not (diverged ones last), from the grid
    point that converged most often among those with failures."""
    conv = data["converged_at"] >= 0
    n_grid = int(grid_index.max()) + 1
    rate = np.array([conv[grid_index == k].mean() for k in range(n_grid)])
    picks: list[int] = []
    for k in np.argsort(-rate, kind="stable"):
        ids = np.flatnonzero((grid_index == k) & conv)[: n // 2]
        if len(ids):
            picks += ids.tolist()
            break
    failed = ~conv
    for k in np.argsort(-rate, kind="stable"):
        sel = (grid_index == k) & failed
        if sel.any():
            order = np.flatnonzero(sel & ~data["diverged"]).tolist()
            order += np.flatnonzero(sel & data["diverged"]).tolist()
            picks += order[: n - len(picks)]
            break
    return picks


def member_params(config: SweepConfig, task, members: list[int]) -> list[Any]:
    """The final parameters of these members, trained again alone: the same bits as in the
    sweep, because a member's result depends only on the key, its index and its grid point."""
    import jax

    from ._many import train_many

    kw = _train_kwargs(config, task, False)
    out = []
    for m in members:
        r = train_many(
            jax.random.key(config.seed),
            config.sizes,
            task.x,
            task.y,
            members=(m, m + 1),
            keep_params=True,
            **kw,
        )
        out.append(r.member(0)["params"])
    return out


def _decision_figure(path: Path, config: SweepConfig, task, data, grid_index, name) -> bool:
    """The decision surfaces of a few members, for tasks with 2 or 3 inputs."""
    if task.n_features not in (2, 3):
        return False
    import jax
    import jax.numpy as jnp

    from ._mlp import forward
    from ._plots import decision_surfaces

    picks = pick_members(data, grid_index)
    if not picks:
        return False
    ns = len(config.init_scales)
    panels = []
    for m, params in zip(picks, member_params(config, task, picks)):
        k = int(grid_index[m])
        at = int(data["converged_at"][m])
        story = (
            f"converged at step {at}"
            if at >= 0
            else "diverged"
            if data["diverged"][m]
            else "not converged"
        )
        right = round(float(data["accuracy"][m]) * len(task.y))
        panels.append(
            {
                "params": params,
                "label": f"member {m}: lr {config.learning_rates[k // ns]:g}, "
                f"scale {config.init_scales[k % ns]:g}\n{story}; at the end "
                f"{right}/{len(task.y)} right, loss {float(data['final_loss'][m]):.3g}",
            }
        )
    linear = config.loss == "mse_linear"

    def predict(params, points):
        o = forward(params, jnp.asarray(points, jnp.float32), activation=config.activation)
        return jnp.clip(o, 0, 1) if linear else jax.nn.sigmoid(o)

    decision_surfaces(
        panels,
        task.x,
        task.y,
        path,
        title=f"{name}: what {len(panels)} members learned",
        predict=predict,
    )
    return True


def add_report_section(out: str | os.PathLike, heading: str, markdown: str) -> None:
    """Put a ``## heading`` section into the run folder's report.md, before the figures,
    replacing one of the same heading (so rerunning a study rewrites, never repeats, it)."""
    path = Path(out) / "report.md"
    lines = path.read_text().splitlines()
    title = f"## {heading}"
    if title in lines:
        i = lines.index(title)
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
        del lines[i:j]
    at = lines.index("## Figures") if "## Figures" in lines else len(lines)
    lines[at:at] = [title, "", *markdown.strip("\n").splitlines(), ""]
    text = "\n".join(lines) + "\n"
    _write_atomic(path, lambda f: f.write(text.encode()))


LOSS_UNITS = {
    "bce": "final loss (cross-entropy, nats per example)",
    "mse": "final loss (squared error of sigma(o), per example)",
    "mse_linear": "final loss (squared error of o, per example)",
}


def _num(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _figures_and_report(out: Path, config: SweepConfig, task, data, grid_index, doc) -> None:
    """PNG figures (written atomically, as everything else) and a report.md that shows them."""
    from ._plots import convergence_heatmap, loss_curves, loss_histogram

    name = (
        f"{config.task} {'-'.join(map(str, config.sizes))} {config.activation}, {config.optimizer}"
    )
    ns = len(config.init_scales)
    rate = np.array([row["convergence_rate"] for row in doc["grid"]]).reshape(
        len(config.learning_rates), ns
    )
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    made = []
    for fname, draw in (
        (
            "convergence.png",
            lambda p: convergence_heatmap(
                rate,
                config.learning_rates,
                config.init_scales,
                p,
                title=f"{name}: convergence over {config.n_inits} starts per cell",
            ),
        ),
        (
            "final_loss.png",
            lambda p: loss_histogram(
                data["final_loss"],
                data["diverged"],
                p,
                title=f"{name}: final loss after {config.steps} steps",
                xlabel=LOSS_UNITS[config.loss],
            ),
        ),
        (
            "loss_curves.png",
            lambda p: loss_curves(
                data["history"],
                grid_index,
                config.learning_rates,
                config.init_scales,
                config.record_every or max(1, config.steps // data["history"].shape[1]),
                p,
                title=f"{name}: loss during training",
                ylabel={"bce": "cross-entropy (nats)"}.get(config.loss, "squared error"),
            ),
        ),
    ):
        tmp = figures / f".{fname}.tmp.png"
        draw(tmp)
        os.replace(tmp, figures / fname)
        made.append(fname)
    tmp = figures / ".decision_surfaces.tmp.png"
    if _decision_figure(tmp, config, task, data, grid_index, name):
        os.replace(tmp, figures / "decision_surfaces.png")
        made.append("decision_surfaces.png")
    test = "median_test_accuracy" in doc["grid"][0]
    best = max(doc["grid"], key=lambda r: r["convergence_rate"])
    worst = min(doc["grid"], key=lambda r: r["convergence_rate"])
    lines = [
        f"# Sweep: {name}",
        "",
        f"{doc['members']} networks: {len(config.learning_rates)} learning rates x {ns} init scales x "
        f"{config.n_inits} random starts, {config.steps} full-batch steps each. Config: `config.toml`; "
        "one row per network: `members.csv`.",
        "",
        "## Findings",
        "",
        f"- Highest convergence rate: {best['convergence_rate']:.1%} at learning rate {best['learning_rate']:g}, "
        f"init scale {best['init_scale']:g}.",
        f"- Lowest: {worst['convergence_rate']:.1%} at learning rate {worst['learning_rate']:g}, "
        f"init scale {worst['init_scale']:g}.",
        f"- Diverged: {sum(r['diverged'] for r in doc['grid'])} of {doc['members']} networks.",
        "",
        "## Figures",
        "",
        *(f"![{f}](figures/{f})\n" for f in made),
        "## Per grid point",
        "",
        "| learning rate | init scale | converged | rate (95% CI) | diverged | median final loss |"
        + (" median test accuracy |" if test else ""),
        "| ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if test else ""),
        *(
            f"| {r['learning_rate']:g} | {r['init_scale']:g} | {r['converged']} | "
            f"{r['convergence_rate']:.1%} ({r['ci_low']:.1%}-{r['ci_high']:.1%}) | "
            f"{r['diverged']} | {_num(r['loss_median'], '.4g')} |"
            + (f" {_num(r['median_test_accuracy'], '.1%')} |" if test else "")
            for r in doc["grid"]
        ),
        "",
    ]
    _write_atomic(out / "report.md", lambda f: f.write("\n".join(lines).encode()))
