"""The configuration of a sweep: one list of fields, read from TOML into a frozen dataclass.

A sweep config has five tables, ``[task]``, ``[network]``, ``[optimizer]``,
``[init]`` and ``[run]``; ``FIELDS`` lists every key with its type, default and
meaning (docs/sweeps.md shows the same table). A key left out takes its default;
an optional key with no default (``record_every``, ``memory_budget``,
``converge_loss``) means "let ``train_many`` choose". Unknown tables or keys, and
values of the wrong type, are refused with the file, table and key named.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import math
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optax

from ..many._config import SETTINGS, check_setting
from ..many._grid import Grid
from ..many._many import train_many
from ..nn._model import Model
from ..training._freeze import Frozen
from ..training._train import sgd

__all__ = ["FIELDS", "OPTIMIZERS", "SweepConfig"]

OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")
_REQUIRED = object()
TRAIN_MANY = object()
"""A field's default: the default of the ``train_many`` keyword it sets."""
# train_many's positional arguments: a sweep passes them apart from the keywords.
_POSITIONAL = ("sizes",)


@dataclasses.dataclass(frozen=True)
class Field:
    """One key of a sweep config: ``[section] key``, held as ``SweepConfig.attr``.

    ``arg`` names the [`train_many`][jaxbp.many.train_many] keyword the key sets (its
    value checked by ``train_many``'s own rule before any data is loaded, and with a
    ``default`` of ``TRAIN_MANY``, ``train_many``'s own default); ``convert`` turns the
    value held into the argument passed.
    """

    section: str
    key: str
    type: type
    default: Any
    doc: str
    attr: str = ""
    arg: str | None = None
    convert: Callable[[Any], Any] | None = None

    def __post_init__(self):
        if self.default is TRAIN_MANY:
            default = inspect.signature(train_many).parameters[self.arg].default
            object.__setattr__(self, "default", default)

    @property
    def name(self) -> str:
        return self.attr or self.key

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def argument(self, value):
        """The value held as the ``train_many`` argument it sets."""
        return value if self.convert is None else self.convert(value)


# The task's own options: which keys each built-in task takes.
TASK_OPTIONS = {
    "parity": ("bits",),
    "moons": ("n", "noise", "seed"),
    "spirals": ("n", "noise", "seed"),
    "breast_cancer": ("seed",),
    "digits": ("positive", "seed", "classes"),
    "iris": ("seed",),
    "wine": ("seed",),
}

FIELDS: tuple[Field, ...] = (
    Field("task", "name", str, _REQUIRED, "a built-in task (see `jaxbp.TASKS`)", "task"),
    Field("task", "bits", int, 3, "parity: the number of input bits"),
    Field("task", "n", int, 200, "moons, spirals: the number of examples"),
    Field("task", "noise", float, 0.1, "moons, spirals: the noise level"),
    Field(
        "task",
        "seed",
        int,
        0,
        "moons, spirals, breast_cancer, digits, iris, wine: the data's seed",
        "task_seed",
    ),
    Field("task", "positive", list, [1, 3, 5, 7, 9], "digits: the classes labelled 1"),
    Field("task", "classes", int, 2, "digits: 2 (the binary task) or 10 (every digit a class)"),
    Field(
        "network",
        "sizes",
        list,
        None,
        "the built-in MLP's layer widths, e.g. `[3, 2, 1]` (or give `model`)",
        arg="sizes",
    ),
    Field(
        "network",
        "widths",
        list,
        None,
        "hidden widths, a grid axis outside the learning rates: every hidden layer of a "
        "member takes its width (with `sizes`; one compiled program for all)",
        arg="widths",
        convert=lambda v: None if v is None else tuple(v),
    ),
    Field(
        "network",
        "model",
        str,
        None,
        "a network of your own: `package.module:factory`, a function returning a `jaxbp.Model` (instead of `sizes`)",
    ),
    Field("network", "model_args", dict, {}, "keyword arguments for the model's factory"),
    Field("network", "activation", str, TRAIN_MANY, "hidden activation", arg="activation"),
    Field(
        "network",
        "loss",
        str,
        TRAIN_MANY,
        "`bce`, `mse`, `mse_linear`, `half_mse` or `half_mse_linear`",
        arg="loss",
    ),
    Field(
        "network",
        "scheme",
        str,
        TRAIN_MANY,
        "initialization scheme (see `jaxbp.SCHEMES`)",
        arg="scheme",
    ),
    Field("optimizer", "name", str, "sgd", f"one of {', '.join(OPTIMIZERS)}", "optimizer"),
    Field(
        "optimizer",
        "learning_rates",
        list,
        _REQUIRED,
        "the grid's first axis",
        arg="learning_rate",
        convert=np.asarray,
    ),
    Field("optimizer", "freeze_biases", bool, False, "keep every bias at its initial value"),
    Field(
        "optimizer", "freeze_layers", list, [], "layers (0 first, -1 output) kept as initialized"
    ),
    Field(
        "init",
        "scales",
        list,
        [1.0],
        "the grid's second axis (init scales)",
        "init_scales",
        arg="init_scale",
        convert=np.asarray,
    ),
    Field("run", "n_inits", int, _REQUIRED, "random starts per grid point", arg="n_inits"),
    Field("run", "steps", int, _REQUIRED, "updates per network", arg="steps"),
    Field(
        "run",
        "record_every",
        int,
        TRAIN_MANY,
        "history resolution (divides steps); default ~100 points",
        arg="record_every",
    ),
    Field("run", "seed", int, 0, "the key of member m is `fold_in(key(seed), m)`"),
    Field(
        "run",
        "members_per_file",
        int,
        4096,
        "members per chunk file in `chunks/` (the unit of resuming; train_many's own `chunk_size`, members per compiled call, is chosen from memory)",
    ),
    Field(
        "run",
        "memory_budget",
        int,
        TRAIN_MANY,
        "bytes a chunk may use; default a quarter of free memory",
        arg="memory_budget",
    ),
    Field(
        "run",
        "converge_loss",
        float,
        TRAIN_MANY,
        "converged once the loss is below this; default: all examples right",
        arg="converge_loss",
    ),
    Field(
        "run",
        "batch_size",
        int,
        TRAIN_MANY,
        "examples per step (minibatch SGD, the last partial batch of an epoch dropped); default the whole training set",
        arg="batch_size",
    ),
    Field("run", "grad", str, TRAIN_MANY, "`autodiff` or `manual`", arg="grad"),
    Field(
        "run",
        "dtype",
        str,
        "float32",
        "the networks' dtype: `float32` or `float64`",
        arg="dtype",
    ),
)
_SECTIONS = tuple(dict.fromkeys(f.section for f in FIELDS))


def _read_value(f: Field, table: dict, where: str):
    if f.key not in table:
        if f.required:
            raise ValueError(f"{where}: [{f.section}] needs the key {f.key!r}")
        return f.default
    v = table[f.key]
    if f.type is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, f.type) or (isinstance(v, bool) and f.type is not bool):
        raise ValueError(f"{where}: [{f.section}] {f.key} must be a {f.type.__name__}; got {v!r}")
    return v


def _numbers(v, name: str, where: str, *, integer=False) -> tuple:
    """A non-empty list of positive finite numbers (integers with ``integer``)."""
    if not v or not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in v):
        raise ValueError(f"{where}: {name} must be a non-empty list of numbers; got {v!r}")
    if integer and not all(isinstance(e, int) for e in v):
        raise ValueError(f"{where}: {name} must hold integers; got {v!r}")
    if not all(math.isfinite(e) and e > 0 for e in v):
        raise ValueError(f"{where}: {name} must hold positive finite numbers; got {v!r}")
    return tuple(v)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A sweep, as read from TOML (tables task, network, optimizer, init, run; see ``FIELDS``).

    ``task_options`` holds the ``[task]`` keys the chosen task takes, as pairs.
    """

    task: str
    task_options: tuple[tuple[str, Any], ...]
    sizes: tuple[int, ...] | None
    widths: tuple[int, ...] | None
    model: str | None
    model_args: tuple[tuple[str, Any], ...]
    activation: str
    loss: str
    scheme: str
    optimizer: str
    learning_rates: tuple[float, ...]
    freeze_biases: bool
    freeze_layers: tuple[int, ...]
    init_scales: tuple[float, ...]
    n_inits: int
    steps: int
    record_every: int | None
    seed: int
    members_per_file: int
    memory_budget: int | None
    converge_loss: float | None
    batch_size: int | None
    grad: str
    dtype: str

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
        unknown = sorted(set(doc) - set(_SECTIONS))
        if unknown:
            raise ValueError(f"{where}: unknown section(s) {unknown}; expected {sorted(_SECTIONS)}")
        vals: dict[str, Any] = {}
        for section in _SECTIONS:
            table = doc.get(section, {})
            if not isinstance(table, dict):
                raise ValueError(f"{where}: [{section}] must be a table")
            keys = [f.key for f in FIELDS if f.section == section]
            bad = sorted(set(table) - set(keys))
            if bad:
                raise ValueError(
                    f"{where}: unknown key(s) {bad} in [{section}]; expected some of {sorted(keys)}"
                )
            for f in FIELDS:
                if f.section == section:
                    vals[(section, f.key)] = _read_value(f, table, where)
        model, sizes = vals["network", "model"], vals["network", "sizes"]
        if (model is None) == (sizes is None):
            raise ValueError(
                f"{where}: [network] needs the key 'sizes' (the built-in MLP's layer widths) "
                "or 'model' (a network of your own), not both"
            )
        args = vals["network", "model_args"]
        if args and model is None:
            raise ValueError(f"{where}: [network] model_args needs model")
        if model is not None:
            build_model(model, args, where)  # importable and built, before anything runs
        checked: dict[str, Any] = {}
        for f in sorted(
            (f for f in FIELDS if f.arg in SETTINGS and vals[f.section, f.key] is not None),
            key=lambda f: SETTINGS.index(f.arg),
        ):
            try:
                checked[f.arg] = check_setting(f.arg, vals[f.section, f.key], checked)
            except (ValueError, TypeError) as e:
                raise ValueError(f"{where}: [{f.section}] {e}") from None
        if vals["optimizer", "name"] not in OPTIMIZERS:
            raise ValueError(
                f"{where}: [optimizer] name must be one of {OPTIMIZERS}; got {vals['optimizer', 'name']!r}"
            )
        if vals["run", "members_per_file"] < 1:
            raise ValueError(
                f"{where}: [run] members_per_file must be a positive integer; "
                f"got {vals['run', 'members_per_file']}"
            )
        if vals["run", "dtype"] not in ("float32", "float64"):
            raise ValueError(
                f"{where}: [run] dtype must be 'float32' or 'float64'; got {vals['run', 'dtype']!r}"
            )
        task = vals["task", "name"]
        kw = {f.name: vals[f.section, f.key] for f in FIELDS if f.section != "task"}
        frozen = vals["optimizer", "freeze_layers"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in frozen):
            raise ValueError(
                f"{where}: [optimizer] freeze_layers must be a list of layer indices; got {frozen!r}"
            )
        kw.update(
            freeze_layers=tuple(frozen),
            sizes=checked.get("sizes"),
            widths=checked.get("widths"),
            model_args=_frozen(args),
            learning_rates=tuple(
                float(v)
                for v in _numbers(kw["learning_rates"], "[optimizer] learning_rates", where)
            ),
            init_scales=tuple(
                float(v) for v in _numbers(kw["init_scales"], "[init] scales", where)
            ),
        )
        options = tuple(
            (k, tuple(v) if isinstance(v, list) else v)
            for k, v in ((k, vals["task", k]) for k in TASK_OPTIONS.get(task, ()))
        )
        return cls(task=task, task_options=options, **kw)

    def to_toml(self) -> str:
        """The config as run: every value written out, so the folder says exactly what ran.

        Optional keys that are not set are left out (TOML has no null).
        """

        def lit(v):
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, str):
                return json.dumps(v)
            if isinstance(v, (list, tuple)):
                return "[" + ", ".join(lit(e) for e in v) + "]"
            if isinstance(v, float):
                return repr(v)
            return str(v)

        options = dict(self.task_options)
        out = []
        for section in _SECTIONS:
            out.append(f"[{section}]")
            for f in FIELDS:
                if f.section != section:
                    continue
                if section == "task" and f.key != "name":
                    v = options.get(f.key)
                else:
                    v = getattr(self, f.name)
                if f.key == "model_args":
                    if v:  # an inline table
                        out.append(
                            f"{f.key} = {{ " + ", ".join(f"{k} = {lit(e)}" for k, e in v) + " }"
                        )
                elif v is not None:
                    out.append(f"{f.key} = {lit(v)}")
            out.append("")
        return "\n".join(out)

    def network(self):
        """What ``train_many`` trains: the MLP's sizes, or the model the factory builds
        (built once per config and arguments, so its compiled programs are reused)."""
        if self.model is None:
            return self.sizes
        return build_model(self.model, dict(_thawed(self.model_args)))

    @property
    def network_name(self) -> str:
        """The network in a few words: the MLP's widths, or the model's name."""
        if self.model is None:
            if self.widths is not None:
                hidden = "-".join(["w"] * (len(self.sizes) - 2))
                w = self.widths
                return f"{self.sizes[0]}-{hidden}-{self.sizes[-1]} (w {min(w)}-{max(w)}, {len(w)} widths)"
            return "-".join(map(str, self.sizes))
        return self.network().name

    def grid(self) -> Grid:
        """The sweep's grid: [widths x] learning rates x init scales x ``n_inits``."""
        return Grid(
            np.asarray(self.learning_rates), np.asarray(self.init_scales), self.n_inits,
            self.widths,
        )  # fmt: skip

    @property
    def n_members(self) -> int:
        return self.grid().n_members

    def optimizer_factory(self):
        """``lr -> optax.GradientTransformation`` for this config (frozen leaves included)."""
        factory = optimizer_factory(self.optimizer)
        if self.freeze_biases or self.freeze_layers:
            return Frozen(factory, biases=self.freeze_biases, layers=self.freeze_layers)
        return factory

    def train_kwargs(self, task, *, progress: bool | None = False) -> dict[str, Any]:
        """[`jaxbp.train_many`][jaxbp.many.train_many]'s keyword arguments for this sweep on ``task`` (all
        but the key, sizes, data and ``members``); the task's test split, if any, is the
        held-out set."""
        kw = {
            f.arg: f.argument(getattr(self, f.name))
            for f in FIELDS
            if f.arg is not None and f.arg not in _POSITIONAL
        }
        kw.update(optimizer=self.optimizer_factory(), progress=progress)
        if task.x_test is not None:
            kw.update(x_test=task.x_test, y_test=task.y_test)
        return kw


def _frozen(v):
    """A TOML value as a hashable one: tables as sorted pairs, lists as tuples."""
    if isinstance(v, dict):
        return tuple(sorted((k, _frozen(e)) for k, e in v.items()))
    if isinstance(v, list):
        return tuple(_frozen(e) for e in v)
    return v


def _thawed(pairs):
    return [(k, list(v) if isinstance(v, tuple) else v) for k, v in pairs]


def build_model(spec: str, args: dict[str, Any], where: str = "config") -> Model:
    """The model ``package.module:factory`` names, built with ``args``; a one-line
    ``ValueError`` when it cannot be imported or built or is not a ``jaxbp.Model``."""
    return _build(spec, _frozen(dict(args)), where)


@functools.cache
def _build(spec: str, args: tuple, where: str) -> Model:
    said = f"{where}: [network] model {spec!r}"
    module_name, _, attr = spec.partition(":")
    if (
        not module_name
        or not attr
        or not all(p.isidentifier() for p in (*module_name.split("."), *attr.split(".")))
    ):
        raise ValueError(f"{said}: expected 'package.module:factory'")
    try:
        factory = importlib.import_module(module_name)
    except Exception as e:  # ModuleNotFoundError, or whatever the module raised
        raise ValueError(f"{said}: cannot import {module_name} ({type(e).__name__}: {e})") from None
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ValueError(f"{said}: {module_name} has no {attr}")
    if not callable(factory):
        raise ValueError(f"{said}: {attr} is not a function")
    try:
        model = factory(**dict(_thawed(args)))
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise ValueError(f"{said}: building it raised {type(e).__name__}: {first}") from None
    if not isinstance(model, Model):
        raise ValueError(f"{said}: the factory returned {type(model).__name__}, not a jaxbp.Model")
    return model


def optimizer_factory(name: str):
    """The ``lr -> optax.GradientTransformation`` factory for a config's optimizer name."""
    return {"sgd": sgd, "momentum": _Momentum(), "adam": optax.adam, "rmsprop": optax.rmsprop}[name]


@dataclasses.dataclass(frozen=True)
class _Momentum:
    """``optax.sgd(lr, momentum=0.9)`` as a hashable factory (a jit static)."""

    def __call__(self, lr):
        return optax.sgd(lr, momentum=0.9)
