"""The shape of the house: the package's import graph has no circle, and no module of dae/
imports a top-level script or settings.py (every import counts, those inside functions too)."""
import ast

from conftest import ROOT

SCRIPTS = {p.stem for p in ROOT.glob("*.py")}          # settings.py, the stage scripts, pipeline.py, ...


def imports(path):
    """The modules a file imports anywhere in it (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            if node.module == "dae":                   # from dae import layout, store
                found |= {f"dae.{alias.name}" for alias in node.names}
    return found


def package_graph():
    """{dae module: the dae modules it imports} and {dae module: the scripts it imports}."""
    modules = {f"dae.{p.stem}": p for p in (ROOT / "dae").glob("*.py") if p.stem != "__init__"}
    graph, scripts = {}, {}
    for name, path in modules.items():
        found = imports(path)
        graph[name] = {m for m in found if m in modules and m != name}
        scripts[name] = {m.split(".")[0] for m in found if m.split(".")[0] in SCRIPTS}
    return graph, scripts


def circles(graph):
    """Every strongly connected set of more than one module (Tarjan), as sorted lists."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_circles_are_found_when_there_are_some():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_circle():
    graph, _ = package_graph()
    assert len(graph) > 20                               # the package was read
    assert circles(graph) == []


def test_no_module_of_the_package_imports_a_script_or_settings():
    _, scripts = package_graph()
    assert "settings" in SCRIPTS and "train_model" in SCRIPTS
    assert {m: s for m, s in scripts.items() if s} == {}
