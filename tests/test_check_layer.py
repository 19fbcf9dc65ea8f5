"""``check_layer``: passes on every built-in layer, and names the one wrong term.

Each broken layer below subclasses a built-in and corrupts exactly one method
(or one term of one method); ``check_layer`` must fail on exactly the rows
that depend on that method, and its message must name them.

``check_layer`` calls the layer with arrays of the active backend, so the
layers written here (the one from scratch and the broken ones) compute with
the active namespace ``xp`` of :mod:`hessinv_ref.backend`, as a user's layer
for the library must.
"""

import numpy as np
import pytest

from _backend import ON_NUMPY, B, N, numpy_only
from hessinv_ref.backend import xp
from hessinv_ref import ACTIVATIONS, Dense, Network, Residual, SoftmaxCrossEntropy, SquaredError, hvp
from hessinv_ref.testing.check import ROWS, LayerCheckReport, check_layer

ALL = {q for q, _ in ROWS}


def _failed(report):
    return {r.quantity for r in report.failures}


# -- every built-in layer passes ------------------------------------------------------------


BUILTINS = (
    [Dense(3, 2, act, bias=True) for act in sorted(ACTIVATIONS)]
    + [Residual(3, act, bias=False) for act in sorted(ACTIVATIONS)]
    + [Dense(2, 4, "tanh", bias=False), Residual(2, "gelu", bias=True)]
    + [SoftmaxCrossEntropy(3, 4, bias=b) for b in (True, False)]
    + [SquaredError(3, 2, bias=b) for b in (True, False)]
)


@pytest.mark.parametrize("layer", BUILTINS, ids=repr)
def test_every_builtin_layer_passes(layer):
    report = check_layer(layer, batch=2, seed=1)
    assert isinstance(report, LayerCheckReport) and report.passed
    # every row ran: nothing was skipped on a correct layer
    assert {r.quantity for r in report.rows} == ALL
    assert all(r.status == "pass" for r in report.rows), str(report)


@pytest.mark.parametrize("seed", range(5))
def test_builtins_pass_across_seeds_and_batches(seed):
    for layer in (Dense(2, 3, "silu"), Residual(2, "softplus"), SoftmaxCrossEntropy(2, 3)):
        check_layer(layer, batch=1 + seed % 3, seed=seed)


def test_loss_head_with_given_targets_and_bound_head():
    y = np.array([0, 2, 1])
    report = check_layer(SoftmaxCrossEntropy(2, 3), y=y)
    assert report.batch == 3 and report.passed
    assert check_layer(SoftmaxCrossEntropy(2, 3), y=B(y)).passed  # or the backend's array
    bound = SquaredError(2, 2).bind(B(np.ones((4, 2))))
    assert check_layer(bound).batch == 4


# -- a layer written from scratch, outside the class hierarchy -----------------------------


class Scale:
    """``z_out = z_in * x`` per sample (elementwise gain), written from scratch
    with the Array API (no ``kron``/``diag`` there: the block patterns are
    products with identity matrices)."""

    is_loss = False

    def __init__(self, n):
        self.n_in = self.n_out = self.n_params = n

    def __repr__(self):
        return f"Scale({self.n_in})"

    def _Z(self, a):
        return xp.reshape(a, (-1, self.n_in))

    @staticmethod
    def _flat(a):
        return xp.reshape(a, (-1,))

    def _eye(self, x):
        return xp.eye(self.n_in, dtype=x.dtype, device=x.device)

    def forward(self, x, z_in):
        return self._flat(self._Z(z_in) * x)

    def vjp(self, x, z_in, b_out):
        Bm = self._Z(b_out)
        return self._flat(Bm * x), xp.sum(Bm * self._Z(z_in), axis=0)

    def jvp(self, x, z_in, t_in, v):
        return self._flat(self._Z(t_in) * x + self._Z(z_in) * v)

    def second_order(self, x, z_in, b_out, t_in, v):
        Bm, T = self._Z(b_out), self._Z(t_in)
        return self._flat(Bm * v), xp.sum(Bm * T, axis=0)  # Hzz = 0, Hxx = 0

    def jacobians(self, x, z_in):
        Z = self._Z(z_in)
        a = Z.shape[0] * self.n_in
        # Jz = I_B ⊗ diag(x): the identity with column (i, k) scaled by x_k
        Jz = xp.eye(a, dtype=x.dtype, device=x.device) * self._flat(xp.broadcast_to(x, Z.shape))[None, :]
        # Jx = [diag(z_1); ...; diag(z_B)]: row (i, k) holds Z[i, k] in column k
        Jx = xp.reshape(Z[:, :, None] * self._eye(x)[None, ...], (a, self.n_in))
        return Jz, Jx

    def curvature(self, x, z_in, b_out):
        Bm = self._Z(b_out)
        a = Bm.shape[0] * self.n_in
        # Hxz = [diag(b_1), ..., diag(b_B)]: row k holds Bm[i, k] in column (i, k)
        Hxz = xp.reshape(self._eye(x)[:, None, :] * Bm[None, ...], (self.n_params, a))
        zeros = xp.zeros((self.n_params, self.n_params), dtype=x.dtype, device=x.device)
        return zeros, Hxz, xp.zeros((a, a), dtype=x.dtype, device=x.device)


def test_a_layer_written_from_scratch_passes_and_works_in_a_network():
    check_layer(Scale(3), batch=3, seed=2)
    net = Network([Scale(2), Dense(2, 2), SoftmaxCrossEntropy(2, 2)])
    theta = np.concatenate([np.array([0.5, -1.5]), N(Dense(2, 2).init(np.random.default_rng(0))),
                            N(SoftmaxCrossEntropy(2, 2).init(np.random.default_rng(1)))])
    v = np.ones(net.n_params)
    Hv = hvp(net, B(theta), B(np.ones((2, 2))), B(np.array([0, 1])), B(v))
    assert Hv.shape == (net.n_params,)


# -- broken layers: one wrong term each -----------------------------------------------------


class TransposedHxz(Dense):
    """Hxz transposed (square here: p = n_out n_in = a_in = batch n_in)."""

    def curvature(self, x, z_in, b_out):
        Hxx, Hxz, Hzz = super().curvature(x, z_in, b_out)
        return Hxx, Hxz.T, Hzz


class CurvatureWithoutCross(Dense):
    """The bilinear cross term C dropped from the explicit Hxz."""

    def _C(self, D):
        return xp.zeros_like(super()._C(D))


class SecondOrderWithoutCross(Dense):
    """The bilinear cross term dropped from second_order (both parts)."""

    def _cross(self, D, T, v):
        z, x = super()._cross(D, T, v)
        return xp.zeros_like(z), xp.zeros_like(x)


class WrongSignHzz(Residual):
    def curvature(self, x, z_in, b_out):
        Hxx, Hxz, Hzz = super().curvature(x, z_in, b_out)
        return Hxx, Hxz, -Hzz


class AsymmetricHxx(Dense):
    def curvature(self, x, z_in, b_out):
        Hxx, Hxz, Hzz = super().curvature(x, z_in, b_out)
        return Hxx + 0.1 * xp.triu(xp.ones_like(Hxx), k=1), Hxz, Hzz


class JvpWithoutTangent(Dense):
    """jvp forgets the ``Jz t_in`` term."""

    def jvp(self, x, z_in, t_in, v):
        return super().jvp(x, z_in, xp.zeros_like(t_in), v)


class VjpWrongScale(Dense):
    """g_x twice too large (a gradient summed twice)."""

    def vjp(self, x, z_in, b_out):
        b_in, g_x = super().vjp(x, z_in, b_out)
        return b_in, 2.0 * g_x


class VjpWithoutSkip(Residual):
    """A residual block whose b_in forgets the skip connection."""

    def vjp(self, x, z_in, b_out):
        b_in, g_x = super().vjp(x, z_in, b_out)
        return b_in - b_out, g_x


class TransposedJz(Residual):
    def jacobians(self, x, z_in):
        Jz, Jx = super().jacobians(x, z_in)
        return Jz.T, Jx


class SecondOrderWrongSignZ(Dense):
    """Only the z part of second_order has the wrong sign."""

    def second_order(self, x, z_in, b_out, t_in, v):
        r_z, r_x = super().second_order(x, z_in, b_out, t_in, v)
        return -r_z, r_x


class SoftmaxHvpWithoutOuterProduct(SoftmaxCrossEntropy):
    """The R-operator product of the softmax Hessian drops its -p p^T term."""

    def _loss_hvp(self, U, dU):
        p, _ = self._probs(U)
        return p * dU / U.shape[0]


class SoftmaxBlocksWithoutOuterProduct(SoftmaxCrossEntropy):
    """The explicit softmax Hessian blocks drop their -p p^T term."""

    def _lambda_blocks(self, U, b_out):
        p, _ = self._probs(U)
        eye = xp.eye(self.n_out, dtype=p.dtype, device=p.device)
        return self._beta(b_out) * (p[:, :, None] * eye) / U.shape[0]


class SquaredErrorWrongReduction(SquaredError):
    """Second-order terms use the batch mean instead of the mean over all elements."""

    def _loss_hvp(self, U, dU):
        return 2.0 / U.shape[0] * dU


class SecondOrderSlightlyOff(Dense):
    """second_order off by 1e-10 relative: within finite-difference accuracy,
    far outside rounding, so only the consistency row can see it."""

    def second_order(self, x, z_in, b_out, t_in, v):
        r_z, r_x = super().second_order(x, z_in, b_out, t_in, v)
        return r_z * (1 + 1e-10), r_x


BROKEN = [
    (TransposedHxz(3, 2, "tanh", bias=False), {"Hxz"}),
    (CurvatureWithoutCross(3, 2, "tanh"), {"Hxz"}),
    (SecondOrderWithoutCross(3, 2, "tanh"), {"second_order: z", "second_order: x"}),
    (WrongSignHzz(3, "tanh"), {"Hzz"}),
    (AsymmetricHxx(2, 2, "gelu"), {"Hxx", "Hxx symmetric"}),
    (JvpWithoutTangent(3, 2, "sigmoid"), {"jvp"}),
    (VjpWrongScale(3, 2, "tanh"), {"vjp: g_x"}),
    (VjpWithoutSkip(3, "tanh"), {"vjp: b_in"}),
    (TransposedJz(3, "softplus"), {"Jz"}),
    (SecondOrderWrongSignZ(3, 2, "silu"), {"second_order: z"}),
    (SoftmaxHvpWithoutOuterProduct(3, 3), {"second_order: z", "second_order: x"}),
    (SoftmaxBlocksWithoutOuterProduct(3, 3), {"Hzz", "Hxz", "Hxx"}),
    (SquaredErrorWrongReduction(3, 2), {"second_order: z", "second_order: x"}),
    (SecondOrderSlightlyOff(3, 2, "tanh"), {"second_order = H d"}),
]


@pytest.mark.parametrize(("layer", "wrong"), BROKEN, ids=[type(b[0]).__name__ for b in BROKEN])
def test_a_broken_term_fails_and_is_named(layer, wrong):
    report = check_layer(layer, batch=2, seed=3, raise_on_failure=False)
    assert _failed(report) == wrong, str(report)
    with pytest.raises(AssertionError) as info:
        check_layer(layer, batch=2, seed=3)
    first_line = str(info.value).splitlines()[0]
    assert first_line.endswith("checks failed: " + ", ".join(r.quantity for r in report.failures))
    for r in report.failures:
        # the failure line gives the error against the tolerance and the worst entry
        line = next(ln for ln in str(info.value).splitlines() if ln.strip().startswith(r.quantity + " ("))
        assert ("tolerance" in line and "worst entry" in line) or "shape" in line


def test_broken_vjp_skips_the_second_order_rows_it_would_poison():
    report = check_layer(VjpWrongScale(3, 2), raise_on_failure=False)
    for q in ("Hzz", "Hxz", "Hxx", "Hzz symmetric", "Hxx symmetric", "second_order: z", "second_order: x"):
        assert report[q].status == "skip" and "vjp" in report[q].detail
    assert report["second_order = H d"].status == "skip"


def test_worst_entry_index_and_values_point_at_the_corruption():
    class OneEntry(Dense):
        def jacobians(self, x, z_in):
            Jz, Jx = super().jacobians(x, z_in)
            Jx = xp.asarray(Jx, copy=True)
            Jx[3, 5] += 1.0
            return Jz, Jx

    row = check_layer(OneEntry(3, 2), batch=2, raise_on_failure=False)["Jx"]
    assert row.status == "FAIL" and row.index == (3, 5)
    assert row.actual - row.expected == pytest.approx(1.0, abs=1e-6)
    assert row.error > 1e6 * row.tolerance


# -- malformed outputs and exceptions are reported on their row ------------------------------


class WrongShapeJx(Dense):
    def jacobians(self, x, z_in):
        Jz, Jx = super().jacobians(x, z_in)
        return Jz, Jx.T


class RaisingCurvature(Dense):
    def curvature(self, x, z_in, b_out):
        raise NotImplementedError("left as an exercise")


class RaisingForward(Dense):
    def forward(self, x, z_in):
        raise ValueError("oops")


def test_wrong_shape_fails_only_its_own_row():
    report = check_layer(WrongShapeJx(3, 2), raise_on_failure=False)
    assert _failed(report) == {"Jx"}
    assert "expected shape (4, 8), got (8, 4)" in report["Jx"].detail
    assert report["Jz"].passed


def test_a_method_that_raises_is_reported_not_propagated():
    report = check_layer(RaisingCurvature(3, 2), raise_on_failure=False)
    assert _failed(report) == {"Hzz", "Hxz", "Hxx"}
    assert "NotImplementedError: left as an exercise" in report["Hxz"].detail
    assert report["second_order: x"].passed  # the vector product is still checked
    report = check_layer(RaisingForward(3, 2), raise_on_failure=False)
    assert _failed(report) == {"forward"}
    assert all(r.status == "skip" for r in report.rows if r.quantity != "forward")


def test_missing_method_is_named():
    class NoCurvature(Scale):
        curvature = None

    report = check_layer(NoCurvature(2), raise_on_failure=False)
    assert _failed(report) == {"Hzz", "Hxz", "Hxx"}
    assert "no method 'curvature'" in report["Hxx"].detail


# -- the report, the tolerance override and the arguments ---------------------------------------


def test_report_table_lists_every_quantity():
    text = str(check_layer(Dense(2, 2)))
    assert "all 16 checks passed" in text
    for q, _ in ROWS:
        assert q in text


def test_rtol_replaces_the_error_model():
    layer = Dense(3, 2, "tanh")
    tight = check_layer(layer, rtol=1e-16, raise_on_failure=False)
    assert not tight.passed  # finite differences are not that accurate
    assert all(r.rel_tolerance == pytest.approx(1e-16) for r in tight.rows if r.tolerance is not None)
    loose = check_layer(SecondOrderSlightlyOff(3, 2), rtol=1e-6)
    assert loose.passed


def test_caller_arrays_are_not_modified():
    x = N(Dense(3, 2).init(np.random.default_rng(0)))
    z_in = np.random.default_rng(1).standard_normal(6)
    x0, z0 = x.copy(), z_in.copy()
    check_layer(Dense(3, 2), x=x, z_in=z_in)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(z_in, z0)
    # the same point given as arrays of the active backend
    xb, zb = B(x), B(z_in)
    check_layer(Dense(3, 2), x=xb, z_in=zb)
    np.testing.assert_array_equal(N(xb), x0)
    np.testing.assert_array_equal(N(zb), z0)


@numpy_only("read-only arrays: the other backends' arrays have no writeable flag")
def test_layers_may_not_write_into_inputs():
    class Scribbler(Dense):
        def forward(self, x, z_in):
            z_in[0] = 0.0
            return super().forward(x, z_in)

    report = check_layer(Scribbler(3, 2), raise_on_failure=False)
    assert _failed(report) == {"forward"} and "read-only" in report["forward"].detail


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(batch=0), ValueError, "batch"),
        (dict(batch=1.5), TypeError, "batch"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(rtol=-1.0), ValueError, "rtol"),
        (dict(x=np.zeros(3)), ValueError, r"x: expected shape \(8,\)"),
        (dict(x=B(np.zeros(3))), ValueError, r"x: expected shape \(8,\)"),
        (dict(z_in=np.zeros((2, 3))), ValueError, "z_in"),
        (dict(y=np.array([0, 1])), ValueError, "only a loss head"),
    ],
)
def test_bad_arguments_are_named(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        check_layer(Dense(3, 2), **kwargs)


@pytest.mark.skipif(ON_NUMPY, reason="only another backend can be handed NumPy arrays by mistake")
def test_a_layer_returning_numpy_arrays_on_another_backend_fails_its_rows():
    class HostForward(Dense):
        def forward(self, x, z_in):
            return N(super().forward(x, z_in))

    report = check_layer(HostForward(3, 2), raise_on_failure=False)
    assert _failed(report) == {"forward"}
    assert "got a NumPy array" in report["forward"].detail


def test_not_a_layer():
    with pytest.raises(TypeError, match="n_in"):
        check_layer(object())


# -- the example on the documentation page ----------------------------------------------------


def test_the_oracle_page_testcode_prints_its_testoutput(capsys):
    """Run each ``{testcode}`` block of docs/oracle.md and compare with its
    ``{testoutput}`` (what the Sphinx doctest builder does, without Sphinx)."""
    from pathlib import Path

    lines = (Path(__file__).resolve().parents[1] / "docs" / "oracle.md").read_text().splitlines()

    def block(start):
        end = lines.index("```", start + 1)
        return "\n".join(lines[start + 1:end]), end

    pairs, i = [], 0
    while i < len(lines):
        if lines[i] == "```{testcode}":
            code, i = block(i)
            j = next(k for k in range(i + 1, len(lines)) if lines[k].startswith("```"))
            assert lines[j] == "```{testoutput}", "every testcode block here has a testoutput"
            expected, i = block(j)
            pairs.append((code, expected))
        i += 1
    assert pairs
    for code, expected in pairs:
        exec(compile(code, "oracle.md", "exec"), {"__name__": "oracle_md"})
        assert capsys.readouterr().out.strip() == expected.strip()
