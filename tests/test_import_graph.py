"""The import graph of ``hessinv_ref``: no cycles, and imports point one way;
and the core reaches its array backend by one idiom.

How it is measured
------------------
Every module under ``hessinv_ref/`` is parsed with :mod:`ast` (nothing is
imported or run).  Every ``import`` and ``from ... import`` statement in it
counts, wherever it stands: at module level, inside a function, under an
``if``.  Relative imports are resolved against the module's package, and
``from pkg import name`` is an import of the module ``pkg.name`` when that
is a module, else of ``pkg``.  An edge ``A -> B`` means that the source of
``A`` names ``B``.  The implicit import of parent packages (importing
``a.b.c`` first runs ``a/__init__`` and ``a/b/__init__``) is not an edge:
with it, every package's ``__init__`` that imports its own submodules would
sit in a cycle with them.

:data:`LAYERS` declares the layering, lowest first: a module may import
modules of its own layer and of the layers below it, and within a layer the
graph must have no cycle.  :data:`KNOWN_VIOLATIONS` lists the edges that
break this today, each to be removed by the architecture refactor; the tests
fail on any violation not listed, and on any listed edge that no longer
exists, so the list only shrinks.  ``python tests/test_import_graph.py``
prints the whole graph by layer.

The backend idiom (:mod:`hessinv_ref.backend`): the core, the layers
:data:`CORE_LAYERS` of :data:`LAYERS`, never imports the active-namespace
proxy ``xp`` and calls ``get_backend()`` only in the door functions of
:data:`BACKEND_DOORS`, where inputs enter; everywhere else it computes in the
namespace of its data (``point.xp``, ``namespace_of(a)``).  The same parse
finds both: an ``ImportFrom`` of ``xp`` from the backend package (or an
``.xp`` attribute of a name bound to that package), and every call of a
function named ``get_backend``, with the qualified name of the function it
stands in.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGE = "hessinv_ref"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# The layering, lowest first.  A pattern "x" is the module x; "x.*" is the
# package x and everything in it.  A module that matches no pattern fails
# test_every_module_has_a_layer: give it a layer here.
LAYERS = [
    ("backend", ["hessinv_ref.backend.*"]),
    # finite: the non-finite check every level below the solvers calls
    ("finite", ["hessinv_ref.finite"]),
    ("activations", ["hessinv_ref.activations"]),
    ("layers", ["hessinv_ref.layers.*"]),
    # data: the block layout and one point's passes and blocks (they need no
    # import of the network: a point is handed its network)
    ("data", ["hessinv_ref.layout", "hessinv_ref.point"]),
    ("network", ["hessinv_ref.network"]),
    ("algorithms", ["hessinv_ref.rop", "hessinv_ref.polynomial", "hessinv_ref.dense",
                    "hessinv_ref.factorization", "hessinv_ref.solvers.*"]),
    # front door: the network-level functions and Curvature, a point with the
    # algorithms as methods
    ("front door", ["hessinv_ref.curvature", "hessinv_ref.inverse", "hessinv_ref.operators", "hessinv_ref"]),
    # _argtypes: argparse value types, shared by golden's export/verify parsers and the tools
    ("consumers", ["hessinv_ref.testing.*", "hessinv_ref.golden", "hessinv_ref._argtypes"]),
    # tools/ holds the tools; the top-level bench, demo, gpu_check, grade and cli
    # are their documented names (each the same module object as tools.X)
    ("tools", ["hessinv_ref.tools.*", "hessinv_ref.grading.*", "hessinv_ref.__main__",
               "hessinv_ref.bench", "hessinv_ref.demo", "hessinv_ref.gpu_check", "hessinv_ref.grade",
               "hessinv_ref.cli"]),
]

# Known violations: edges (importer, imported) that run up the layering or
# close a cycle within a layer.  The architecture refactor removed the last
# of them; the list stays, empty, so that the test says so if one is ever
# allowed again (and test_known_violations_still_exist keeps it honest).
KNOWN_VIOLATIONS = set()


# The core: the layers whose modules take their backend from their data.
CORE_LAYERS = ("finite", "activations", "layers", "data", "network", "algorithms", "front door")

BACKEND = "hessinv_ref.backend"

# The doors: the functions of the core allowed to call get_backend(), each
# because inputs enter there and must belong to the active backend (or, with
# no data at all, are made for it).  (module, function's qualified name): why.
BACKEND_DOORS = {
    ("hessinv_ref.network", "Network.init"):
        "draws new parameters on the host and moves them to the active backend",
    ("hessinv_ref.network", "Network.layer_vectors"):
        "validates the params a caller passes in (and refuses another library's arrays)",
    ("hessinv_ref.network", "Network.check_inputs"):
        "validates the X and y a caller passes in",
    ("hessinv_ref.network", "Network.check_vector"):
        "validates a vector passed to a network-level function (solve's g) when no backend= is given; "
        "a point's methods pass the point's backend instead",
    ("hessinv_ref.point", "Point.__init__"):
        "a point reads the active backend once and keeps it (point.backend, point.xp)",
    ("hessinv_ref.layers._checks", "_as_array"):
        "pack's weight and bias and a head's targets (the params and y the network validates), "
        "and a Python list or number given to a layer method: new input, no array to take a namespace from",
    ("hessinv_ref.solvers.lifted", "Pivot.__init__"):
        "a permutation made from sizes alone when no backend= is given: there is no data to take one from",
    ("hessinv_ref.solvers.registry", "default_method"):
        "answers 'which route does method=None mean on the active backend' when no backend= is given; "
        "factorize_curvature passes the curvature's",
}

# Imports of the proxy xp into the core that are re-exports, not uses: module: why.
XP_REEXPORTS = {
    "hessinv_ref.layers": "importable from hessinv_ref.layers since it was one module "
                          "(test_the_split_packages_keep_their_names); no layer computes with it",
}


# -- building the graph ---------------------------------------------------------------


def _modules():
    """``{module name: (path, is_package)}`` for every ``.py`` file of the package."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


def _imported(node, name, is_package, modules):
    """The modules of the package that the import statement ``node`` of the
    module ``name`` names."""
    if isinstance(node, ast.Import):
        targets = []
        for alias in node.names:
            dotted = alias.name
            while dotted and dotted not in modules:  # "import a.b.c" -> the longest module prefix
                dotted = dotted.rpartition(".")[0]
            targets.append(dotted)
        return [t for t in targets if t]
    if node.level:  # relative: level 1 is the module's own package
        package = (name if is_package else name.rpartition(".")[0]).split(".")
        base = package[: len(package) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    targets = []
    for alias in node.names:
        if f"{source}.{alias.name}" in modules:  # "from pkg import submodule"
            targets.append(f"{source}.{alias.name}")
        elif source in modules:
            targets.append(source)
    return targets


def _from_source(node, name, is_package):
    """The module an ``ImportFrom`` statement of module ``name`` imports from."""
    if not node.level:
        return node.module or ""
    package = (name if is_package else name.rpartition(".")[0]).split(".")
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph():
    """``{(importer, imported): [line numbers]}`` over the package's modules."""
    modules = _modules()
    edges = {}
    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(node, name, is_package, modules):
                    if target == name:
                        continue
                    lines = edges.setdefault((name, target), [])
                    if node.lineno not in lines:
                        lines.append(node.lineno)
    return modules, edges


def layer_of(module):
    """The index in :data:`LAYERS` of ``module``'s layer, or ``None``."""
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if pattern.endswith(".*"):
                if module == pattern[:-2] or module.startswith(pattern[:-1]):
                    return index
            elif module == pattern:
                return index
    return None


def cycles(nodes, edges):
    """One cycle (a list of modules, first repeated last) for every strongly
    connected component of more than one module (Tarjan's algorithm)."""
    succ = {n: sorted(b for (a, b) in edges if a == n) for n in nodes}
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(set(component))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return [_a_cycle_in(component, succ) for component in components]


def _a_cycle_in(component, succ):
    """A closed path through the strongly connected ``component``: walk
    edges inside it from its first module until a module repeats."""
    path = [min(component)]
    while True:
        nxt = next(w for w in succ[path[-1]] if w in component)
        if nxt in path:
            return path[path.index(nxt):] + [nxt]
        path.append(nxt)


def _where(edges, edge):
    importer, imported = edge
    lines = ", ".join(str(n) for n in edges[edge])
    return f"{importer} (line {lines}) imports {imported}"


def _layer_name(module):
    i = layer_of(module)
    return LAYERS[i][0] if i is not None else "?"


def backend_idiom_uses(tree, name, is_package):
    """``[(kind, function, line)]`` in the parsed module ``name``: ``kind``
    is ``"xp"`` for an import of the proxy ``xp`` from the backend package
    (or an ``.xp`` attribute of a name bound to that package) and
    ``"get_backend"`` for a call of ``get_backend``; ``function`` is the
    qualified name of the enclosing function or class (``"<module>"`` at
    module level)."""
    found, backend_names = [], set()

    def visit(node, scope):
        if isinstance(node, ast.ImportFrom):
            source = _from_source(node, name, is_package)
            for alias in node.names:
                if source == BACKEND and alias.name == "xp":
                    found.append(("xp", ".".join(scope) or "<module>", node.lineno))
                if f"{source}.{alias.name}" == BACKEND:  # from hessinv_ref import backend
                    backend_names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == BACKEND and alias.asname:
                    backend_names.add(alias.asname)
        elif isinstance(node, ast.Attribute) and node.attr == "xp":
            if isinstance(node.value, ast.Name) and node.value.id in backend_names:
                found.append(("xp", ".".join(scope) or "<module>", node.lineno))
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called == "get_backend":
                found.append(("get_backend", ".".join(scope) or "<module>", node.lineno))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope = scope + [node.name]
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, [])
    return found


def core_backend_uses():
    """:func:`backend_idiom_uses` of every module of :data:`CORE_LAYERS`, as
    ``[(module, kind, function, line)]``."""
    core = {i for i, (layer, _) in enumerate(LAYERS) if layer in CORE_LAYERS}
    out = []
    for module, (path, is_package) in _modules().items():
        if layer_of(module) in core:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            out.extend((module,) + use for use in backend_idiom_uses(tree, module, is_package))
    return out


# -- the tests -------------------------------------------------------------------------


def test_every_module_has_a_layer():
    modules, _ = import_graph()
    unplaced = sorted(m for m in modules if layer_of(m) is None)
    assert not unplaced, (
        "modules without a layer; add each to LAYERS in tests/test_import_graph.py:\n  "
        + "\n  ".join(unplaced)
    )


def test_no_new_upward_imports():
    _, edges = import_graph()
    upward = sorted(
        e for e in edges
        if None not in (layer_of(e[0]), layer_of(e[1])) and layer_of(e[1]) > layer_of(e[0])
    )
    new = [e for e in upward if e not in KNOWN_VIOLATIONS]
    assert not new, "imports that run up the layering (lower layer -> higher):\n  " + "\n  ".join(
        f"{_where(edges, e)}   [{_layer_name(e[0])} -> {_layer_name(e[1])}]" for e in new
    )


def test_no_cycles():
    modules, edges = import_graph()
    kept = {e: lines for e, lines in edges.items() if e not in KNOWN_VIOLATIONS}
    found = cycles(modules, kept)
    assert not found, "import cycles (each: a closed path of imports):\n  " + "\n  ".join(
        " -> ".join(cycle) + "\n    " + "\n    ".join(_where(kept, e) for e in zip(cycle, cycle[1:]))
        for cycle in found
    )


def test_known_violations_still_exist():
    """An entry whose import has been removed must leave the list, so that
    the import cannot come back unnoticed."""
    _, edges = import_graph()
    gone = sorted(e for e in KNOWN_VIOLATIONS if e not in edges)
    assert not gone, "KNOWN_VIOLATIONS entries whose import is gone; delete them:\n  " + "\n  ".join(
        f"{a} -> {b}" for a, b in gone
    )


def test_the_checks_see_a_cycle_and_an_upward_import():
    """The detectors on a made-up graph: a cycle is reported as a closed
    path, and the layering ranks a consumer above the backend."""
    nodes = {"a", "b", "c", "d"}
    edges = {("a", "b"): [1], ("b", "c"): [2], ("c", "a"): [3], ("c", "d"): [4]}
    (cycle,) = cycles(nodes, edges)
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert all(edge in edges for edge in zip(cycle, cycle[1:]))
    assert cycles(nodes, {("a", "b"): [1], ("b", "c"): [2]}) == []
    assert layer_of("hessinv_ref.testing.check") > layer_of("hessinv_ref.backend.base")
    assert layer_of("hessinv_ref") == layer_of("hessinv_ref.inverse")
    assert layer_of("hessinv_ref.elsewhere") is None


def test_the_split_packages_keep_their_names():
    """``hessinv_ref.layers`` and ``hessinv_ref.backend`` became packages;
    every name the single modules had is still importable from them, and
    the machine epsilon from where it was."""
    layers = importlib.import_module("hessinv_ref.layers")
    for name in ("Layer", "AffineLayer", "Dense", "Residual", "LossHead", "SoftmaxCrossEntropy",
                 "SquaredError", "LayerProtocol", "_check_positive_int", "_is_bool", "_as_array",
                 "_eye", "_stack", "_block_diag", "_stacked_curvature", "_others",
                 "get_activation", "get_backend", "xp"):
        assert hasattr(layers, name), f"hessinv_ref.layers.{name}"
    backend = importlib.import_module("hessinv_ref.backend")
    for name in ("BACKENDS", "ENV_VAR", "FLOAT_DTYPES", "Backend", "BackendNotSupportedError", "DenseLU",
                 "check_dtype", "from_numpy", "get_backend", "set_backend", "to_numpy", "use_backend", "xp",
                 "_erfc_array_api", "_exact_rcond", "_lapack", "_NumpyLU", "_CupyLU", "_NumpyBackend",
                 "_CupyBackend", "_StrictBackend", "_make", "_initial", "_is_foreign_array", "_describe"):
        assert hasattr(backend, name), f"hessinv_ref.backend.{name}"
    from hessinv_ref.backend.constants import EPS
    from hessinv_ref.factorization import EPS as factorization_eps
    from hessinv_ref.testing.finite_differences import EPS as fd_eps

    assert EPS == factorization_eps == fd_eps == 2.0**-52


def test_the_built_in_layers_follow_the_protocol():
    from hessinv_ref.layers import Dense, Layer, LayerProtocol, Residual, SoftmaxCrossEntropy, SquaredError

    for layer in (Dense(2, 3), Residual(3), SoftmaxCrossEntropy(3, 2), SquaredError(3, 2)):
        assert isinstance(layer, LayerProtocol) and isinstance(layer, Layer)

    class NoCurvature(Layer):  # five of the six methods
        n_in = n_out = n_params = 1
        forward = vjp = jvp = second_order = jacobians = staticmethod(lambda *a: None)

    assert not isinstance(NoCurvature(), LayerProtocol)
    assert not isinstance(object(), LayerProtocol)


def test_the_core_takes_its_backend_from_its_data():
    """No core module imports the proxy ``xp`` (but the listed re-exports),
    and only the door functions call ``get_backend()``."""
    uses = core_backend_uses()
    xp_imports = [u for u in uses if u[1] == "xp" and u[0] not in XP_REEXPORTS]
    assert not xp_imports, (
        "the core imports or uses the active-namespace proxy xp; compute with the data's namespace "
        "(point.xp, curvature.xp, backend.namespace_of(a).xp) instead:\n  "
        + "\n  ".join(f"{m} ({f}, line {n})" for m, _, f, n in xp_imports)
    )
    outside = [u for u in uses if u[1] == "get_backend" and (u[0], u[2]) not in BACKEND_DOORS]
    assert not outside, (
        "get_backend() called outside the doors of BACKEND_DOORS; after the door, use the backend of the "
        "data (curvature.backend, backend.namespace_of(a)), or add the function to BACKEND_DOORS saying "
        "why inputs enter there:\n  " + "\n  ".join(f"{m}.{f} (line {n})" for m, _, f, n in outside)
    )


def test_every_listed_door_and_reexport_still_exists():
    """An entry whose call or import has gone must leave its list, so that
    the lists only shrink."""
    uses = core_backend_uses()
    calls = {(m, f) for m, kind, f, _ in uses if kind == "get_backend"}
    assert not set(BACKEND_DOORS) - calls, f"BACKEND_DOORS entries without a get_backend() call: {sorted(set(BACKEND_DOORS) - calls)}"
    imports = {m for m, kind, _, _ in uses if kind == "xp"}
    assert not set(XP_REEXPORTS) - imports, f"XP_REEXPORTS entries without the import: {sorted(set(XP_REEXPORTS) - imports)}"


def test_the_idiom_check_sees_the_proxy_and_the_calls():
    """The detector on made-up modules: each way of reaching the active
    backend is found, with the function it stands in; the data's own
    namespace is not."""
    source = (
        "from .backend import get_backend, xp\n"
        "from . import backend as be_mod\n"
        "import hessinv_ref.backend as hb\n"
        "class Route:\n"
        "    def solve(self, g):\n"
        "        xp = self.curvature.xp\n"
        "        return get_backend().lu(g), be_mod.xp, hb.get_backend()\n"
        "def helper(a):\n"
        "    return namespace_of(a).xp.sum(a), hb.xp\n"
    )
    found = backend_idiom_uses(ast.parse(source), "hessinv_ref.example", False)
    assert found == [
        ("xp", "<module>", 1),
        ("get_backend", "Route.solve", 7),
        ("xp", "Route.solve", 7),
        ("get_backend", "Route.solve", 7),
        ("xp", "helper", 9),
    ]
    assert backend_idiom_uses(ast.parse("from ..backend import xp\n"), "hessinv_ref.layers.affine", False) == [
        ("xp", "<module>", 1)
    ]
    assert backend_idiom_uses(ast.parse("xp = point.xp\n"), "hessinv_ref.rop", False) == []


if __name__ == "__main__":  # python tests/test_import_graph.py: the graph, by layer
    modules, edges = import_graph()
    for module in sorted(modules, key=lambda m: (layer_of(m) if layer_of(m) is not None else -1, m)):
        out = sorted(b for (a, b) in edges if a == module)
        print(f"[{_layer_name(module)}] {module} -> {', '.join(out) or '-'}")
    print("\nknown violations:")
    for edge in sorted(KNOWN_VIOLATIONS):
        print("  " + (_where(edges, edge) if edge in edges else f"{edge[0]} -> {edge[1]} (gone)"))
