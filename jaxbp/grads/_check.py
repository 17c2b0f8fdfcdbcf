"""Finite differences, and the comparison of gradient sources with an explanation.

``numerical_grad`` differentiates by central differences in float64, every
direction at once under ``vmap``. ``compare_grads`` measures how far one
gradient tree is from another, leaf by leaf, and says in words what kind of
difference it sees (rounding, a sign flip, a scale factor, a transpose, a few
bad entries). ``check_grads`` runs all three sources on one network and adds
what it knows of the network (ReLU kinks near zero, saturated units).

Both also take any scalar function of a parameter pytree, ``f(params, *args)``, in
place of the MLP (``_functions``): autodiff, the user's own gradient and finite
differences, compared with the same explanations.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..nn._activations import resolve_activations
from ..nn._losses import resolve_loss
from ..nn._mlp import check_batch, forward_trace_unchecked, mean_loss
from ..nn._tree import Grads, Params, check_params
from ..util._dtypes import Tolerance, float64_mode, tolerance
from ..util._text import table
from ._autodiff import autodiff_grad
from ._functions import check_function, numerical_grad_of
from ._manual import manual_grad

__all__ = [
    "GradCheck",
    "GradComparison",
    "LeafComparison",
    "check_grads",
    "compare_grads",
    "numerical_grad",
]


def numerical_grad(
    params: Params, *args, activation="sigmoid", loss: str = "bce", eps: float = 1e-6
) -> Grads:
    """The gradient by central differences ``(L(w + eps e_i) - L(w - eps e_i)) / (2 eps)``, in float64.

    The parameters, ``x`` and ``y`` are cast to float64 (64-bit mode is switched on for
    this call only); all directions ``e_i`` are evaluated at once with ``vmap``, in
    batches that bound memory. The error is about ``eps^2 |L'''| / 6`` (truncation)
    plus ``1e-16 |L| / eps`` (rounding): near 1e-10 for ``eps = 1e-6``. A ReLU
    pre-activation within ``eps`` of 0 breaks the first term (see [`check_grads`][jaxbp.grads.check_grads]).

    Any function: ``numerical_grad(f, params, *args, eps=...)`` differentiates
    ``f(params, *args) -> scalar`` with respect to ``params``, any pytree of floating
    arrays (every floating leaf of ``params`` and ``args`` is cast to float64).

    Args:
      params: the network (or ``f``, then its ``params`` and ``args``).
      *args: the batch ``x``, ``y`` (or ``f``'s ``params`` and further arguments).
      activation: hidden activation name(s) (the MLP only).
      loss: the loss name (the MLP only).
      eps: the step, a positive number.

    Returns:
      ``Grads`` in float64, the same tree as ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> f = lambda p, x: jnp.sum(p["w"] * x) ** 2
      >>> g = numerical_grad(f, {"w": jnp.array([1.0, 2.0])}, jnp.array([3.0, 1.0]))
      >>> [round(float(v), 5) for v in g["w"]]  # 2 (w . x) x
      [30.0, 10.0]
    """
    _check_eps(eps)
    if callable(params):
        if not args:
            raise TypeError("numerical_grad(f, params, *args) needs the params to differentiate")
        return numerical_grad_of(params, *args, eps=eps)
    x, y = _mlp_batch("numerical_grad", args)
    params = check_params(params)
    spec = resolve_loss(loss)
    x, y = check_batch(params, x, y, spec)
    resolve_activations(activation, len(params) - 1)
    activation = activation if isinstance(activation, str) else tuple(activation)
    with float64_mode():
        p64, x64, y64 = jax.tree_util.tree_map(
            lambda a: jnp.asarray(np.asarray(a), jnp.float64), (params, x, y)
        )
        return _numerical_grad(p64, x64, y64, jnp.float64(eps), activation=activation, loss=loss)


def _check_eps(eps) -> None:
    if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a positive finite number; got {eps!r}")


def _mlp_batch(name: str, args: tuple) -> tuple:
    """The MLP form's ``(x, y)``, or one error saying how each form is called."""
    if len(args) != 2:
        raise TypeError(
            f"{name}(params, x, y) takes the MLP's batch x, y (got {len(args)} positional "
            f"arguments after params); for a function of your own: {name}(f, params, *args)"
        )
    return args


@partial(jax.jit, static_argnames=("activation", "loss"))
def _numerical_grad(params, x, y, eps, *, activation, loss):
    spec = resolve_loss(loss)
    flat, unravel = ravel_pytree(params)

    def f(v):
        return mean_loss(forward_trace_unchecked(unravel(v), x, activation).logits, y, spec)

    def central(i):
        e = jnp.zeros_like(flat).at[i].set(eps)
        return (f(flat + e) - f(flat - e)) / (2 * eps)

    # lax.map in batches: all directions under vmap, without an n x n matrix in memory.
    return unravel(jax.lax.map(central, jnp.arange(flat.size), batch_size=256))


@dataclasses.dataclass(frozen=True)
class LeafComparison:
    """How one leaf (e.g. layer 1's ``W``) of a candidate gradient differs from the reference."""

    name: str
    shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float  # |c - r| / max(|r|, atol)
    cosine: float
    norm_ratio: float  # ||candidate|| / ||reference||
    worst_index: tuple[int, ...]
    worst_reference: float
    worst_candidate: float
    n_bad: int  # entries outside atol + rtol |r|
    ok: bool


def _leaf_name(path) -> str:
    layer, key = path[0].idx, path[1].key
    return f"layer {layer + 1} {key}"


def _compare_leaf(name, r, c, tol: Tolerance) -> LeafComparison:
    diff = np.abs(c - r)
    both_finite = np.isfinite(r) & np.isfinite(c)
    same_inf = (r == c) & ~np.isfinite(r)
    diff = np.where(same_inf, 0.0, np.where(both_finite, diff, np.inf))
    allowed = tol.atol + tol.rtol * np.abs(np.where(np.isfinite(r), r, 0.0))
    excess = diff / allowed
    worst = np.unravel_index(np.argmax(excess), r.shape) if r.size else ()
    rn, cn = np.linalg.norm(r), np.linalg.norm(c)
    if rn == 0 and cn == 0:
        cosine, ratio = 1.0, 1.0
    elif rn == 0 or cn == 0 or not (np.isfinite(rn) and np.isfinite(cn)):
        cosine, ratio = 0.0, (math.inf if rn == 0 else float(cn / rn))
    else:
        cosine, ratio = float(np.vdot(r, c) / (rn * cn)), float(cn / rn)
    n_bad = int(np.sum(diff > allowed))
    return LeafComparison(
        name=name,
        shape=tuple(r.shape),
        max_abs_error=float(diff.max(initial=0.0)),
        max_rel_error=float((diff / np.maximum(np.abs(r), tol.atol)).max(initial=0.0)),
        cosine=cosine,
        norm_ratio=ratio,
        worst_index=tuple(int(i) for i in worst),
        worst_reference=float(r[worst]) if r.size else 0.0,
        worst_candidate=float(c[worst]) if r.size else 0.0,
        n_bad=n_bad,
        ok=n_bad == 0,
    )


def _explain_leaf(leaf: LeafComparison, r, c, tol: Tolerance) -> str:
    """One sentence on the kind of difference in a leaf that is not ok."""
    where = f"worst at {list(leaf.worst_index)}: {leaf.worst_candidate:.6g} vs {leaf.worst_reference:.6g}"
    if not np.all(np.isfinite(c)) and np.all(np.isfinite(r)):
        return f"{leaf.name}: the candidate has non-finite entries ({where})"
    if np.allclose(c, -r, rtol=tol.rtol * 10, atol=tol.atol * 10):
        return f"{leaf.name}: the sign is flipped (candidate = -reference), e.g. (y - z) where (z - y) belongs"
    if (
        c.ndim == 2
        and c.shape[0] == c.shape[1]
        and np.allclose(c, r.T, rtol=tol.rtol * 10, atol=tol.atol * 10)
    ):
        return f"{leaf.name}: the candidate is the transpose of the reference (row and column indices swapped)"
    if leaf.cosine > 1 - 1e-6 and math.isfinite(leaf.norm_ratio):
        k = leaf.norm_ratio
        hint = ""
        if abs(k - round(k)) < 1e-6 * k and round(k) > 1:
            hint = f"; a factor {round(k)} suggests a sum over {round(k)} examples where the mean belongs"
        elif k < 1 and abs(1 / k - round(1 / k)) < 1e-6 / k and round(1 / k) > 1:
            hint = f"; a factor 1/{round(1 / k)} suggests a mean where a sum belongs"
        return f"{leaf.name}: same direction but scaled: candidate = {k:.6g} x reference{hint}"
    if leaf.n_bad <= max(1, r.size // 10):
        return f"{leaf.name}: {leaf.n_bad} of {r.size} entries differ, the rest agree ({where})"
    return f"{leaf.name}: {leaf.n_bad} of {r.size} entries differ with no simple pattern (cosine {leaf.cosine:.4f}; {where})"


@dataclasses.dataclass(frozen=True)
class GradComparison:
    """The result of [`compare_grads`][jaxbp.grads.compare_grads]; ``str()`` gives a table and an explanation."""

    leaves: tuple[LeafComparison, ...]
    tolerance: Tolerance
    explanation: tuple[str, ...]
    reference_name: str = "reference"
    candidate_name: str = "candidate"

    @property
    def ok(self) -> bool:
        return all(leaf.ok for leaf in self.leaves)

    @property
    def max_abs_error(self) -> float:
        return max(leaf.max_abs_error for leaf in self.leaves)

    @property
    def max_rel_error(self) -> float:
        return max(leaf.max_rel_error for leaf in self.leaves)

    @property
    def worst(self) -> LeafComparison:
        """The leaf whose worst entry is furthest outside the tolerance."""

        def excess(leaf):
            return (
                abs(leaf.worst_candidate - leaf.worst_reference)
                / (self.tolerance.atol + self.tolerance.rtol * abs(leaf.worst_reference))
                if math.isfinite(leaf.max_abs_error)
                else math.inf
            )

        return max(self.leaves, key=excess)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        header = (
            "leaf",
            "shape",
            "max abs err",
            "max rel err",
            "cosine",
            "worst entry",
            self.reference_name,
            self.candidate_name,
            "ok",
        )
        rows = [
            (
                leaf.name,
                "x".join(map(str, leaf.shape)) or "()",
                f"{leaf.max_abs_error:.2e}",
                f"{leaf.max_rel_error:.2e}",
                f"{leaf.cosine:.6f}",
                str(list(leaf.worst_index)),
                f"{leaf.worst_reference:.10g}",
                f"{leaf.worst_candidate:.10g}",
                "yes" if leaf.ok else "NO",
            )
            for leaf in self.leaves
        ]
        lines = [
            f"{self.candidate_name} vs {self.reference_name} "
            f"(rtol {self.tolerance.rtol:g}, atol {self.tolerance.atol:g}): {'OK' if self.ok else 'MISMATCH'}",
            *table(header, rows),
            *(f"  {e}" for e in self.explanation),
        ]
        return "\n".join(lines)


def compare_grads(
    reference: Grads,
    candidate: Grads,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    reference_name: str = "reference",
    candidate_name: str = "candidate",
) -> GradComparison:
    """Compare two gradient trees leaf by leaf, and explain the difference.

    An entry agrees when ``|candidate - reference| <= atol + rtol * |reference|``.
    By default the tolerance is the library's one for the coarser of the two
    dtypes (see [`tolerance`][jaxbp.util.tolerance]).

    Returns:
      [`GradComparison`][jaxbp.grads.GradComparison] with per-leaf max absolute and relative error, cosine
      similarity, the worst entry (index and both values), ``.ok`` and an
      ``.explanation``; ``print()`` it for a table.

    Examples:
      >>> from jaxbp import seed_exercise, autodiff_grad, manual_grad
      >>> ex = seed_exercise()
      >>> cmp = compare_grads(autodiff_grad(ex.params, ex.x, ex.y), manual_grad(ex.params, ex.x, ex.y))
      >>> cmp.ok
      True
    """
    ref_leaves, ref_def = jax.tree_util.tree_flatten_with_path(reference)
    cand_leaves, cand_def = jax.tree_util.tree_flatten_with_path(candidate)
    if ref_def != cand_def:
        raise ValueError(
            f"candidate must have the same tree structure as reference; got {cand_def} vs {ref_def}"
        )
    dtypes = [np.dtype(leaf.dtype) for _, leaf in ref_leaves + cand_leaves]
    tol = tolerance(*dtypes) if dtypes else Tolerance(0.0, 0.0)
    tol = Tolerance(
        rtol=tol.rtol if rtol is None else rtol, atol=tol.atol if atol is None else atol
    )
    if tol.rtol < 0 or tol.atol < 0 or (tol.rtol == 0 and tol.atol == 0):
        raise ValueError(
            f"rtol and atol must be >= 0 and not both 0; got rtol={tol.rtol}, atol={tol.atol}"
        )
    leaves, explanation = [], []
    biggest = 0.0
    for (path, r), (_, c) in zip(ref_leaves, cand_leaves):
        name = (
            _leaf_name(path)
            if len(path) == 2 and hasattr(path[0], "idx")
            else jax.tree_util.keystr(path)
        )
        if r.shape != c.shape:
            raise ValueError(
                f"candidate {name} must have shape {tuple(r.shape)} like reference; got {tuple(c.shape)}"
            )
        r = np.asarray(r, np.float64)
        c = np.asarray(c, np.float64)
        leaf = _compare_leaf(name, r, c, tol)
        leaves.append(leaf)
        if not leaf.ok:
            explanation.append(_explain_leaf(leaf, r, c, tol))
        if r.size:
            biggest = max(biggest, float(np.abs(r).max()))
    if not explanation and leaves:
        coarsest = min(dtypes, key=lambda d: np.finfo(d).bits)
        unit = np.finfo(coarsest).eps * max(biggest, np.finfo(coarsest).tiny)
        worst = max(leaf.max_abs_error for leaf in leaves)
        explanation.append(
            f"all entries agree; the largest difference, {worst:.2e}, is {worst / unit:.3g} "
            f"{coarsest} rounding unit(s) of the largest entry ({biggest:.3g})"
            + (
                ": the two differ only in the order of floating-point operations"
                if worst / unit < 1e3
                else ""
            )
        )
    return GradComparison(
        leaves=tuple(leaves),
        tolerance=tol,
        explanation=tuple(explanation),
        reference_name=reference_name,
        candidate_name=candidate_name,
    )


@dataclasses.dataclass(frozen=True)
class GradCheck:
    """The three gradient sources on one network and their comparisons (see [`check_grads`][jaxbp.grads.check_grads])."""

    autodiff: Grads
    manual: Grads | None
    numerical: Grads
    manual_vs_autodiff: GradComparison | None
    numerical_vs_autodiff: GradComparison
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        manual_ok = self.manual_vs_autodiff is None or self.manual_vs_autodiff.ok
        return manual_ok and self.numerical_vs_autodiff.ok

    def __str__(self) -> str:
        parts = [str(self.numerical_vs_autodiff)]
        if self.manual_vs_autodiff is not None:
            parts = [str(self.manual_vs_autodiff), "", *parts]
        if self.notes:
            parts += ["", "notes:", *(f"  {n}" for n in self.notes)]
        return "\n".join(parts)


def check_grads(
    params: Params,
    *args,
    activation="sigmoid",
    loss: str = "bce",
    eps: float = 1e-6,
    grad: Callable | None = None,
) -> GradCheck:
    """Gradients by autodiff, by hand and by finite differences, compared and explained.

    Manual is held to the dtype's tolerance against autodiff. Finite differences
    (float64) are held to ``rtol = 1e-6`` (or the dtype's, if coarser) with ``atol``
    set by their own noise floor. Notes point out what in this network makes the
    sources differ: ReLU pre-activations within ``eps`` of the kink, saturated
    sigmoid/tanh units whose derivative rounds to 0 in the parameters' dtype.

    Any function: ``check_grads(f, params, *args, grad=my_grad)`` checks
    ``f(params, *args) -> scalar`` for any pytree ``params``: ``jax.grad(f)`` (which
    follows a ``custom_vjp`` inside ``f``) against finite differences, and against
    ``my_grad(params, *args)``, a gradient derived by hand (reported as ``manual``),
    when given.

    Args:
      params: the network (or ``f``, then its ``params`` and ``args``).
      *args: the batch ``x``, ``y`` (or ``f``'s ``params`` and further arguments).
      activation: hidden activation name(s) (the MLP only).
      loss: the loss name (the MLP only).
      eps: the finite-difference step.
      grad: with ``f``: your own gradient function, same arguments as ``f``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> @jax.custom_vjp
      ... def square(w):
      ...     return w * w
      >>> square.defvjp(lambda w: (w * w, w), lambda w, g: (4 * w * g,))  # 4w: should be 2w
      >>> f = lambda p, x: jnp.sum(square(p["w"]) * x)
      >>> report = check_grads(f, {"w": jnp.array([1.0, 2.0])}, jnp.array([1.0, 1.0]))
      >>> report.ok
      False
      >>> print(report.numerical_vs_autodiff.explanation[0])
      ['w']: same direction but scaled: candidate = 0.5 x reference; a factor 1/2 suggests a mean where a sum belongs
    """
    _check_eps(eps)
    if callable(params):
        return _check_function(params, args[0] if args else None, args[1:], grad, eps)
    if grad is not None:
        raise TypeError(
            "grad= is for a function of your own, check_grads(f, params, *args, grad=...); "
            "the MLP's hand-written gradient is built in"
        )
    x, y = _mlp_batch("check_grads", args)
    params = check_params(params)
    spec = resolve_loss(loss)
    x, y = check_batch(params, x, y, spec)
    acts = resolve_activations(activation, len(params) - 1)
    ad = autodiff_grad(params, x, y, activation=activation, loss=loss)
    mg = manual_grad(params, x, y, activation=activation, loss=loss)
    ng = numerical_grad(params, x, y, activation=activation, loss=loss, eps=eps)
    trace = forward_trace_unchecked(params, x, activation)
    dtype = np.dtype(params[0]["W"].dtype)
    loss_value = float(mean_loss(trace.logits, y, spec))
    notes = []
    for l, (act, h) in enumerate(zip(acts, trace.h[:-1])):
        h = np.asarray(h)
        if act.name == "relu":
            near = np.argwhere(np.abs(h) < 10 * eps)
            if near.size:
                ex, unit = near[0]
                notes.append(
                    f"layer {l + 1}: {len(near)} ReLU pre-activation(s) within {10 * eps:g} of the kink "
                    f"(e.g. example {ex}, unit {unit}: h = {h[ex, unit]:.3g}); finite differences straddle "
                    "it, while autodiff and manual use the derivative at h (0 at h = 0): expect them to differ there"
                )
        elif act.name in ("sigmoid", "tanh"):
            limit = (
                {"sigmoid": 17.0, "tanh": 9.0}[act.name]
                if dtype == np.float32
                else {"sigmoid": 37.0, "tanh": 19.0}[act.name]
            )
            sat = int(np.sum(np.abs(h) > limit))
            if sat:
                notes.append(
                    f"layer {l + 1}: {sat} {act.name} unit value(s) saturated (|h| > {limit:g}): their "
                    f"derivative is below {dtype} resolution of the activation, so gradients through them are ~0"
                )
    num_cmp, note = _against_finite_differences(ad, ng, loss_value, eps, dtype)
    notes.append(note)
    if dtype != np.float64:
        notes.append(
            f"the network is {dtype}: autodiff and manual carry {dtype} rounding, finite differences are "
            "computed in float64 from the same parameter values"
        )
    return GradCheck(
        autodiff=ad,
        manual=mg,
        numerical=ng,
        manual_vs_autodiff=compare_grads(
            ad, mg, reference_name="autodiff", candidate_name="manual"
        ),
        numerical_vs_autodiff=num_cmp,
        notes=tuple(notes),
    )


def _against_finite_differences(autodiff, numerical, value: float, eps: float, *dtypes):
    """Finite differences against autodiff, held to their own noise floor; and a note
    saying how big that floor is.

    Central differences err by about ``eps^2 |L'''| / 6`` (truncation) plus
    ``1e-16 |L| / eps`` (rounding); ``atol`` is ten times that, ``rtol`` the library's
    finite-difference one (or the parameters' dtype's, if coarser).
    """
    noise = 1e-16 * max(abs(value), 1.0) / eps + eps**2
    base = tolerance(*dtypes)
    fd = tolerance(np.float64, kind="finite_difference")
    cmp = compare_grads(
        autodiff,
        numerical,
        rtol=max(fd.rtol, base.rtol),
        atol=max(10 * noise, base.atol),
        reference_name="autodiff",
        candidate_name="numerical",
    )
    note = (
        f"finite differences with eps = {eps:g} carry an error of about {noise:.1e} (truncation "
        f"eps^2 |L'''| / 6 plus rounding 1e-16 |L| / eps); the largest difference from autodiff "
        f"is {cmp.max_abs_error:.1e}"
    )
    return cmp, note


def _check_function(fn, params, args, grad, eps) -> GradCheck:
    """[`check_grads`][jaxbp.grads.check_grads] for any scalar function of a pytree."""
    value, ad, given, ng = check_function(fn, params, args, grad, eps)
    dtypes = [np.dtype(leaf.dtype) for leaf in jax.tree_util.tree_leaves(params)]
    num_cmp, note = _against_finite_differences(ad, ng, value, eps, *dtypes)
    notes = [note]
    if not num_cmp.ok:
        notes.append(
            "autodiff follows the function's own derivative rules (custom_vjp, custom_jvp, "
            "stop_gradient): where finite differences disagree with it, look there first"
        )
    manual_cmp = None
    if given is not None:
        manual_cmp = compare_grads(ad, given, reference_name="autodiff", candidate_name="manual")
    return GradCheck(
        autodiff=ad,
        manual=given,
        numerical=ng,
        manual_vs_autodiff=manual_cmp,
        numerical_vs_autodiff=num_cmp,
        notes=tuple(notes),
    )
