r"""Why a candidate's answer is wrong: the common mistake that reproduces it,
and where in the parameter vector the error lives.

When an ``assert_*`` helper (:mod:`hessinv_ref.testing.asserts`) or
:func:`hessinv_ref.golden.verify` finds a wrong answer, the size of the error
says little.  This module recomputes, with the oracle, the answer that each
common mistake would have produced, and reports the ones the candidate's
answer matches to within the tolerance of the original comparison (the same
error measure, with the conditioning of the *alternative* problem):

================================  ===============================================================
likely cause                      the alternative answer, computed exactly
================================  ===============================================================
loss summed instead of averaged   ``c`` times the answer, ``c = B`` (and, for a squared-error
                                  head, ``B n_out`` and ``n_out``); for the inverse
                                  :math:`(cH + εI)^{-1} g` and :math:`x / c`
damping forgotten / doubled       :math:`H^{-1} g`, :math:`(H + 2εI)^{-1} g` (and their log-det)
Gauss-Newton (GGN) given          :math:`G = \sum_i J_i^T Λ_i J_i`, :math:`J_i = ∂u_i/∂θ` the
                                  head's logits of sample ``i``, :math:`Λ_i = ∇^2_{u_i} ℓ`
block-diagonal approximation      :math:`H` with every off-diagonal layer block zeroed
weights flattened column-major,   a permutation :math:`π` of our layout (:func:`layouts`),
bias before weight, layers        either of the answer only, :math:`π(a)`, or of every flat
reversed                          vector the candidate reads and writes:
                                  :math:`π(a(π^{-1}θ, π^{-1}v))`
sign flip                         :math:`-a`
float32 precision                 the error is within the float32 version of the tolerance
                                  (:math:`ε_{32}` for :math:`ε`), and every entry is a float32
                                  number, or the error is within a factor ``C_TOL`` of the
                                  error of this library's own float32 computation
================================  ===============================================================

Damping forgotten when :math:`H` itself is singular (as it is for every
default problem) has no unique answer: the candidate is then compared by
its backward error :math:`\|H x_c - g\| / (\|H\|_2 \|x_c\| + \|g\|)`,
which a backward-stable solve keeps at a small multiple of :math:`n ε`
however large :math:`x_c` is.

Hypotheses that need the dense Hessian or a dense factorization beyond the
one the comparison made are tried only for ``P <=`` :data:`DENSE_LIMIT`;
above it they are reported as ``not checked (P too large ...)``, never
guessed.  A hypothesis whose matrix is numerically singular is reported as
not checked, with the reason.

Where the error lives: the difference is split by layer with the parameter
offsets of our layout, and within a layer into its weight and its bias; the
worst entry is named by layer, ``W[row, col]`` or ``b[k]``, and offset.

Everything here is NumPy float64 on the host; the oracle's own quantities
come from :class:`~hessinv_ref.Curvature` on the active backend, copied back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..backend import from_numpy, to_numpy
from ..backend.constants import EPS
from ..curvature import Curvature
from ..layers import AffineLayer, LossHead, SquaredError
from .tolerances import C_TOL, gradient_scale, zero_band

__all__ = [
    "DENSE_LIMIT",
    "Cause",
    "Diagnosis",
    "Problem",
    "layouts",
    "describe_entry",
    "describe_architecture",
    "diagnose_loss",
    "diagnose_gradient",
    "diagnose_hvp",
    "diagnose_hessian",
    "diagnose_inverse",
    "diagnose_logdet",
]

EPS32 = float(np.finfo(np.float32).eps)  # of the host's float32: the float32 hypothesis is NumPy arithmetic

DENSE_LIMIT = 1000
"""Largest ``P`` for which a hypothesis may form a dense ``P × P`` matrix
(the Hessian at another point, the GGN, the block diagonal) or factor one
(each costs :math:`O(P^3)`)."""

CAUSES = {
    "summed": "loss summed instead of averaged",
    "no damping": "damping forgotten",
    "double damping": "damping doubled",
    "ggn": "Gauss-Newton (GGN) instead of the Hessian",
    "block": "block-diagonal approximation",
    "column-major": "weights flattened column-major",
    "bias first": "bias before weight",
    "reversed": "layers in reverse order",
    "sign": "sign flip",
    "float32": "float32 precision",
}
"""Short key -> the name printed in a ``likely cause`` line."""


class NotChecked(Exception):
    """A hypothesis that cannot be tried on this problem; the message says why."""


# -- the problem, and what the hypotheses need from the oracle -------------------------------


class Problem:
    """One problem ``(net, params, X, y)`` and the oracle's quantities the
    hypotheses need, each computed once, on first use.

    Parameters
    ----------
    net : Network
    params : array, shape (P,)
        Flat parameters ``theta`` in our layout.
    X : array, shape (B, n_in)
    y : array
        Labels (B,) or targets (B, n_out).
    hessian : array, shape (P, P), optional
        The dense Hessian if the caller has it already.
    """

    def __init__(self, net, params, X, y, *, hessian=None):
        self.net = net
        self.theta = np.array(to_numpy(params), dtype=np.float64)
        self.X = np.array(to_numpy(X))
        self.y = np.array(to_numpy(y))
        self._given_H = None if hessian is None else np.array(to_numpy(hessian), dtype=np.float64)

    @property
    def P(self):
        return self.net.n_params

    @property
    def B(self):
        return int(self.X.shape[0])

    def at(self, theta):
        """The same network and data at other parameters."""
        return Problem(self.net, theta, self.X, self.y)

    def need_dense(self, what):
        """Refuse (:class:`NotChecked`) a dense ``P × P`` computation above
        :data:`DENSE_LIMIT`."""
        if self.P > DENSE_LIMIT:
            raise NotChecked(f"P too large: the {what} needs a dense P x P matrix, "
                             f"P = {self.P} > DENSE_LIMIT = {DENSE_LIMIT}")

    @cached_property
    def curvature(self):
        return Curvature(self.net, from_numpy(self.theta), from_numpy(self.X), from_numpy(self.y))

    @cached_property
    def curvature32(self):
        """The same problem computed in float32 (this library's float32 route):
        a realistic float32 error to compare a candidate's with."""
        def f32(a):
            return a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a

        return Curvature(self.net, from_numpy(f32(self.theta)), from_numpy(f32(self.X)), from_numpy(f32(self.y)))

    def float32(self, what):
        """``what`` (``"loss"``, ``"gradient"``, ``"H"`` or a vector ``v``
        for ``H v``) computed in float32, as float64 NumPy."""
        c = self.curvature32
        if isinstance(what, str) and what == "loss":
            return float(c.loss())
        if isinstance(what, str) and what == "gradient":
            return np.asarray(to_numpy(c.gradient()), dtype=np.float64)
        if isinstance(what, str) and what == "H":
            self.need_dense("float32 Hessian")
            return np.asarray(to_numpy(c.hessian()), dtype=np.float64)
        return np.asarray(to_numpy(c.hvp(from_numpy(np.asarray(what, dtype=np.float32)))), dtype=np.float64)

    @cached_property
    def loss(self):
        return float(self.curvature.loss())

    @cached_property
    def loss_scale(self):
        """:math:`\\max(|ℓ|, \\max|u|)`, ``u`` the head's logits (as ``verify``)."""
        curv = self.curvature
        u = to_numpy(curv.layers[-1].logits(curv.xs[-1], curv.z[-2]))
        return max(abs(self.loss), float(np.max(np.abs(u))), np.finfo(float).tiny)

    @cached_property
    def gradient(self):
        return to_numpy(self.curvature.gradient())

    @cached_property
    def gradient_scale(self):
        return gradient_scale(self.curvature)

    def hvp(self, v):
        return to_numpy(self.curvature.hvp(from_numpy(np.asarray(v, dtype=np.float64))))

    @cached_property
    def H(self):
        """The dense Hessian (the caller's, or computed when ``P`` allows)."""
        if self._given_H is not None:
            return self._given_H
        self.need_dense("Hessian")
        return to_numpy(self.curvature.hessian())

    @cached_property
    def block_diagonal(self):
        """``H`` with the blocks ``(l, m)``, ``l != m``, of the layer offsets zeroed."""
        self.need_dense("block-diagonal approximation")
        off = self.net.offsets()
        layer_of = np.repeat(np.arange(self.net.depth), np.diff(off))
        return np.where(layer_of[:, None] == layer_of[None, :], self.H, 0.0)

    @cached_property
    def logits_jacobian(self):
        r"""``(J, Λ)``: :math:`J[i, k, :] = ∂u_{ik}/∂θ` (B, n_out, P) and
        :math:`Λ[i] = ∇^2_{u_i} ℓ` (B, n_out, n_out), the loss's curvature
        in the head's logits ``u_i = W z_{L-1,i} + c`` of sample ``i``.

        The hidden part is the forward sensitivity
        :math:`T_l = ∂z_l/∂θ = J_{z,l} T_{l-1} + [0 \dots J_{x,l} \dots 0]`,
        :math:`T_0 = 0`, then :math:`∂u_i/∂θ = W\, T_{L-1,i}` plus the head's
        own :math:`∂u_{ik}/∂W_{kj} = z_{L-1,ij}`, :math:`∂u_{ik}/∂c_k = 1`.
        """
        curv, net = self.curvature, self.net
        head = curv.layers[-1]
        if not (isinstance(head, LossHead) and isinstance(head, AffineLayer)):
            raise NotChecked(f"the head {head!r} is not an affine loss head, so its logits are unknown")
        off, P = net.offsets(), self.P
        T = np.zeros((int(curv.z[0].shape[0]), P))
        for l, blk in enumerate(curv.blocks[:-1]):
            T = to_numpy(blk.Jz) @ T
            T[:, off[l]:off[l + 1]] += to_numpy(blk.Jx)
        B, n, m = self.B, head.n_in, head.n_out
        W = to_numpy(head.unpack(curv.xs[-1])[0])
        Z = to_numpy(curv.z[-2]).reshape(B, n)
        J = np.einsum("kj,ijp->ikp", W, T.reshape(B, n, P))
        o = off[-2]
        for k in range(m):
            J[:, k, o + k * n:o + (k + 1) * n] += Z
            if head.bias:
                J[:, k, o + m * n + k] += 1.0
        U = head.logits(curv.xs[-1], curv.z[-2])
        Lam = to_numpy(head.loss_terms(U)[2])
        return J, np.array(Lam, dtype=np.float64)

    def ggn_hvp(self, v):
        r""":math:`G v = \sum_i J_i^T Λ_i J_i v` and the scale of its terms
        :math:`\max \sum_i |J_i|^T |Λ_i| |J_i| |v|`."""
        J, Lam = self.logits_jacobian
        Gv = np.einsum("ikp,ikq,iq->p", J, Lam, np.einsum("iqp,p->iq", J, v))
        aJ = np.abs(J)
        S = np.einsum("ikp,ikq,iq->p", aJ, np.abs(Lam), np.einsum("iqp,p->iq", aJ, np.abs(v)))
        return Gv, float(np.max(S)) or 1.0

    @cached_property
    def G(self):
        """The dense generalized Gauss-Newton matrix (P, P)."""
        self.need_dense("Gauss-Newton matrix")
        J, Lam = self.logits_jacobian
        return np.einsum("ikp,ikq,iqr->pr", J, Lam, J)

    def summed_factors(self):
        """``(c, note)`` for each way of summing the loss instead of averaging it."""
        head, B = self.net.head, self.B
        out = [(B, f"the answer is B = {B} times ours: the batch size")]
        if isinstance(head, SquaredError) and head.n_out > 1:
            m = head.n_out
            out += [(B * m, f"the answer is B n_out = {B * m} times ours: mse_loss(reduction='sum')"),
                    (m, f"the answer is n_out = {m} times ours: the outputs summed, the batch averaged")]
        return [(c, note) for c, note in out if c != 1]


# -- layouts ---------------------------------------------------------------------------------


def layouts(net):
    """The layouts of the common flattening mistakes, as permutations.

    Returns
    -------
    dict
        Cause key -> ``perm`` (int array of shape (P,)): the candidate's flat
        vector ``w`` holds our entry ``theta[perm[j]]`` at position ``j``
        (``w = theta[perm]``).  Keys: ``"column-major"`` (each ``W`` written
        ``W.ravel(order="F")``), ``"bias first"`` (each layer's bias before
        its weight), ``"reversed"`` (the layers' blocks in reverse order).
        Layouts equal to ours on this network (square-free, bias-free or
        one-layer cases) are left out: they cannot explain a difference.
    """
    off = net.offsets()
    column, bias_first, reverse = [], [], []
    for l, layer in enumerate(net.layers):
        block = np.arange(off[l], off[l + 1])
        if isinstance(layer, AffineLayer):
            nw = layer.n_out * layer.n_in
            W = block[:nw].reshape(layer.n_out, layer.n_in)
            column += [W.ravel(order="F"), block[nw:]]
            bias_first += [block[nw:], block[:nw]]
        else:
            column.append(block)
            bias_first.append(block)
    for l in reversed(range(net.depth)):
        reverse.append(np.arange(off[l], off[l + 1]))
    found = {"column-major": column, "bias first": bias_first, "reversed": reverse}
    identity = np.arange(net.n_params)
    out = {}
    for key, parts in found.items():
        perm = np.concatenate(parts) if parts else identity
        if not np.array_equal(perm, identity):
            out[key] = perm
    return out


def _to_ours(w, perm):
    """Our vector for the candidate's ``w`` (the inverse of ``w = theta[perm]``)."""
    theta = np.empty_like(w)
    theta[perm] = w
    return theta


# -- where the error lives ---------------------------------------------------------------------


def _entry(net, k):
    """``(layer l (1-based), part, name)`` of flat offset ``k`` in our layout."""
    off = net.offsets()
    l = int(np.searchsorted(off, k, side="right"))
    layer, j = net.layers[l - 1], int(k - off[l - 1])
    if isinstance(layer, AffineLayer):
        nw = layer.n_out * layer.n_in
        if j < nw:
            return l, "weight", f"W[{j // layer.n_in}, {j % layer.n_in}]"
        return l, "bias", f"b[{j - nw}]"
    return l, "", f"entry {j}"


def describe_entry(net, k):
    """``"layer 3 of 6 (Dense), weight W[1, 2] at offset 23"``: flat offset
    ``k`` of our layout, by layer (1-based), part and index."""
    l, part, name = _entry(net, k)
    kind = type(net.layers[l - 1]).__name__
    return f"layer {l} of {net.depth} ({kind}), {(part + ' ') if part else ''}{name} at offset {k}"


def describe_architecture(net):
    """The layers, runs of equal ones counted: ``"5 x Dense(3, 3, ...) -> SoftmaxCrossEntropy(3, 3, ...)"``."""
    runs = []
    for layer in net.layers:
        r = repr(layer)
        if runs and runs[-1][0] == r:
            runs[-1][1] += 1
        else:
            runs.append([r, 1])
    return " -> ".join(r if n == 1 else f"{n} x {r}" for r, n in runs)


def _parts(net):
    """Per layer ``l`` (1-based): ``[(part, slice)]`` - the weight and the bias
    of an affine layer with a bias, else the whole block."""
    off = net.offsets()
    out = []
    for l, layer in enumerate(net.layers):
        if isinstance(layer, AffineLayer) and layer.bias:
            nw = layer.n_out * layer.n_in
            out.append([("weight", slice(off[l], off[l] + nw)), ("bias", slice(off[l] + nw, off[l + 1]))])
        else:
            out.append([("", slice(off[l], off[l + 1]))])
    return out


def _size(d, norm):
    return float(np.linalg.norm(d)) if norm == "2" else float(np.max(np.abs(d), initial=0.0))


def _by_layer(net, d, scale, tol, norm):
    """``"over tolerance in 2 of 6 layers: 3 (4.1e-01, bias only), 1 (2.0e-03)"``: the
    layers whose part of the error measure exceeds ``tol``, worst first."""
    bad = []
    for l, parts in enumerate(_parts(net), start=1):
        errs = {part: _size(d[s], norm) / scale for part, s in parts}
        worst = max(errs.values())
        if worst > tol:
            over = [p for p, e in errs.items() if e > tol]
            only = f", {over[0]} only" if len(errs) > 1 and len(over) == 1 else ""
            bad.append((worst, f"{l} ({worst:.1e}{only})"))
    bad.sort(key=lambda t: -t[0])
    shown = ", ".join(text for _, text in bad[:6]) + (f", and {len(bad) - 6} more" if len(bad) > 6 else "")
    if not bad:
        return f"no single layer over tolerance {tol:.1e} (of {net.depth}); the error is spread out"
    return f"over tolerance in {len(bad)} of {net.depth} layers: {shown}"


def _where_vector(net, c, ref, scale, tol, norm):
    d = c - ref
    finite = np.isfinite(c)
    if not np.all(finite):
        k = int(np.argmin(finite))
        return [("non-finite", f"{int(np.size(c) - np.count_nonzero(finite))} entries are NaN or inf; "
                               f"the first: {describe_entry(net, k)}")]
    k = int(np.argmax(np.abs(d)))
    return [("worst entry", f"{describe_entry(net, k)}: got {c[k]:.10g}, expected {ref[k]:.10g}"),
            ("by layer", _by_layer(net, d, scale, tol, norm))]


def _where_matrix(net, c, ref, scale, tol):
    d = np.abs(c - ref)
    if not np.all(np.isfinite(c)):
        r, s = np.argwhere(~np.isfinite(c))[0]
        return [("non-finite", f"NaN or inf entries; the first at row {describe_entry(net, r)}, "
                               f"column {describe_entry(net, s)}")]
    r, s = np.unravel_index(int(np.argmax(d)), d.shape)
    off = net.offsets()
    blocks = []
    for l in range(net.depth):
        for m in range(l + 1):
            e = float(np.max(d[off[l]:off[l + 1], off[m]:off[m + 1]], initial=0.0)) / scale
            e = max(e, float(np.max(d[off[m]:off[m + 1], off[l]:off[l + 1]], initial=0.0)) / scale)
            if e > tol:
                blocks.append((e, f"({l + 1}, {m + 1}) {e:.1e}"))
    blocks.sort(key=lambda t: -t[0])
    shown = ", ".join(t for _, t in blocks[:6]) + (f", and {len(blocks) - 6} more" if len(blocks) > 6 else "")
    return [("worst entry", f"H[{r}, {s}]: got {c[r, s]:.10g}, expected {ref[r, s]:.10g}; "
                            f"row: {describe_entry(net, r)}; column: {describe_entry(net, s)}"),
            ("by layer", f"layer blocks (l, m) over tolerance: {len(blocks)} of {net.depth * (net.depth + 1) // 2}"
                         + (f": {shown}" if blocks else ""))]


# -- the verdicts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cause:
    """One hypothesis tried.

    Attributes
    ----------
    key : str
        Short name (see :data:`CAUSES`).
    status : {"match", "no match", "not checked"}
    note : str
        What the alternative is, or why it was not checked.
    error, tolerance : float or None
        The candidate's error against the alternative, in the comparison's
        measure, and the tolerance it had to meet.
    """

    key: str
    status: str
    note: str = ""
    error: float | None = None
    tolerance: float | None = None

    @property
    def name(self):
        return CAUSES[self.key]

    def describe(self):
        if self.status == "not checked":
            return f"{self.name}: not checked ({self.note})"
        text = f"{self.name} ({self.note})" if self.note else self.name
        return text + (f": matches to {self.error:.1e} <= {self.tolerance:.1e}" if self.status == "match" else "")


@dataclass
class Diagnosis:
    """Where the error lives and which known causes reproduce it.

    ``lines()`` gives ``(label, text)`` pairs: ``worst entry``, ``by layer``,
    ``likely cause`` (and ``also fits``), ``not checked``.
    """

    where: list = field(default_factory=list)
    causes: list = field(default_factory=list)
    not_diagnosed: str = ""
    """Why no cause was tried at all (a NaN in the answer), if so."""

    @property
    def matches(self):
        return [c for c in self.causes if c.status == "match"]

    @property
    def likely_cause(self):
        """The name of the first matching cause, or ``None``."""
        return self.matches[0].name if self.matches else None

    def lines(self):
        out = list(self.where)
        m = self.matches
        if self.not_diagnosed:
            out.append(("likely cause", f"not diagnosed ({self.not_diagnosed})"))
        elif m:
            out.append(("likely cause", m[0].describe()))
            out += [("also fits", c.describe()) for c in m[1:]]
        else:
            tried = list(dict.fromkeys(c.name for c in self.causes if c.status == "no match"))
            out.append(("likely cause", "no known cause matched" + (f" (tried: {', '.join(tried)})" if tried else "")))
        skipped = [c for c in self.causes if c.status == "not checked"]
        # one line per reason, not per hypothesis
        reasons = {}
        for c in skipped:
            reasons.setdefault(c.note, []).append(c.name)
        out += [("not checked", f"{', '.join(dict.fromkeys(names))} ({note})") for note, names in reasons.items()]
        return out

    def text(self, indent="    ", sep=": "):
        """The lines, one ``label: text`` per line."""
        return "\n".join(f"{indent}{label}{sep}{text}" for label, text in self.lines())


class _Residual:
    r"""An alternative given as a singular system ``A x = rhs``: the answer is
    not unique, so a candidate is compared by its normwise backward error
    :math:`\|A x_c - rhs\| / (\|A\|_2 \|x_c\| + \|rhs\|)` (a backward-stable
    solve makes it a small multiple of :math:`n ε`, however large ``x_c``)."""

    def __init__(self, A, rhs, wmax):
        self.A, self.rhs, self.wmax = A, rhs, wmax

    def error(self, c):
        r = self.A @ c - self.rhs
        return float(np.linalg.norm(r) / (self.wmax * np.linalg.norm(c) + np.linalg.norm(self.rhs)))


def _measure(c, alt, scale, norm):
    if isinstance(alt, _Residual):
        return alt.error(c)
    if np.ndim(alt) == 0 or norm == "abs":
        return abs(float(c) - float(alt)) / scale
    return _size(np.asarray(c) - np.asarray(alt), norm) / scale


def _try(trials, c, norm, tol_of, rtol):
    """Run ``(key, note, thunk)`` trials; ``thunk() -> (alt, scale, cond)``."""
    causes = []
    for key, note, thunk in trials:
        try:
            alt, scale, cond = thunk()
        except NotChecked as why:
            causes.append(Cause(key, "not checked", str(why)))
            continue
        err = _measure(c, alt, scale or 1.0, norm)
        tol = rtol if rtol is not None else tol_of(cond)
        causes.append(Cause(key, "match" if err <= tol else "no match", note, err, tol))
    return causes


def _float32(c, ref, scale, norm, tol32, answer32):
    """The float32 hypothesis.  It matches when the error is within the
    float32 tolerance ``tol32`` and either every entry of ``c`` is a float32
    number, or the error is within a factor ``C_TOL`` either way of the error
    of this library's own float32 computation ``answer32()`` (realistic
    float32 rounding for this problem, unlike the worst-case ``tol32``)."""
    if not tol32 < 1:
        return Cause("float32", "not checked", f"float32 cannot resolve this quantity: its "
                                               f"float32 tolerance is {tol32:.1e}")
    err = _measure(c, ref, scale or 1.0, norm)
    if err > tol32:
        return Cause("float32", "no match", "", err, tol32)
    if bool(np.all(np.asarray(c, dtype=np.float32).astype(np.float64) == c)):
        return Cause("float32", "match", "every entry is a float32 number", err, tol32)
    try:
        e32 = _measure(answer32(), ref, scale or 1.0, norm)
    except NotChecked as why:
        return Cause("float32", "not checked", f"the entries are not float32 numbers, and {why}")
    if e32 / C_TOL <= err <= C_TOL * e32:
        return Cause("float32", "match", f"the error is the size of a float32 computation's, {e32:.1e}; "
                                         f"the entries are not float32 numbers", err, tol32)
    return Cause("float32", "no match", "", err, tol32)


def _diagnosis(where, trials, c, ref, scale, norm, tol_of, rtol, float32_tol, answer32):
    c = np.asarray(c, dtype=np.float64)
    if not np.all(np.isfinite(c)):
        return Diagnosis(where, not_diagnosed="the answer has NaN or inf entries")
    causes = _try(trials, c, norm, tol_of, rtol)
    causes.append(_float32(c, ref, scale, norm, float32_tol, answer32))
    return Diagnosis(where, causes)


def _tolerance(c_tol, n):
    return lambda cond: c_tol * n * EPS * cond


def _layout_trials(problem, answer_in_layout, answer_at):
    """Trials for each layout: the answer written in it, and every flat
    vector read and written in it (``answer_at(q, perm)`` at ``q``, the
    problem at ``pi^-1(theta)``)."""
    def read_and_written(perm):
        try:
            return answer_at(problem.at(_to_ours(problem.theta, perm)), perm)
        except NotChecked as why:
            raise NotChecked(f"params read in that layout: {why}") from None

    trials = []
    for key, perm in layouts(problem.net).items():
        trials.append((key, "the answer written in that layout", lambda perm=perm: answer_in_layout(perm)))
        trials.append((key, "params read and the answer written in that layout",
                       lambda perm=perm: read_and_written(perm)))
    return trials


# -- one function per quantity ----------------------------------------------------------------------


def diagnose_loss(problem, candidate, *, reference, scale, rtol=None, c_tol=C_TOL):
    """Diagnose a wrong training loss (measure ``|d| / scale``)."""
    trials = [("summed", note, lambda f=f: (f * reference, abs(f) * scale, 1.0)) for f, note in problem.summed_factors()]
    trials.append(("sign", "the answer is minus ours", lambda: (-reference, scale, 1.0)))
    n = problem.P
    return _diagnosis([], trials, candidate, reference, scale, "abs", _tolerance(c_tol, n), rtol,
                      c_tol * n * EPS32, lambda: problem.float32("loss"))


def diagnose_gradient(problem, candidate, *, reference, scale, rtol=None, c_tol=C_TOL):
    r"""Diagnose a wrong gradient (measure :math:`\max|d| / S_g`).

    Parameters
    ----------
    problem : Problem
    candidate, reference : ndarray, shape (P,)
    scale : float
        :math:`S_g` of the comparison.
    rtol : float, optional
        The comparison's fixed tolerance, if it had one.
    c_tol : float
        The safety factor of the tolerance :math:`c\, n\, ε`.

    Returns
    -------
    Diagnosis
    """
    c = np.asarray(candidate, dtype=np.float64)
    g = np.asarray(reference, dtype=np.float64)
    trials = [("summed", note, lambda f=f: (f * g, abs(f) * scale, 1.0)) for f, note in problem.summed_factors()]
    trials.append(("sign", "the answer is minus ours", lambda: (-g, scale, 1.0)))
    trials += _layout_trials(problem, lambda perm: (g[perm], scale, 1.0),
                             lambda q, perm: (q.gradient[perm], q.gradient_scale, 1.0))
    n = problem.P
    tol = rtol if rtol is not None else c_tol * n * EPS
    return _diagnosis(_where_vector(problem.net, c, g, scale, tol, "max"), trials, c, g, scale, "max",
                      _tolerance(c_tol, n), rtol, c_tol * n * EPS32, lambda: problem.float32("gradient"))


def _hv_scale(M, v):
    return float(np.max(np.abs(M) @ np.abs(v))) or 1.0


def diagnose_hvp(problem, candidate, v, *, reference, scale, rtol=None, c_tol=C_TOL):
    r"""Diagnose a wrong Hessian-vector product (measure :math:`\max|d| / \max(|H||v|)`).

    ``v`` is the direction the candidate was given; the other arguments as
    in :func:`diagnose_gradient`.
    """
    c = np.asarray(candidate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    trials = [("summed", note, lambda f=f: (f * ref, abs(f) * scale, 1.0)) for f, note in problem.summed_factors()]
    trials.append(("sign", "the answer is minus ours", lambda: (-ref, scale, 1.0)))
    trials.append(("ggn", "G v", lambda: problem.ggn_hvp(v) + (1.0,)))

    def block():
        Hb = problem.block_diagonal
        return Hb @ v, _hv_scale(Hb, v), 1.0

    trials.append(("block", "blockdiag(H) v: the off-diagonal layer blocks dropped", block))

    def at(q, perm):
        q.need_dense("scale of the terms at the permuted point")
        w = _to_ours(v, perm)
        return q.hvp(w)[perm], _hv_scale(q.H, w), 1.0

    trials += _layout_trials(problem, lambda perm: (ref[perm], scale, 1.0), at)
    n = problem.P
    tol = rtol if rtol is not None else c_tol * n * EPS
    return _diagnosis(_where_vector(problem.net, c, ref, scale, tol, "max"), trials, c, ref, scale, "max",
                      _tolerance(c_tol, n), rtol, c_tol * n * EPS32, lambda: problem.float32(v))


def diagnose_hessian(problem, candidate, *, reference, scale, rtol=None, c_tol=C_TOL):
    r"""Diagnose a wrong dense Hessian (measure :math:`\max|d| / \max|H|`)."""
    c = np.asarray(candidate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    trials = [("summed", note, lambda f=f: (f * ref, abs(f) * scale, 1.0)) for f, note in problem.summed_factors()]
    trials.append(("sign", "the answer is minus ours", lambda: (-ref, scale, 1.0)))

    def dense(M):
        return M, float(np.max(np.abs(M))) or 1.0, 1.0

    trials.append(("ggn", "G", lambda: dense(problem.G)))
    trials.append(("block", "blockdiag(H): the off-diagonal layer blocks dropped", lambda: dense(problem.block_diagonal)))
    trials += _layout_trials(problem, lambda perm: (ref[np.ix_(perm, perm)], scale, 1.0),
                             lambda q, perm: dense(q.H[np.ix_(perm, perm)]))
    n = problem.P
    tol = rtol if rtol is not None else c_tol * n * EPS
    where = _where_matrix(problem.net, c, ref, scale, tol) if c.shape == ref.shape else []
    return _diagnosis(where, trials, c, ref, scale, "max", _tolerance(c_tol, n), rtol, c_tol * n * EPS32,
                      lambda: problem.float32("H"))


def _spectrum(A, what):
    """Eigenvalues of the symmetric ``A``; :class:`NotChecked` if it is
    numerically singular (no inverse or log-det to compare with)."""
    w = np.linalg.eigvalsh(A)
    wabs = np.abs(w)
    if not float(np.min(wabs)) > zero_band(w):
        raise NotChecked(f"{what} is numerically singular")
    return wabs


def _solve(A, rhs, what):
    """``(x, ||x||, kappa)`` for a nonsingular ``A``; for a numerically
    singular one, a :class:`_Residual` (compared by backward error, cond 1)."""
    w = np.linalg.eigvalsh(A)
    wabs = np.abs(w)
    if not float(np.min(wabs)) > zero_band(w):
        return _Residual(A, rhs, float(np.max(wabs)) or 1.0), 1.0, 1.0
    x = np.linalg.solve(A, rhs)
    return x, float(np.linalg.norm(x)) or 1.0, float(np.max(wabs) / np.min(wabs))


def diagnose_inverse(problem, candidate, g, damping, *, reference, kappa, rtol=None, c_tol=C_TOL,
                     rhs_name="g"):
    r"""Diagnose a wrong :math:`x = (H + εI)^{-1} g` (measure
    :math:`\|d\|_2 / \|x\|_2`, tolerance :math:`c\, n\, ε\, κ_2`).

    Parameters
    ----------
    problem : Problem
    candidate, reference : ndarray, shape (P,)
    g : ndarray, shape (P,)
        The right-hand side the candidate was given.
    damping : float
        :math:`ε`.
    kappa : float
        :math:`κ_2(H + εI)` of the comparison.
    rtol, c_tol
        As in :func:`diagnose_gradient`.
    rhs_name : str
        What the right-hand side is called in the messages (``verify``'s is ``v``).
    """
    c = np.asarray(candidate, dtype=np.float64)
    x = np.asarray(reference, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    eps_d = float(damping)
    norm_x = float(np.linalg.norm(x)) or 1.0
    P = problem.P
    eye = np.eye(P)

    def solve(what, matrix, rhs=g):
        def thunk():
            problem.need_dense(what)
            return _solve(matrix(), rhs, what)
        return thunk

    trials = []
    for f, note in problem.summed_factors():
        trials.append(("summed", f"({f} H + eps I)^-1 {rhs_name}: the Hessian of the summed loss",
                       solve(f"{f} H + eps I", lambda f=f: f * problem.H + eps_d * eye)))
        trials.append(("summed", f"x / {f}: the summed loss, its damping scaled with it",
                       lambda f=f: (x / f, norm_x / f, kappa)))
    if eps_d > 0:
        trials.append(("no damping", f"H x = {rhs_name}; by the residual if H is singular", solve("H", lambda: problem.H)))
        trials.append(("double damping", f"(H + 2 eps I)^-1 {rhs_name}", solve("H + 2 eps I", lambda: problem.H + 2 * eps_d * eye)))
    trials.append(("ggn", f"(G + eps I)^-1 {rhs_name}", solve("G + eps I", lambda: problem.G + eps_d * eye)))
    trials.append(("block", f"(blockdiag(H) + eps I)^-1 {rhs_name}: the off-diagonal layer blocks dropped",
                   solve("blockdiag(H) + eps I", lambda: problem.block_diagonal + eps_d * eye)))
    trials.append(("sign", "the answer is minus ours", lambda: (-x, norm_x, kappa)))

    def at(q, perm):
        q.need_dense("Hessian at the permuted point")
        xq, nq, kq = _solve(q.H + eps_d * eye, _to_ours(g, perm), "H + eps I at the permuted point")
        return xq[perm], nq, kq

    trials += _layout_trials(problem, lambda perm: (x[perm], norm_x, kappa), at)
    def answer32():
        A32 = (problem.float32("H") + eps_d * eye).astype(np.float32)
        return np.linalg.solve(A32, g.astype(np.float32)).astype(np.float64)

    tol = rtol if rtol is not None else c_tol * P * EPS * kappa
    return _diagnosis(_where_vector(problem.net, c, x, norm_x, tol, "2"), trials, c, x, norm_x, "2",
                      _tolerance(c_tol, P), rtol, c_tol * P * EPS32 * kappa, answer32)


def _logdet(A, what):
    wabs = _spectrum(A, what)
    return float(np.sum(np.log(wabs))), 1.0, float(np.sum(np.max(wabs) / wabs))


def diagnose_logdet(problem, candidate, damping, *, reference, cond, rtol=None, c_tol=C_TOL):
    r"""Diagnose a wrong :math:`\log|\det(H + εI)|` (absolute error, tolerance
    :math:`c\, n\, ε \sum_j \|A\|_2 / |λ_j(A)|`, ``cond`` that sum for the
    comparison's matrix)."""
    eps_d = float(damping)
    P = problem.P
    eye = np.eye(P)

    def logdet(what, matrix):
        def thunk():
            problem.need_dense(what)
            return _logdet(matrix(), what)
        return thunk

    trials = [("summed", f"log|det({f} H + eps I)|: the Hessian of the summed loss",
               logdet(f"{f} H + eps I", lambda f=f: f * problem.H + eps_d * eye))
              for f, _ in problem.summed_factors()]
    if eps_d > 0:
        trials.append(("no damping", "log|det H|", logdet("H", lambda: problem.H)))
        trials.append(("double damping", "log|det(H + 2 eps I)|", logdet("H + 2 eps I", lambda: problem.H + 2 * eps_d * eye)))
    trials.append(("ggn", "log|det(G + eps I)|", logdet("G + eps I", lambda: problem.G + eps_d * eye)))
    trials.append(("block", "log|det(blockdiag(H) + eps I)|: the off-diagonal layer blocks dropped",
                   logdet("blockdiag(H) + eps I", lambda: problem.block_diagonal + eps_d * eye)))
    for key, perm in layouts(problem.net).items():
        def at(perm=perm):
            q = problem.at(_to_ours(problem.theta, perm))
            q.need_dense("Hessian at the permuted point")
            return _logdet(q.H + eps_d * eye, "H + eps I at the permuted point")
        trials.append((key, "params read in that layout", at))
    def answer32():
        A32 = (problem.float32("H") + eps_d * eye).astype(np.float32)
        return float(np.linalg.slogdet(A32)[1])

    return _diagnosis([], trials, candidate, reference, 1.0, "abs", _tolerance(c_tol, P), rtol,
                      c_tol * P * EPS32 * cond, answer32)
