"""Golden files: the curated set does not drift, files round-trip, a wrong
answer is caught and named, and a malformed file gets one clear error."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hessinv_ref import Curvature, golden, polynomial_hvp, solve
from hessinv_ref.cli import main
from hessinv_ref.testing import diagnose, random_problem
from hessinv_ref.testing.make_golden import CURATED, write_curated

GOLDEN = golden.CURATED_DIR  # the packaged curated set
CURATED_FILES = sorted(p.with_suffix("") for p in GOLDEN.glob("*.json"))


def test_the_curated_set_is_there_and_small():
    assert {p.name for p in CURATED_FILES} == set(CURATED)
    assert sorted(f.name for f in GOLDEN.iterdir()) == sorted(f"{n}.{ext}" for n in CURATED for ext in ("json", "npz"))
    total = sum(f.stat().st_size for f in GOLDEN.iterdir())
    assert total < 300_000, f"{GOLDEN} holds {total} bytes"


def test_the_curated_set_is_package_data_with_an_accessor():
    assert golden.curated() == sorted(CURATED)
    path = golden.curated_path("tiny_logistic")
    assert path == golden.CURATED_DIR / "tiny_logistic" and golden.verify(path).passed
    with pytest.raises(ValueError, match=r"name: expected one of the curated golden files .*got 'tiny'"):
        golden.curated_path("tiny")
    # pyproject.toml's package-data globs take every file of the set into a wheel
    tomllib = pytest.importorskip("tomllib")
    import fnmatch

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    globs = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]["hessinv_ref"]
    package = Path(golden.__file__).parent
    for f in GOLDEN.iterdir():
        rel = f.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel


@pytest.mark.parametrize("path", CURATED_FILES, ids=lambda p: p.name)
def test_curated_file_has_not_drifted(path):
    """Recompute every answer with the current code: all within tolerance."""
    report = golden.verify(path)
    assert report.passed, str(report)
    assert not [r for r in report.rows if r.status == "skip"], str(report)


def test_curated_set_covers_the_advertised_cases():
    def meta(name):
        return golden.load(GOLDEN / name)[4:]

    ans, m = meta("paper_tanh_softmax")
    layers = m["architecture"]["layers"]
    assert all(not s["bias"] for s in layers) and layers[-1]["kind"] == "softmax"
    assert {s.get("activation") for s in layers[:-1]} == {"tanh"}
    assert "H" in ans and "H" not in meta("deep_paper_tanh_softmax")[0]
    assert meta("residual_tanh_softmax")[1]["architecture"]["layers"][0]["kind"] == "residual"
    assert meta("mixed_gelu_mse")[1]["architecture"]["layers"][-1]["kind"] == "mse"
    assert meta("indefinite_sigmoid_mse")[0]["inertia"][0][1] > 0  # negative eigenvalues
    ans, _ = meta("near_singular_softmax_bias")
    assert ans["damping"][0] == 1e-6
    w = np.abs(np.linalg.eigvalsh(ans["H"] + 1e-6 * np.eye(len(ans["H"]))))
    assert w.max() / w.min() > 1e5


def test_make_golden_regenerates_the_stored_inputs_exactly(tmp_path):
    write_curated(tmp_path, ["paper_tanh_softmax", "mixed_gelu_mse"], out=lambda *a: None)
    for name in ("paper_tanh_softmax", "mixed_gelu_mse"):
        new, old = golden.load(tmp_path / name), golden.load(GOLDEN / name)
        for a, b in zip(new[1:4], old[1:4]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(new[4]["v"], old[4]["v"])
        assert new[5]["architecture"] == old[5]["architecture"]


# -- round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".json", ".npz"])
def test_export_load_round_trip(tmp_path, suffix):
    net, params, X, y = random_problem(3, 2, 3, layers="mixed", activation="softplus", head="mse",
                                       n_classes=2, bias=True, seed=4)
    theta = net.flatten(params)
    golden.export(tmp_path / ("rt" + suffix), net, params, X, y, damping=[0.5, 1e-2], seed=3)
    assert (tmp_path / "rt.json").exists() and (tmp_path / "rt.npz").exists()
    net2, theta2, X2, y2, ans, meta = golden.load(tmp_path / ("rt" + suffix))
    assert repr(net2) == repr(net)
    np.testing.assert_array_equal(theta2, theta)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert net2.loss(theta2, X2, y2) == net.loss(theta, X, y)
    curv = Curvature(net, theta, X, y)
    np.testing.assert_array_equal(ans["g"], curv.gradient())
    np.testing.assert_array_equal(ans["H"], curv.hessian())
    assert ans["inverse_v"].shape == (2, net.n_params) and ans["inertia"].dtype == np.int64
    assert meta["damping"] == [0.5, 1e-2] and meta["n_params"] == net.n_params
    arrays = {**ans, "params": theta2, "X": X2, "y": y2}
    assert {name: tuple(entry["shape"]) for name, entry in meta["arrays"].items()} == {
        name: a.shape for name, a in arrays.items()}


def test_dense_hessian_is_omitted_above_the_limit(tmp_path):
    net, params, X, y = random_problem(2, 3, 2, seed=0)
    golden.export(tmp_path / "big", net, params, X, y, dense_limit=net.n_params - 1)
    assert "H" not in golden.load(tmp_path / "big")[4]
    assert golden.verify(tmp_path / "big").passed


def test_load_returns_writable_copies_and_json_is_plain(tmp_path):
    net, params, X, y = random_problem(2, 2, 2, seed=0)
    golden.export(tmp_path / "a", net, params, X, y)
    _, theta, X2, _, _, meta = golden.load(tmp_path / "a")
    theta[0] = 1e9  # not a view of anything shared
    assert golden.load(tmp_path / "a")[1][0] != 1e9
    json.loads((tmp_path / "a.json").read_text())  # valid JSON for any language
    assert meta["format"] == golden.FORMAT and meta["format_version"] == golden.FORMAT_VERSION


# -- verify catches and names a wrong answer ----------------------------------------------


def _rewrite(src, dst, change):
    """Copy the pair ``src`` to ``dst`` with ``change(arrays)`` applied to the npz."""
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    with np.load(src.with_suffix(".npz")) as data:
        arrays = {k: data[k].copy() for k in data.files}
    change(arrays)
    np.savez(dst.with_suffix(".npz"), **arrays)


PERTURBED = [
    ("loss", "loss"),
    ("g", "g"),
    ("Hv", "Hv"),
    ("H", "H"),
    ("inverse_v", "inverse_v[eps=0.1]"),
    ("logdet", "logdet[eps=0.1]"),
]


@pytest.mark.parametrize(("key", "quantity"), PERTURBED, ids=[k for k, _ in PERTURBED])
def test_verify_catches_a_1e_6_relative_perturbation_and_names_it(tmp_path, key, quantity):
    def change(arrays):
        if key in ("inverse_v", "logdet"):
            arrays[key][0] *= 1 + 1e-6  # the first damping's answer only
        else:
            arrays[key] = arrays[key] * (1 + 1e-6)

    _rewrite(GOLDEN / "paper_tanh_softmax", tmp_path / "p", change)
    report = golden.verify(tmp_path / "p")
    assert [r.quantity for r in report.failures] == [quantity], str(report)
    assert "failed: " + quantity in report.summary()


@pytest.mark.parametrize("name", ["near_singular_softmax_bias", "indefinite_sigmoid_mse"])
def test_verify_catches_a_perturbed_inverse_even_when_ill_conditioned(tmp_path, name):
    _rewrite(GOLDEN / name, tmp_path / "p", lambda a: a["inverse_v"].__imul__(1 + 1e-6))
    report = golden.verify(tmp_path / "p")
    assert [r.quantity.split("[")[0] for r in report.failures] == ["inverse_v"], str(report)


@pytest.mark.parametrize("key", ["inertia", "logdet_sign"])
def test_verify_compares_inertia_and_sign_exactly(tmp_path, key):
    def change(arrays):
        if key == "inertia":
            arrays[key][0] += np.array([1, -1, 0])
        else:
            arrays[key][0] *= -1

    _rewrite(GOLDEN / "paper_tanh_softmax", tmp_path / "p", change)
    report = golden.verify(tmp_path / "p")
    assert [r.quantity for r in report.failures] == [f"{key}[eps=0.1]"]


def _dense_answers(arrays, eps):
    net, theta, X, y = golden.load(GOLDEN / "paper_tanh_softmax")[:4]
    H = Curvature(net, theta, X, y).hessian()
    return net, diagnose.Problem(net, theta, X, y, hessian=H), H + eps * np.eye(len(H))


def _set_row0(key, value):
    def change(arrays):
        arrays[key][0] = value(arrays)
    return change


WRONG = [  # (quantity, change to the npz, the likely cause verify must name)
    ("loss", lambda a: a.__setitem__("loss", a["loss"] * 2), "loss summed instead of averaged"),
    ("g", lambda a: a.__setitem__("g", -a["g"]), "sign flip"),
    ("Hv", lambda a: a.__setitem__("Hv", _dense_answers(a, 0)[1].G @ a["v"]), "Gauss-Newton (GGN) instead of the Hessian"),
    ("H", lambda a: a.__setitem__("H", _dense_answers(a, 0)[1].block_diagonal), "block-diagonal approximation"),
    ("H", lambda a: a.__setitem__("H", a["H"][np.ix_(*[diagnose.layouts(_dense_answers(a, 0)[0])["column-major"]] * 2)]),
     "weights flattened column-major"),
    ("inverse_v[eps=0.1]", _set_row0("inverse_v", lambda a: np.linalg.solve(_dense_answers(a, 0.2)[2], a["v"])),
     "damping doubled"),
    ("logdet[eps=0.1]", _set_row0("logdet", lambda a: np.linalg.slogdet(_dense_answers(a, 0.2)[2])[1]), "damping doubled"),
    ("inverse_v[eps=0.1]", _set_row0("inverse_v", lambda a: a["inverse_v"][0].astype(np.float32)), "float32 precision"),
    ("g", lambda a: a["g"].__setitem__(30, a["g"][30] + 1e-3), None),
]


@pytest.mark.parametrize(("quantity", "change", "cause"), WRONG,
                         ids=[f"{q}-{c or 'unknown'}" for q, _, c in WRONG])
def test_verify_names_the_likely_cause_under_a_failed_quantity(tmp_path, quantity, change, cause):
    _rewrite(GOLDEN / "paper_tanh_softmax", tmp_path / "p", change)
    report = golden.verify(tmp_path / "p")
    assert [r.quantity for r in report.failures] == [quantity], str(report)
    assert report[quantity].diagnosis.likely_cause == cause, str(report)
    lines = str(report).splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith(quantity + " "))
    under = [line for line in lines[row + 1:] if line.startswith("    ")]
    likely = next(line for line in under if line.startswith("    likely cause: "))
    assert (cause or "no known cause matched") in likely
    if cause is None:  # the one wrong entry, located: offset 30 = 27 + 3 is layer 4's W[1, 0] (3 x 3)
        assert "    worst entry: layer 4 of 6 (Dense), weight W[1, 0] at offset 30: " in "\n".join(under)
        assert "    by layer: over tolerance in 1 of 6 layers: 4 (" in "\n".join(under)


def test_rtol_overrides_every_continuous_tolerance(tmp_path):
    _rewrite(GOLDEN / "paper_tanh_softmax", tmp_path / "p", lambda a: a["Hv"].__imul__(1 + 1e-6))
    assert golden.verify(tmp_path / "p", rtol=1e-5).passed
    rows = golden.verify(tmp_path / "p", rtol=1e-5).rows
    assert all(r.tolerance == 1e-5 for r in rows if r.tolerance is not None)


# -- another implementation writes the same format -------------------------------------------


def test_answers_from_other_routes_written_with_save_verify(tmp_path):
    net, theta, X, y, ans, _ = golden.load(GOLDEN / "residual_tanh_softmax")
    v, damping = ans["v"], ans["damping"]
    theirs = {
        "v": v, "damping": damping,
        "loss": net.loss(theta, X, y),
        "Hv": polynomial_hvp(net, theta, X, y, v),
        "inverse_v": np.stack([solve(net, theta, X, y, v, damping=d, method="ldu") for d in damping]),
    }
    golden.save(tmp_path / "theirs", net, theta, X, y, theirs,
                library={"name": "someone-else", "version": "0.0.1"})
    report = golden.verify(tmp_path / "theirs")
    assert report.passed, str(report)
    assert [r.quantity for r in report.rows] == ["loss", "Hv", "inverse_v[eps=0.1]", "inverse_v[eps=0.01]"]
    assert "answers by someone-else 0.0.1" in report.summary()


def test_save_refuses_what_the_format_cannot_hold(tmp_path):
    net, params, X, y = random_problem(2, 2, 2, seed=0)
    with pytest.raises(ValueError, match=r"unknown names \['hessian'\]"):
        golden.save(tmp_path / "x", net, params, X, y, {"hessian": np.eye(2)})
    with pytest.raises(ValueError, match="no answers"):
        golden.save(tmp_path / "x", net, params, X, y, {})
    with pytest.raises(ValueError, match="g: expected shape"):
        golden.save(tmp_path / "x", net, params, X, y, {"g": np.zeros(3)})
    with pytest.raises(ValueError, match="needs the array 'damping'"):
        golden.save(tmp_path / "x", net, params, X, y, {"logdet": np.zeros(1)})

    from hessinv_ref import Dense, Network, SoftmaxCrossEntropy

    class MyDense(Dense):
        pass

    custom = Network([MyDense(2, 2), SoftmaxCrossEntropy(2, 3)])
    with pytest.raises(ValueError, match=r"net\.layers\[0\]: a golden file can describe only"):
        golden.save(tmp_path / "x", custom, custom.init(0), X, y, {"loss": 1.0})


# -- malformed files ------------------------------------------------------------------------


def _export(tmp_path, name="a"):
    net, params, X, y = random_problem(3, 2, 2, seed=1)
    golden.export(tmp_path / name, net, params, X, y)
    return tmp_path / name


def _edit_json(path, change):
    meta = json.loads(path.with_suffix(".json").read_text())
    change(meta)
    path.with_suffix(".json").write_text(json.dumps(meta))


def _set(keys, value):
    def change(meta):
        d = meta
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return change


def _drop(keys):
    def change(meta):
        d = meta
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return change


JSON_BREAKS = [
    ("unknown layer kind", _set(["architecture", "layers", 1, "kind"], "conv"),
     r"architecture\.layers\[1\]\.kind: expected one of .*got 'conv'"),
    ("unknown activation", _set(["architecture", "layers", 0, "activation"], "swish"),
     r"architecture\.layers\[0\]\.activation: expected one of .*got 'swish'"),
    ("missing architecture", _drop(["architecture"]), r"missing key 'architecture'"),
    ("missing layer key", _drop(["architecture", "layers", 0, "n_out"]), r"layers\[0\]: missing key 'n_out'"),
    ("width as a string", _set(["architecture", "layers", 0, "n_in"], "2"), r"layers\[0\]\.n_in: expected a positive integer"),
    ("widths that do not chain", _set(["architecture", "layers", 1, "n_in"], 5), r"expects input width 5"),
    ("wrong format", _set(["format"], "something else"), r"format: expected"),
    ("future version", _set(["format_version"], 2), r"format_version: expected 1, got 2"),
    ("float32", _set(["dtype"], "float32"), r"dtype: only 'float64'"),
    ("listed shape differs", _set(["arrays", "g", "shape"], [3]), r"g: shape \(\d+,\) differs from \[3\]"),
    ("unlisted array", _drop(["arrays", "Hv"]), r"\['Hv'\] are not listed"),
    ("batch mismatch", _set(["batch"], 7), r"batch: 7 differs from X's 2 rows"),
    ("damping mismatch", _set(["damping"], [0.5]), r"damping: \[0\.5\] differs"),
]


@pytest.mark.parametrize(("what", "change", "match"), JSON_BREAKS, ids=[b[0] for b in JSON_BREAKS])
def test_malformed_json_gives_one_clear_line(tmp_path, what, change, match):
    path = _export(tmp_path)
    _edit_json(path, change)
    with pytest.raises(ValueError, match=match) as info:
        golden.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


NPZ_BREAKS = [
    ("missing array", lambda a: a.pop("g"), r"missing array\(s\) \['g'\] listed in"),
    ("wrong shape", lambda a: a.__setitem__("Hv", a["Hv"][:-1]), r"Hv: shape"),
    ("labels out of range", lambda a: a.__setitem__("y", a["y"] + 10), r"labels must lie in"),
    ("NaN answer", lambda a: a["g"].__setitem__(0, np.nan), r"g: expected finite values"),
    ("fractional labels", lambda a: a.__setitem__("y", a["y"] + 0.5), r"y: expected integers .*got 0?\.5|y: expected integers .*got 1\.5"),
    ("inertia of the wrong dtype", lambda a: a.__setitem__("inertia", a["inertia"].astype(complex)), r"inertia: expected integers, got dtype complex"),
]


@pytest.mark.parametrize(("what", "change", "match"), NPZ_BREAKS, ids=[b[0] for b in NPZ_BREAKS])
def test_malformed_arrays_give_one_clear_line(tmp_path, what, change, match):
    path = _export(tmp_path)
    _rewrite(path, tmp_path / "b", change)
    with pytest.raises((ValueError, TypeError), match=match) as info:
        golden.load(tmp_path / "b")
    assert "\n" not in str(info.value)


# -- integer-valued fields: integers within INTEGER_RTOL, or a malformed file --------------------

SIGNS = [  # stored sign -> what verify then compares (None: the file is malformed)
    (1.9, None), (1.000001, None), (0.9999999999999999, 1), (-1.0, -1), (0.0, None), (np.nan, None),
]


@pytest.mark.parametrize(("stored", "means"), SIGNS, ids=[repr(s) for s, _ in SIGNS])
def test_a_stored_sign_is_plus_or_minus_one_within_the_tolerance(tmp_path, capsys, stored, means):
    path = _export(tmp_path)
    true_sign = golden.load(path)[4]["logdet_sign"][0]
    _rewrite(path, tmp_path / "b", lambda a: a.__setitem__("logdet_sign", np.array([stored])))
    if means is None:
        with pytest.raises(ValueError, match=r"b\.npz: logdet_sign: expected") as info:
            golden.load(tmp_path / "b")
        assert "\n" not in str(info.value) and repr(float(stored)) in str(info.value)
        assert main(["verify", str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "logdet_sign" in err
        return
    assert golden.load(tmp_path / "b")[4]["logdet_sign"].tolist() == [means]
    row = golden.verify(tmp_path / "b")["logdet_sign[eps=0.1]"]
    # a sign of the wrong value is a wrong answer (FAIL), not a malformed file
    assert row.status == ("pass" if means == true_sign else "FAIL"), row


def test_the_integer_tolerance_is_a_few_ulps_relative():
    k = 5000.0
    assert golden.INTEGER_RTOL == 8 * np.finfo(float).eps
    ok = np.array([k * (1 + 4 * np.finfo(float).eps), 1 - np.finfo(float).eps / 2, -3.0])
    assert golden._integer_array("a", ok, "f").tolist() == [5000, 1, -3]
    for bad in (k * (1 + 16 * np.finfo(float).eps), 1 + 1e-12, 0.5, np.inf):
        with pytest.raises(ValueError, match=r"f: a: expected integers"):
            golden._integer_array("a", np.array([bad]), "f")


INERTIAS = [
    ("3.0 is 3", lambda r: r.astype(float), None),
    ("3.2 is not an integer", lambda r: r.astype(float) + [0.2, 0, -0.2], r"inertia: expected integers .*got \d+\.2 at index \[0, 0\]"),
    ("a negative count", lambda r: r + [1, 0, -1], r"inertia: expected counts >= 0, got -1 at index \[0, 2\]"),
    ("counts that miss P", lambda r: r + [1, 0, 0], r"inertia: row 0 .* counts \d+ eigenvalues, expected P = \d+"),
]


@pytest.mark.parametrize(("what", "change", "match"), INERTIAS, ids=[w for w, _, _ in INERTIAS])
def test_inertia_is_counts_of_integers_that_add_up_to_p(tmp_path, what, change, match):
    path = _export(tmp_path)
    _rewrite(path, tmp_path / "b", lambda a: a.__setitem__("inertia", change(a["inertia"])))
    if match is None:
        ans = golden.load(tmp_path / "b")[4]
        assert ans["inertia"].dtype == np.int64
        assert golden.verify(tmp_path / "b")["inertia[eps=0.1]"].passed
        return
    with pytest.raises(ValueError, match=match) as info:
        golden.load(tmp_path / "b")
    assert "\n" not in str(info.value)


def test_labels_and_json_counts_are_checked_the_same_way(tmp_path):
    path = _export(tmp_path)
    _rewrite(path, tmp_path / "f", lambda a: a.__setitem__("y", a["y"].astype(float)))
    y = golden.load(tmp_path / "f")[3]
    assert y.dtype == np.int64 and golden.verify(tmp_path / "f").passed  # 1.0 is the label 1
    _rewrite(path, tmp_path / "g", lambda a: a.__setitem__("y", a["y"] + 1e-6))
    with pytest.raises(ValueError, match=r"g\.npz: y: expected integers .*got (1e-06|\d\.000001) at index 0"):
        golden.load(tmp_path / "g")
    _edit_json(path, _set(["architecture", "layers", 0, "n_out"], 2.0))
    _edit_json(path, _set(["batch"], 2.0))
    assert golden.verify(path).passed
    for keys, value, match in (
        (["architecture", "layers", 0, "n_out"], 2.2, r"layers\[0\]\.n_out: expected a positive integer, got 2\.2"),
        (["batch"], 2.000001, r"batch: expected an integer, got 2\.000001"),
        (["param_sizes"], [6.5, 6, 6], r"param_sizes: expected an integer, got 6\.5"),
    ):
        _edit_json(path, _set(keys, value))
        with pytest.raises(ValueError, match=match) as info:
            golden.load(path)
        assert "\n" not in str(info.value)
        _edit_json(path, _set(keys, 2 if keys[-1] != "param_sizes" else [6, 6, 9]))
    _edit_json(path, _set(["param_sizes"], [6, 6, 7]))
    with pytest.raises(ValueError, match=r"param_sizes: \[6, 6, 7\] differs from the architecture's \[6, 6, 9\]"):
        golden.load(path)


def test_save_refuses_a_fractional_inertia_instead_of_truncating_it(tmp_path):
    net, params, X, y = random_problem(2, 2, 2, seed=0)
    with pytest.raises(ValueError, match=r"answers: inertia: expected integers .*got 3\.2"):
        golden.save(tmp_path / "x", net, params, X, y,
                    {"damping": [0.1], "inertia": [[3.2, 3, 0]]})
    assert not (tmp_path / "x.json").exists()


def test_truncated_corrupt_and_missing_files(tmp_path):
    path = _export(tmp_path)
    data = path.with_suffix(".npz").read_bytes()
    path.with_suffix(".npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"a\.npz: not an \.npz archive .*truncated"):
        golden.load(path)
    path.with_suffix(".npz").write_bytes(data[:-30] + b"\0" * 30)  # damaged zip directory
    with pytest.raises(ValueError, match=r"a\.npz: not"):
        golden.load(path)
    path.with_suffix(".json").write_text('{"format": ')
    with pytest.raises(ValueError, match=r"a\.json: not valid JSON \(Expecting value at line 1 column 12\)"):
        golden.load(path)
    path.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        golden.load(path)
    with pytest.raises(OSError, match=r"nothere\.json: no such file"):
        golden.load(tmp_path / "nothere")
    other = _export(tmp_path, "b")
    other.with_suffix(".npz").unlink()
    with pytest.raises(OSError, match=r"b\.npz: no such file"):
        golden.load(other)


def test_a_hand_written_file_may_omit_the_arrays_listing_but_not_invent_arrays(tmp_path):
    path = _export(tmp_path)
    _edit_json(path, _drop(["arrays"]))
    assert golden.verify(path).passed
    _rewrite(path, tmp_path / "b", lambda a: a.__setitem__("hessian_diag", np.ones(3)))
    with pytest.raises(ValueError, match=r"unknown array\(s\) \['hessian_diag'\]"):
        golden.load(tmp_path / "b")


def test_export_refuses_a_singular_damping(tmp_path):
    net, params, X, y = random_problem(1, 3, 2, bias=True, seed=0)  # softmax with bias: null space
    with pytest.raises(ValueError, match=r"H \+ 0 I is numerically singular"):
        golden.export(tmp_path / "s", net, params, X, y, damping=[0.1, 0.0])
    assert not (tmp_path / "s.json").exists()
