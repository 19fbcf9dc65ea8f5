r"""Golden test vectors: a language-neutral file format, its writer, reader and verifier.

A golden file is a pair ``NAME.json`` + ``NAME.npz`` side by side:

* ``NAME.json`` describes the problem in words and numbers: the architecture
  (one entry per layer: kind, widths, activation, bias), the parameter
  layout, the loss reduction, the dampings, the dtype, the library that
  wrote the answers, and the name, shape and dtype of every array;
* ``NAME.npz`` (a zip of ``.npy`` files, readable from C++ with ``cnpy``,
  from Julia with ``NPZ.jl``, from any language with a zip and a 10-line
  ``.npy`` header parser) holds the arrays.

=================  =============  ===========================================================
array              shape          meaning
=================  =============  ===========================================================
``params``         (P,)           flat parameters ``theta`` (inputs)
``X``              (B, n_in)      input batch (inputs)
``y``              (B,) int64     labels of a softmax head (inputs), or
                   (B, n_out)     float targets of a squared-error head
``v``              (P,)           direction of the Hessian-vector product (inputs)
``damping``        (k,)           the :math:`ε` values (inputs)
``loss``           ()             the training loss
``g``              (P,)           its gradient
``Hv``             (P,)           :math:`H v`
``H``              (P, P)         the dense Hessian (only when ``P`` is small)
``inverse_v``      (k, P)         row ``i``: :math:`(H + ε_i I)^{-1} v`
``logdet``         (k,)           :math:`\log|\det(H + ε_i I)|`
``logdet_sign``    (k,)           the sign of :math:`\det(H + ε_i I)`, ±1
``inertia``        (k, 3) int64   counts of positive, negative and zero eigenvalues
=================  =============  ===========================================================

Integer-valued entries (``logdet_sign``, ``inertia``, the labels ``y`` of a
softmax head, and the JSON's widths and counts) may be written as floats by
another implementation.  A float ``v`` stands for the integer ``k = round(v)``
when :math:`|v - k| \le 8 ε \max(1, |k|)` (:data:`INTEGER_RTOL`, a few
roundings of an exact integer): ``0.9999999999999999`` is 1, while ``1.000001``,
``1.9`` or ``3.2`` are not integers and make the file malformed, as do a NaN,
a ``logdet_sign`` other than ±1 (``0`` included) and an ``inertia`` row with
a negative count or that does not add up to ``P``.  :func:`load` returns
them as exact integers (``logdet_sign`` as the floats ±1.0), and
:func:`verify` compares those, so like is compared with like.

Every array but ``params``, ``X`` and ``y`` is optional in a file written by
another implementation (``v`` is needed with ``Hv`` or ``inverse_v``,
``damping`` with the per-:math:`ε` answers); :func:`verify` checks what is
there.  The JSON's ``arrays`` entry is optional too; when present it must
list exactly the arrays of the archive, with their shapes.  Conventions (:ref:`notation §8 <notation-8>`): each layer's parameters are its weight
``W`` of shape (out, in) row-major, then its bias, in layer order
(``torch.nn.Linear``'s ``named_parameters()``); cross-entropy is the batch
mean of :math:`-\log \mathrm{softmax}(u_i)_{y_i}` and squared error the mean
over all :math:`B\, n_{out}` elements (PyTorch's defaults).

:func:`verify` recomputes every answer with this package and compares it with
the stored one, with tolerances from the conditioning of each quantity
(see :func:`verify`).
"""

from __future__ import annotations

import json
import math
import numbers
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._argtypes import nonnegative_float, nonnegative_int, positive_float, positive_int
from .activations import ACTIVATIONS
from .backend.constants import EPS
from .layers import Dense, Residual, SoftmaxCrossEntropy, SquaredError
from .network import Network
from .testing import diagnose
from .testing.report import Check, Report, judge
from .testing.tolerances import C_TOL, gradient_scale, zero_band

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ANSWERS",
    "CURATED_DIR",
    "curated",
    "curated_path",
    "describe_network",
    "network_from_description",
    "compute_answers",
    "save",
    "export",
    "load",
    "verify",
    "VerifyReport",
    "add_parsers",
]

FORMAT = "hessinv_ref golden vectors"
"""The ``format`` entry of every golden JSON file; :func:`load` refuses other files."""
FORMAT_VERSION = 1
"""The ``format_version`` entry, incremented whenever the layout of the files
changes; :func:`load` refuses other versions."""

DENSE_LIMIT = 400
"""Largest ``P`` for which :func:`export` stores the dense Hessian ``H``."""

MAX_VERIFY_PARAMS = 5000
"""Largest ``P`` that :func:`verify` and :func:`compute_answers` handle (they
take the eigenvalues of the dense ``P × P`` matrix)."""

INTEGER_RTOL = 8 * EPS
r"""How far a stored integer-valued entry ``v`` may lie from the integer
``k = round(v)`` it stands for: :math:`|v - k| \le` ``INTEGER_RTOL``
:math:`\max(1, |k|)`.  Eight units in the last place: room for the few
roundings a float64 computation of an exact integer can make (a sign as
``det / |det|``, a count accumulated in floats), and nowhere near the
distance to the next integer.  A value farther off is not an integer, and
the file is malformed."""

C_TOL_H = 1000.0
"""Safety factor for the dense Hessian, whose entries are cancellations of
path products (PyTorch's reached ``10 n eps`` on 200 random problems)."""

INPUTS = ("params", "X", "y", "v", "damping")
ANSWERS = ("loss", "g", "Hv", "H", "inverse_v", "logdet", "logdet_sign", "inertia")
"""Names of the answer arrays, in the order :func:`verify` reports them."""

LAYER_KINDS = {"dense": Dense, "residual": Residual, "softmax": SoftmaxCrossEntropy, "mse": SquaredError}

PARAMETER_LAYOUT = (
    "params is the concatenation over layers l = 1..L of W_l.ravel() (W_l of shape "
    "(n_out, n_in), row-major: W_l[k, j] at offset k * n_in + j) followed by the bias "
    "b_l (n_out,) when the layer has one; the order of torch.nn.Linear.named_parameters()."
)
LOSS_STATEMENT = {
    "softmax": "cross-entropy, mean over the batch of -log softmax(u_i)[y_i] with logits "
               "u = Z W^T + b: torch.nn.functional.cross_entropy(u, y, reduction='mean')",
    "mse": "squared error, mean over all B * n_out elements of (u - y)^2 with outputs "
           "u = Z W^T + b: torch.nn.functional.mse_loss(u, y, reduction='mean')",
}
LAYER_STATEMENT = {
    "dense": "z_out = act(z_in W^T + b) per sample",
    "residual": "z_out = z_in + act(z_in W^T + b) per sample (n_in == n_out)",
}
MEANINGS = {
    "params": "flat parameters theta, see conventions.parameter_layout",
    "X": "input batch, one sample per row",
    "y": "integer class labels (softmax head) or float targets (mse head)",
    "v": "direction of the Hessian-vector product and right-hand side of the inverse",
    "damping": "the dampings eps_i",
    "loss": "the training loss at params",
    "g": "gradient of the loss with respect to params",
    "Hv": "H @ v, H the Hessian of the loss with respect to params",
    "H": "the dense Hessian",
    "inverse_v": "row i: (H + damping[i] I)^{-1} v",
    "logdet": "row i: log|det(H + damping[i] I)|",
    "logdet_sign": "row i: sign of det(H + damping[i] I)",
    "inertia": "row i: (n_positive, n_negative, n_zero) eigenvalues of H + damping[i] I",
}


# -- the curated set shipped with the package ------------------------------------------

CURATED_DIR = Path(__file__).parent / "golden_files"
"""Where the curated golden files are installed (package data of
``hessinv_ref``; written by ``python -m hessinv_ref.testing.make_golden``)."""


def curated():
    """Names of the curated golden files shipped with the package, sorted.

    Returns
    -------
    list of str
        E.g. ``"paper_tanh_softmax"``; pass one to :func:`curated_path`.
    """
    return sorted(p.stem for p in CURATED_DIR.glob("*.json"))


def curated_path(name):
    """The path ``NAME`` (without suffix) of a shipped curated golden file,
    for :func:`load`, :func:`verify` or ``hessinv-ref verify``.

    Raises
    ------
    ValueError
        For a name not in :func:`curated`.
    """
    names = curated()
    if name not in names:
        raise ValueError(f"name: expected one of the curated golden files {names}, got {name!r}")
    return CURATED_DIR / name


# -- architecture <-> JSON -------------------------------------------------------------


def describe_network(net):
    """The ``architecture`` entry of a golden file for ``net``.

    Parameters
    ----------
    net : Network
        Built from :class:`~hessinv_ref.layers.Dense`,
        :class:`~hessinv_ref.layers.Residual` and a
        :class:`~hessinv_ref.layers.SoftmaxCrossEntropy` or
        :class:`~hessinv_ref.layers.SquaredError` head, with built-in
        activations.

    Returns
    -------
    dict
        ``{"n_in": int, "layers": [{"kind", "n_in", "n_out", "bias"[, "activation"]}, ...]}``.

    Raises
    ------
    ValueError
        For a layer or activation the format cannot describe.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net: expected a Network, got {type(net).__name__}")
    layers = []
    for l, layer in enumerate(net.layers):
        kind = next((k for k, cls in LAYER_KINDS.items() if type(layer) is cls), None)
        if kind is None:
            raise ValueError(
                f"net.layers[{l}]: a golden file can describe only {sorted(LAYER_KINDS)} "
                f"layers (Dense, Residual, SoftmaxCrossEntropy, SquaredError), got {type(layer).__name__}"
            )
        spec = {"kind": kind, "n_in": int(layer.n_in), "n_out": int(layer.n_out), "bias": bool(layer.bias)}
        if kind in ("dense", "residual"):
            name = getattr(layer.activation, "name", None)
            if name not in ACTIVATIONS or type(ACTIVATIONS[name]) is not type(layer.activation):
                raise ValueError(
                    f"net.layers[{l}]: a golden file can describe only the built-in activations "
                    f"{sorted(ACTIVATIONS)}, got {layer.activation!r}"
                )
            spec["activation"] = name
        layers.append(spec)
    return {"n_in": int(net.n_in), "layers": layers}


def _get(d, key, where, types, what):
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    if key not in d:
        raise ValueError(f"{where}: missing key {key!r}")
    value = d[key]
    if isinstance(value, bool) and bool not in types:
        raise ValueError(f"{where}.{key}: expected {what}, got {value!r}")
    if not isinstance(value, types):
        raise ValueError(f"{where}.{key}: expected {what}, got {value!r}")
    return value


def _integer_array(name, a, where):
    """``a`` as exact int64 integers, or ValueError: an integer dtype as is, a
    float entry ``v`` as ``round(v)`` when it lies within :data:`INTEGER_RTOL`
    of it (see the module notes)."""
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_:
        return a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{where}: {name}: expected integers, got dtype {a.dtype}")
    f = a.astype(np.float64)
    k = np.rint(f)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(f - k) <= INTEGER_RTOL * np.maximum(1.0, np.abs(k)))  # NaN and inf are bad
    if np.any(bad):
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        at = f" at index {i[0] if len(i) == 1 else list(i)}" if a.ndim else ""
        raise ValueError(
            f"{where}: {name}: expected integers (a float must lie within {INTEGER_RTOL:.2g} "
            f"max(1, |k|) of an integer k), got {float(f[i])!r}{at}"
        )
    return k.astype(np.int64)


def _int(d, key, where, what="an integer"):
    """A JSON integer ``d[key]``; an integer-valued float (``3.0``) counts, as
    in :func:`_integer_array`; a bool does not."""
    value = _get(d, key, where, (int, float), what)
    if isinstance(value, float):
        try:
            value = int(_integer_array(key, value, where))
        except ValueError:
            raise ValueError(f"{where}.{key}: expected {what}, got {value!r}") from None
    return value


def _pos_int(d, key, where):
    value = _int(d, key, where, "a positive integer")
    if value < 1:
        raise ValueError(f"{where}.{key}: expected a positive integer, got {value}")
    return value


def network_from_description(arch, where="architecture"):
    """Rebuild the :class:`Network` an ``architecture`` entry describes.

    Raises
    ------
    ValueError
        Naming the offending entry, for a missing key, a wrong type, an unknown
        layer kind or activation, or widths that do not chain.
    """
    n_in = _pos_int(arch, "n_in", where)
    specs = _get(arch, "layers", where, (list,), "a list of layers")
    if not specs:
        raise ValueError(f"{where}.layers: expected at least one layer (the loss head), got none")
    layers = []
    for l, spec in enumerate(specs):
        at = f"{where}.layers[{l}]"
        kind = _get(spec, "kind", at, (str,), "a layer kind")
        if kind not in LAYER_KINDS:
            raise ValueError(f"{at}.kind: expected one of {sorted(LAYER_KINDS)}, got {kind!r}")
        li, lo = _pos_int(spec, "n_in", at), _pos_int(spec, "n_out", at)
        bias = _get(spec, "bias", at, (bool,), "true or false")
        if kind in ("dense", "residual"):
            act = _get(spec, "activation", at, (str,), "an activation name")
            if act not in ACTIVATIONS:
                raise ValueError(f"{at}.activation: expected one of {sorted(ACTIVATIONS)}, got {act!r}")
            if kind == "residual":
                if li != lo:
                    raise ValueError(f"{at}: a residual layer needs n_in == n_out, got {li} and {lo}")
                layers.append(Residual(li, act, bias=bias))
            else:
                layers.append(Dense(li, lo, act, bias=bias))
        else:
            layers.append(LAYER_KINDS[kind](li, lo, bias=bias))
    if layers[0].n_in != n_in:
        raise ValueError(f"{where}.layers[0].n_in: expected n_in = {n_in}, got {layers[0].n_in}")
    try:
        return Network(layers)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


# -- computing the answers --------------------------------------------------------------


def _check_dampings(damping):
    vals = np.atleast_1d(np.asarray(damping, dtype=np.float64))
    if vals.ndim != 1 or not np.all(np.isfinite(vals)) or np.any(vals < 0):
        raise ValueError(f"damping: expected finite numbers >= 0, got {np.asarray(damping).tolist()!r}")
    return vals


def _eig_answers(A):
    w = np.linalg.eigvalsh(A)
    P = A.shape[0]
    zero_tol = zero_band(w)
    n_zero = int(np.count_nonzero(np.abs(w) <= zero_tol))
    n_neg = int(np.count_nonzero(w < -zero_tol))
    with np.errstate(divide="ignore"):
        logdet = float(np.sum(np.log(np.abs(w))))
    sign = float(np.prod(np.sign(w)))
    return w, logdet, sign, (P - n_zero - n_neg, n_neg, n_zero)


def compute_answers(net, params, X, y, v, damping, *, dense=True):
    """Every answer a golden file holds, computed exactly.

    Parameters
    ----------
    net, params, X, y
        The problem.
    v : ndarray, shape (P,)
        Direction of the Hessian-vector product, right-hand side of the inverse.
    damping : sequence of float
        The :math:`ε` values.
    dense : bool
        Include the dense Hessian ``H``.

    Returns
    -------
    dict of ndarray
        ``loss, g, Hv, [H], damping, inverse_v, logdet, logdet_sign, inertia``
        (see the module table).  ``Hv`` comes from the R-operator; the inverse,
        log-determinant and inertia from the dense matrix (LU solve,
        eigenvalues), the oracle route.

    Raises
    ------
    ValueError
        If :math:`H + εI` is numerically singular for some ``ε``, or ``P`` is
        too large for the dense matrix.
    """
    from .curvature import Curvature

    damping = _check_dampings(damping)
    curv = Curvature(net, params, X, y)
    if curv.P > MAX_VERIFY_PARAMS:
        raise ValueError(f"params: golden answers need the dense Hessian, so P <= {MAX_VERIFY_PARAMS}; got P = {curv.P}")
    v = np.array(net.check_vector("v", v), dtype=np.float64)
    if v.shape != (curv.P,):
        raise ValueError(f"v: expected shape ({curv.P},), got {v.shape}")
    H = curv.hessian()
    out = {
        "loss": np.array(curv.loss()),
        "g": curv.gradient(),
        "Hv": curv.hvp(v),
        "damping": damping,
    }
    if dense:
        out["H"] = H
    inv, logdet, sign, inertia = [], [], [], []
    for eps_d in damping:
        A = H + eps_d * np.eye(curv.P)
        w, ld, sg, inr = _eig_answers(A)
        if inr[2]:
            raise ValueError(
                f"damping: H + {eps_d:g} I is numerically singular ({inr[2]} eigenvalues within "
                f"P eps max|lambda| of zero), so it has no inverse to store; choose a larger damping"
            )
        inv.append(np.linalg.solve(A, v))
        logdet.append(ld)
        sign.append(sg)
        inertia.append(inr)
    out["inverse_v"] = np.array(inv).reshape(len(damping), curv.P)
    out["logdet"] = np.array(logdet)
    out["logdet_sign"] = np.array(sign)
    out["inertia"] = np.array(inertia, dtype=np.int64).reshape(len(damping), 3)
    return out


# -- files ------------------------------------------------------------------------------


def _paths(path):
    """``(NAME.json, NAME.npz)`` from ``NAME``, ``NAME.json`` or ``NAME.npz``."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path: expected a str or Path, got {type(path).__name__}")
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".json", ".npz") else p
    return Path(str(stem) + ".json"), Path(str(stem) + ".npz")


def _array_entry(name, a):
    return {"shape": list(a.shape), "dtype": str(a.dtype), "meaning": MEANINGS.get(name, "")}


def save(path, net, params, X, y, answers, *, name=None, description="", library=None, generator=None):
    """Write a golden file pair from arrays already computed (by any implementation).

    Parameters
    ----------
    path : str or Path
        ``NAME``, ``NAME.json`` or ``NAME.npz``; both files are written.
    net : Network
        The architecture (see :func:`describe_network`).
    params : list of dict or ndarray, shape (P,)
    X : ndarray, shape (B, n_in)
    y : ndarray
    answers : dict of array_like
        Any of ``v, damping`` and the answers ``loss, g, Hv, H, inverse_v,
        logdet, logdet_sign, inertia`` (module table); unknown names are an error.
    name, description : str
        Recorded in the JSON.
    library : dict, optional
        ``{"name": ..., "version": ...}`` of the implementation that computed
        the answers; default this package.
    generator : dict, optional
        How the problem was drawn (recorded for people, not read back).

    Returns
    -------
    (Path, Path)
        The JSON and NPZ paths written.
    """
    from . import __version__

    json_path, npz_path = _paths(path)
    arch = describe_network(net)
    theta = np.array(net.flatten(params) if isinstance(params, (list, tuple)) else params, dtype=np.float64)
    if isinstance(net.head, SoftmaxCrossEntropy) and np.issubdtype(np.asarray(y).dtype, np.floating):
        y = _integer_array("y", y, "y")  # labels written as floats: integers, or refused
    z0, y_checked = net.check_inputs(X, y)
    net.layer_vectors(theta)
    arrays = {"params": theta, "X": np.asarray(X, dtype=np.float64),
              "y": np.asarray(y_checked, dtype=np.int64 if isinstance(net.head, SoftmaxCrossEntropy) else np.float64)}
    unknown = sorted(set(answers) - set(ANSWERS) - {"v", "damping"})
    if unknown:
        raise ValueError(f"answers: unknown names {unknown}; expected some of {['v', 'damping', *ANSWERS]}")
    for key in ("v", "damping", *ANSWERS):
        if key in answers and answers[key] is not None:
            if key == "inertia":  # never truncate: 3.2 eigenvalues is an error, not 3
                arrays[key] = _integer_array(key, answers[key], "answers")
            else:
                arrays[key] = np.array(answers[key], dtype=np.float64)
    damping = arrays.get("damping")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name if name is not None else json_path.stem,
        "description": description,
        "library": library if library is not None else {"name": "hessinv_ref", "version": __version__},
        "dtype": "float64",
        "architecture": arch,
        "batch": int(arrays["X"].shape[0]),
        "n_params": int(net.n_params),
        "param_sizes": [int(p) for p in net.param_sizes],
        "conventions": {
            "parameter_layout": PARAMETER_LAYOUT,
            "activations": "activations are row-wise per sample; tanh, sigmoid, softplus "
                           "(log(1 + e^u)), gelu (exact, erf), silu, relu, identity as in torch",
            "layers": LAYER_STATEMENT,
            "loss": LOSS_STATEMENT[arch["layers"][-1]["kind"]],
            "loss_reduction": "mean",
            "hessian": "H is the Hessian of the loss with respect to params, in the same layout",
        },
        "damping": [] if damping is None else [float(d) for d in damping],
        "arrays": {k: _array_entry(k, a) for k, a in arrays.items()},
    }
    if generator is not None:
        meta["generator"] = generator
    # validate what we are about to write with the reader's own rules
    _validate(meta, arrays, json_path, npz_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    with open(npz_path, "wb") as f:
        np.savez_compressed(f, **arrays)
    json_path.write_text(json.dumps(meta, indent=2) + "\n")
    return json_path, npz_path


def export(path, net, params, X, y, *, v=None, damping=(1e-1,), seed=0, dense_limit=DENSE_LIMIT,
           name=None, description="", generator=None):
    """Compute every answer with this package and write the golden file pair.

    Parameters
    ----------
    path : str or Path
        ``NAME`` (or ``NAME.json`` / ``NAME.npz``).
    net, params, X, y
        The problem.
    v : ndarray of shape (P,), optional
        Default: standard normal from ``numpy.random.default_rng([seed, 1])``.
    damping : float or sequence of float
        The :math:`ε` values.
    seed : int
        Seed for the default ``v``.
    dense_limit : int
        Store ``H`` only when ``P <= dense_limit``.
    name, description, generator
        Recorded in the JSON.

    Returns
    -------
    (Path, Path)
    """
    P = net.n_params
    if v is None:
        v = np.random.default_rng([int(seed), 1]).standard_normal(P)
    answers = compute_answers(net, params, X, y, v, damping, dense=P <= dense_limit)
    answers["v"] = np.array(v, dtype=np.float64)
    return save(path, net, params, X, y, answers, name=name, description=description, generator=generator)


def _read_json(json_path):
    try:
        text = json_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OSError(f"{json_path}: no such file (a golden file is NAME.json and NAME.npz side by side)") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{json_path}: not a UTF-8 text file ({err.reason})") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{json_path}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{json_path}: expected a JSON object at the top level, got {type(meta).__name__}")
    return meta


def _read_npz(npz_path):
    if not npz_path.exists():
        raise OSError(f"{npz_path}: no such file (a golden file is NAME.json and NAME.npz side by side)")
    if not zipfile.is_zipfile(npz_path):
        raise ValueError(f"{npz_path}: not an .npz archive (no zip directory: the file is truncated or of another kind)")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            return {k: np.array(data[k]) for k in data.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{npz_path}: not a readable .npz archive ({type(err).__name__}: {reason})") from None


def _validate(meta, arrays, json_path, npz_path):
    """Check the JSON and the arrays against each other and the architecture;
    return the rebuilt network."""
    where = str(json_path)
    fmt = meta.get("format")
    if fmt != FORMAT:
        raise ValueError(f"{where}: format: expected {FORMAT!r}, got {fmt!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{where}: format_version: expected {FORMAT_VERSION}, got {version!r}")
    if meta.get("dtype", "float64") != "float64":
        raise ValueError(f"{where}: dtype: only 'float64' files are supported, got {meta.get('dtype')!r}")
    net = network_from_description(_get(meta, "architecture", where, (dict,), "an object"),
                                   where=f"{where}: architecture")
    unknown = sorted(set(arrays) - set(INPUTS) - set(ANSWERS))
    if unknown:
        raise ValueError(f"{npz_path}: unknown array(s) {unknown}; expected some of {[*INPUTS, *ANSWERS]}")
    # "arrays" is optional (a file written by hand may leave it out); when present
    # it must describe the archive exactly
    listed = meta.get("arrays", None)
    if listed is None:
        listed = {}
    elif not isinstance(listed, dict):
        raise ValueError(f"{where}: arrays: expected an object of name -> {{shape, dtype}}, got {type(listed).__name__}")
    else:
        unknown = sorted(set(listed) - set(INPUTS) - set(ANSWERS))
        if unknown:
            raise ValueError(f"{where}: arrays: unknown names {unknown}; expected some of {[*INPUTS, *ANSWERS]}")
        missing_npz = sorted(set(listed) - set(arrays))
        if missing_npz:
            raise ValueError(f"{npz_path}: missing array(s) {missing_npz} listed in {where}")
        extra = sorted(set(arrays) - set(listed))
        if extra:
            raise ValueError(f"{npz_path}: array(s) {extra} are not listed in {where} 'arrays'")
    for key in ("params", "X", "y"):
        if key not in arrays:
            raise ValueError(f"{npz_path}: missing key {key!r} (the problem's inputs)")
    if not any(k in arrays for k in ANSWERS):
        raise ValueError(f"{npz_path}: no answers; expected some of {list(ANSWERS)}")
    for key, entry in listed.items():
        shape = _get(entry, "shape", f"{where}: arrays.{key}", (list,), "a list of integers")
        if tuple(shape) != arrays[key].shape:
            raise ValueError(
                f"{npz_path}: {key}: shape {arrays[key].shape} differs from {list(shape)} in {where}"
            )
    P = net.n_params
    X = arrays["X"]
    if X.ndim != 2 or X.shape[1] != net.n_in or X.shape[0] < 1:
        raise ValueError(f"{npz_path}: X: expected shape (B, {net.n_in}), got {X.shape}")
    B = X.shape[0]
    if "batch" in meta and _int(meta, "batch", where) != B:
        raise ValueError(f"{where}: batch: {meta['batch']!r} differs from X's {B} rows")
    if "n_params" in meta and _int(meta, "n_params", where) != P:
        raise ValueError(f"{where}: n_params: {meta['n_params']!r} differs from the architecture's P = {P}")
    if "param_sizes" in meta:
        sizes = _get(meta, "param_sizes", where, (list,), "a list of integers")
        got = [_int({"param_sizes": p}, "param_sizes", where) for p in sizes]
        if got != list(net.param_sizes):
            raise ValueError(f"{where}: param_sizes: {sizes!r} differs from the architecture's {list(net.param_sizes)}")
    k = None
    if "damping" in arrays:
        d = arrays["damping"]
        if d.ndim != 1 or d.size == 0:
            raise ValueError(f"{npz_path}: damping: expected shape (k,) with k >= 1, got {d.shape}")
        k = d.size
    expected = {
        "params": (P,), "v": (P,), "loss": (), "g": (P,), "Hv": (P,), "H": (P, P),
        "inverse_v": (k, P), "logdet": (k,), "logdet_sign": (k,), "inertia": (k, 3),
    }
    if isinstance(net.head, SoftmaxCrossEntropy):
        expected["y"] = (B,)
    else:
        expected["y"] = (B, net.head.n_out)
    for key, shape in expected.items():
        if key not in arrays:
            continue
        if None in shape:
            raise ValueError(f"{npz_path}: {key} needs the array 'damping' (the eps values), which is missing")
        if arrays[key].shape != shape:
            raise ValueError(f"{npz_path}: {key}: expected shape {shape}, got {arrays[key].shape}")
    if ("Hv" in arrays or "inverse_v" in arrays) and "v" not in arrays:
        raise ValueError(f"{npz_path}: missing key 'v' (the direction of Hv and inverse_v)")
    for key, a in arrays.items():
        if key in ("y", "inertia", "logdet_sign"):
            continue
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{npz_path}: {key}: expected a float64 array, got dtype {a.dtype}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{npz_path}: {key}: expected finite values, got NaN or inf")
    # integer-valued arrays: exact integers from here on (module notes), so
    # verify compares like with like
    if isinstance(net.head, SoftmaxCrossEntropy):
        arrays["y"] = _integer_array("y", arrays["y"], str(npz_path))
    if "logdet_sign" in arrays:
        sign = _integer_array("logdet_sign", arrays["logdet_sign"], str(npz_path))
        if np.any(np.abs(sign) != 1):
            i = int(np.argmax(np.abs(sign) != 1))
            raise ValueError(f"{npz_path}: logdet_sign: expected +1 or -1 (the sign of det(H + eps I)), "
                             f"got {arrays['logdet_sign'][i]!r} at index {i}")
        arrays["logdet_sign"] = sign.astype(np.float64)
    if "inertia" in arrays:
        inertia = _integer_array("inertia", arrays["inertia"], str(npz_path))
        if np.any(inertia < 0):
            i = [int(j) for j in np.argwhere(inertia < 0)[0]]
            raise ValueError(f"{npz_path}: inertia: expected counts >= 0, got {int(inertia[tuple(i)])} at index {i}")
        total = inertia.sum(axis=1)
        if np.any(total != P):
            i = int(np.argmax(total != P))
            raise ValueError(f"{npz_path}: inertia: row {i} {inertia[i].tolist()} counts {int(total[i])} "
                             f"eigenvalues, expected P = {P}")
        arrays["inertia"] = inertia
    if "damping" in arrays:
        if np.any(arrays["damping"] < 0):
            raise ValueError(f"{npz_path}: damping: expected values >= 0, got {arrays['damping'].tolist()}")
        listed_d = meta.get("damping")
        if listed_d is not None:
            try:
                same = np.array_equal(np.asarray(listed_d, dtype=np.float64), arrays["damping"])
            except (TypeError, ValueError):
                same = False
            if not same:
                raise ValueError(
                    f"{where}: damping: {listed_d!r} differs from the npz's {arrays['damping'].tolist()}"
                )
    try:
        net.check_inputs(X, arrays["y"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{npz_path}: {err}") from None
    return net


def load(path):
    """Read a golden file pair and rebuild the problem exactly.

    Parameters
    ----------
    path : str or Path
        ``NAME``, ``NAME.json`` or ``NAME.npz``.

    Returns
    -------
    net : Network
    params : ndarray, shape (P,)
    X : ndarray, shape (B, n_in)
    y : ndarray
    answers : dict of ndarray
        Every other array of the file (``v``, ``damping`` and the answers).
    meta : dict
        The parsed JSON.

    Raises
    ------
    OSError
        If either file is missing or unreadable.
    ValueError
        For a malformed file: invalid JSON, a truncated or corrupt archive,
        a missing key, a wrong shape, an unknown layer kind; the one-line
        message names the file and the entry.
    """
    json_path, npz_path = _paths(path)
    meta = _read_json(json_path)
    arrays = _read_npz(npz_path)
    net = _validate(meta, arrays, json_path, npz_path)
    answers = {k: a for k, a in arrays.items() if k not in ("params", "X", "y")}
    return net, arrays["params"].astype(np.float64), arrays["X"].astype(np.float64), arrays["y"], answers, meta


# -- verification ------------------------------------------------------------------------


@dataclass
class VerifyRow(Check):
    """One quantity of :class:`VerifyReport`: a
    :class:`~hessinv_ref.testing.report.Check` (``quantity``, ``status``,
    ``error``, ``tolerance``, ``measure``, ``detail``) with its diagnosis."""

    diagnosis: object = None
    """For a failure: a :class:`~hessinv_ref.testing.diagnose.Diagnosis`
    (where the error lives, the likely cause)."""


@dataclass
class VerifyReport(Report):
    """The outcome of :func:`verify`; ``str(report)`` is the table.

    A :class:`~hessinv_ref.testing.report.Report` of :class:`VerifyRow`
    rows (``rows``, the same list as ``checks``), in the report's standard
    columns; under a failed row, its diagnosis.
    """

    path: str
    library: str

    @property
    def rows(self):
        """The :class:`VerifyRow` rows (the list ``checks``)."""
        return self.checks

    @rows.setter
    def rows(self, rows):
        self.checks = rows

    @property
    def passed(self):
        """True when no quantity failed and at least one was compared and passed."""
        return not self.failures and any(r.passed for r in self.rows)

    def lines_after(self, row):
        """The diagnosis of a failed row, indented."""
        return [] if row.diagnosis is None else [row.diagnosis.text(indent="    ")]

    def summary(self):
        """One line: the verdict, the file, and the failed quantities."""
        n_fail = len(self.failures)
        verdict = "PASS" if self.passed else "FAIL"
        return (f"{verdict}: {self.path} (answers by {self.library}): "
                f"{len(self.rows) - n_fail} of {len(self.rows)} quantities ok"
                + (f"; failed: {', '.join(r.quantity for r in self.failures)}" if n_fail else ""))

    def __str__(self):
        return self.table() + "\n" + self.summary()


def _cmp(rows, quantity, stored, ref, scale, tol, measure, rtol, norm="max", diagnose=None):
    """Append the row; for a failure, ``diagnose()`` gives its diagnosis."""
    if norm == "2":
        err = float(np.linalg.norm(stored - ref)) / scale
    else:
        err = float(np.max(np.abs(stored - ref), initial=0.0)) / scale
    tol = rtol if rtol is not None else tol
    row = VerifyRow(quantity, judge(err, tol), err, tol, measure)
    if not row.passed and diagnose is not None:
        row.diagnosis = diagnose()
    rows.append(row)


def verify(path, *, rtol=None):
    r"""Recompute everything in a golden file and compare with its stored answers.

    Parameters
    ----------
    path : str or Path
        ``NAME``, ``NAME.json`` or ``NAME.npz``.
    rtol : float, optional
        One fixed tolerance on every continuous quantity's error measure
        (see the notes) instead of the conditioning-based ones.

    Returns
    -------
    VerifyReport
        ``report.passed``, ``report.failures``, ``str(report)`` the table.
        Under each failed continuous quantity the table has the worst entry
        (its layer, ``W[row, col]`` or ``b[k]`` and offset), the layers over
        tolerance and a ``likely cause`` line
        (:mod:`hessinv_ref.testing.diagnose`; ``row.diagnosis``).

    Raises
    ------
    OSError, ValueError
        For a missing or malformed file (see :func:`load`).

    Notes
    -----
    The tolerance of each quantity (``hessinv-ref verify --help`` repeats them).
    With ``n = P`` (the length of the sums that build each answer) and
    :math:`C = 100` (:data:`~hessinv_ref.testing.tolerances.C_TOL`):

    * ``loss``: :math:`|Δ| / \max(|ℓ|, \max|u|) \le C n ε`, ``u`` the head's
      logits (the loss is a difference of terms of that size);
    * ``g``: :math:`\max|Δ| / \max_l \max(|b_l|^T |J_{x,l}|) \le C n ε`;
    * ``Hv``: :math:`\max|Δ| / \max(|H||v|) \le C n ε`;
    * ``H``: :math:`\max|Δ| / \max|H| \le C_H n ε`, :math:`C_H = 1000`;
    * ``inverse_v[i]``: :math:`\|Δ\|_2 / \|x\|_2 \le C n ε κ_2(H + ε_i I)`;
    * ``logdet[i]``: :math:`|Δ| \le C n ε \sum_j \|A\|_2 / |λ_j(A)|`,
      :math:`A = H + ε_i I` (the first-order change of
      :math:`\sum_j \log|λ_j|` under a relative perturbation :math:`n ε`);
    * ``logdet_sign``, ``inertia``: exact, as integers (a stored float is
      the integer within :data:`INTEGER_RTOL` of it, or the file is
      malformed: see the module notes); an eigenvalue within
      :math:`n ε \max|λ|` of zero counts as zero, and the comparison is
      refused (skipped) when one lies within :math:`C n ε \max|λ|` of zero
      but outside that band, since its sign is then not determined by the data.
    """
    from .curvature import Curvature

    if rtol is not None and not (isinstance(rtol, numbers.Real) and math.isfinite(rtol) and rtol > 0):
        raise ValueError(f"rtol: expected a positive finite number, got {rtol!r}")
    net, params, X, y, ans, meta = load(path)
    P = net.n_params
    if P > MAX_VERIFY_PARAMS:
        raise ValueError(f"{path}: verify needs the dense Hessian, so P <= {MAX_VERIFY_PARAMS}; got P = {P}")
    lib = meta.get("library", {})
    library = f"{lib.get('name', '?')} {lib.get('version', '')}".strip() if isinstance(lib, dict) else str(lib)
    report = VerifyReport(str(_paths(path)[0].with_suffix("")), library)
    rows = report.rows
    n = P
    curv = Curvature(net, params, X, y)
    H = curv.hessian()
    # what a failure's diagnosis needs from the oracle, computed once, on demand
    problem = diagnose.Problem(net, params, X, y, hessian=H)

    if "loss" in ans:
        u = curv.layers[-1].logits(curv.xs[-1], curv.z[-2])
        S = max(abs(curv.loss()), float(np.max(np.abs(u))), np.finfo(float).tiny)
        _cmp(rows, "loss", ans["loss"], curv.loss(), S, C_TOL * n * EPS, "|d| / max(|loss|, max|logits|)", rtol,
             diagnose=lambda: diagnose.diagnose_loss(problem, ans["loss"], reference=curv.loss(), scale=S, rtol=rtol))
    if "g" in ans:
        S = gradient_scale(curv)
        g = np.asarray(curv.gradient())
        _cmp(rows, "g", ans["g"], g, S, C_TOL * n * EPS, "max|d| / max(|b|^T|Jx|)", rtol,
             diagnose=lambda: diagnose.diagnose_gradient(problem, ans["g"], reference=g, scale=S, rtol=rtol))
    if "Hv" in ans:
        v = ans["v"]
        S = float(np.max(np.abs(H) @ np.abs(v))) or 1.0
        _cmp(rows, "Hv", ans["Hv"], H @ v, S, C_TOL * n * EPS, "max|d| / max(|H||v|)", rtol,
             diagnose=lambda: diagnose.diagnose_hvp(problem, ans["Hv"], v, reference=H @ v, scale=S, rtol=rtol))
    if "H" in ans:
        S = float(np.max(np.abs(H))) or 1.0
        _cmp(rows, "H", ans["H"], H, S, C_TOL_H * n * EPS, "max|d| / max|H|", rtol,
             diagnose=lambda: diagnose.diagnose_hessian(problem, ans["H"], reference=H, scale=S, rtol=rtol,
                                                        c_tol=C_TOL_H))
    if "damping" in ans:
        for i, eps_d in enumerate(ans["damping"]):
            tag = f"[eps={eps_d:g}]"
            A = H + eps_d * np.eye(P)
            w, logdet, sign, inertia = _eig_answers(A)
            wabs = np.abs(w)
            wmax = float(np.max(wabs))
            band = zero_band(w)  # n eps max|lambda|
            singular = float(np.min(wabs)) <= band
            kappa = math.inf if singular else wmax / float(np.min(wabs))
            if "inverse_v" in ans:
                if singular:
                    rows.append(VerifyRow(f"inverse_v{tag}", "skip", detail="H + eps I is numerically singular"))
                else:
                    x = np.linalg.solve(A, ans["v"])
                    _cmp(rows, f"inverse_v{tag}", ans["inverse_v"][i], x, float(np.linalg.norm(x)) or 1.0,
                         C_TOL * n * EPS * kappa, f"||d|| / ||x||, kappa {kappa:.2e}", rtol, norm="2",
                         diagnose=lambda: diagnose.diagnose_inverse(
                             problem, ans["inverse_v"][i], ans["v"], eps_d, reference=x, kappa=kappa, rtol=rtol,
                             rhs_name="v"))
            if "logdet" in ans:
                if singular:
                    rows.append(VerifyRow(f"logdet{tag}", "skip", detail="H + eps I is numerically singular"))
                else:
                    tol = C_TOL * n * EPS * float(np.sum(wmax / wabs))
                    err = abs(float(ans["logdet"][i]) - logdet)
                    t = rtol if rtol is not None else tol
                    row = VerifyRow(f"logdet{tag}", judge(err, t), err, t,
                                    "|d| (absolute: an error in log|det|)")
                    if not row.passed:
                        row.diagnosis = diagnose.diagnose_logdet(
                            problem, float(ans["logdet"][i]), eps_d, reference=logdet,
                            cond=float(np.sum(wmax / wabs)), rtol=rtol)
                    rows.append(row)
            ambiguous = bool(np.any((wabs > band) & (wabs <= C_TOL * band)))
            for key, mine in (("logdet_sign", sign), ("inertia", inertia)):
                if key not in ans:
                    continue
                stored = ans[key][i]
                if ambiguous:
                    rows.append(VerifyRow(f"{key}{tag}", "skip",
                                          detail="an eigenvalue is too close to zero for its sign to be determined"))
                    continue
                # both exact integers: load rounded the stored ones within INTEGER_RTOL
                same = np.array_equal(np.asarray(stored), np.rint(np.asarray(mine, dtype=np.float64)))
                rows.append(VerifyRow(f"{key}{tag}", "pass" if same else "FAIL", measure="exact",
                                      detail=f"stored {np.asarray(stored).tolist()}, recomputed {np.asarray(mine).tolist()}"))
    return report


# -- the command line -----------------------------------------------------------------------


def add_parsers(sub):
    """Add the ``export`` and ``verify`` subcommands to an argparse sub-parser set."""
    import argparse

    from .testing.problems import HEADS

    export_p = sub.add_parser(
        "export",
        help="write golden test vectors (NAME.json + NAME.npz) for a described architecture",
        description="Draw a random problem of the described architecture (as "
        "hessinv_ref.testing.random_problem does) and write its golden test vectors: "
        "params, X, y, v, the loss, gradient, Hv, the dense H when P <= --dense-limit, "
        "and (H + eps I)^{-1} v, log|det| and inertia for every --damping.",
    )
    export_p.add_argument("--depth", type=positive_int, default=6, help="number of layers L, the head included (default 6)")
    export_p.add_argument("--width", type=positive_int, default=3, help="hidden width (default 3)")
    export_p.add_argument("--batch", type=positive_int, default=2, help="batch size (default 2)")
    export_p.add_argument("--layers", choices=("dense", "residual", "mixed"), default="dense",
                          help="hidden layer kind (default dense; mixed alternates, dense first)")
    export_p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="tanh", help="hidden activation (default tanh)")
    export_p.add_argument("--head", choices=HEADS, default="softmax", help="loss head (default softmax)")
    export_p.add_argument("--classes", type=positive_int, default=3,
                          help="classes of a softmax head, outputs of an mse head (default 3)")
    export_p.add_argument("--bias", action=argparse.BooleanOptionalAction, default=False,
                          help="give every layer a bias (default: no bias, the paper's setting)")
    export_p.add_argument("--scale", type=positive_float, default=2.0,
                          help="gain over torch.nn.Linear's initial bound (default 2)")
    export_p.add_argument("--damping", type=nonnegative_float, action="append", metavar="EPS",
                          help="a damping eps; repeat for several (default 0.1 and 0.001)")
    export_p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    export_p.add_argument("--dense-limit", type=nonnegative_int, default=DENSE_LIMIT,
                          help=f"store the dense H only when P <= this (default {DENSE_LIMIT})")
    export_p.add_argument("-o", "--output", required=True, metavar="PATH",
                          help="output NAME: writes NAME.json and NAME.npz")
    export_p.set_defaults(func=_run_export)

    verify_p = sub.add_parser(
        "verify",
        help="recompute every answer in a golden file and compare with the stored ones",
        description="Recompute every answer in a golden file (NAME.json + NAME.npz, written by "
        "'hessinv-ref export' or by another implementation) with hessinv_ref, and print a "
        "per-quantity table of errors and tolerances.  Exit status 0 if all pass, 1 if any "
        "fails, 2 for an unreadable or malformed file.",
        epilog="Tolerances (n = P): loss, g, Hv: 100 n eps relative to the size of the terms; "
        "H: 1000 n eps relative to max|H|; inverse_v: 100 n eps kappa(H + eps I), normwise; "
        "logdet: 100 n eps sum_j ||A|| / |lambda_j|, absolute; logdet_sign and inertia: exact.",
    )
    verify_p.add_argument("file", metavar="FILE", help="NAME, NAME.json or NAME.npz")
    verify_p.add_argument("--rtol", type=positive_float, default=None,
                          help="one fixed tolerance for every continuous quantity instead of the "
                          "conditioning-based ones (e.g. 1e-4 for float32 answers)")
    verify_p.set_defaults(func=_run_verify)


def _run_export(args, out=print):
    from .testing.problems import random_problem

    damping = args.damping if args.damping else [1e-1, 1e-3]
    kwargs = dict(depth=args.depth, width=args.width, batch=args.batch, layers=args.layers,
                  activation=args.activation, head=args.head, bias=args.bias,
                  n_classes=args.classes, scale=args.scale, seed=args.seed)
    net, params, X, y = random_problem(**kwargs)
    if net.n_params > MAX_VERIFY_PARAMS:
        raise ValueError(f"--depth/--width: P = {net.n_params} parameters; export needs P <= {MAX_VERIFY_PARAMS}")
    json_path, npz_path = export(
        args.output, net, params, X, y, damping=damping, seed=args.seed, dense_limit=args.dense_limit,
        description="hessinv-ref export",
        generator={"random_problem": kwargs,
                   "v": "numpy.random.default_rng([seed, 1]).standard_normal(P)"},
    )
    out(f"wrote {json_path} and {npz_path}: P = {net.n_params}, batch {args.batch}, "
        f"damping {', '.join(f'{d:g}' for d in damping)}"
        + ("" if net.n_params <= args.dense_limit else " (dense H omitted: P > --dense-limit)"))
    return 0


def _run_verify(args, out=print):
    report = verify(args.file, rtol=args.rtol)
    out(report.table())
    out(report.summary())
    return 0 if report.passed else 1
