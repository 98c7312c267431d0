"""The package's layers: no module imports one that sits above it (docs/DESIGN.md's layering), lazy
imports inside functions included. A new upward arrow fails here with the file and line."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "recbole_bbq"

# bottom to top; a module may import its own layer and the ones below
LAYERS = [
    {"compat", "fileio", "allocator", "errors"},  # helpers with no plugin imports
    {"modules"},                     # plain-PyTorch building blocks
    {"data"},                        # feature files, alignment
    {"trainer"},                     # RecBole trainers + the recipe
    {"model"},                       # RecBole models
    {"config", "utils"},             # configuration and model/trainer lookup
    {"quick_start", "recommend"},    # library entry points
    {"comparison"},                  # the side-by-side driver
    {"cli"},                         # the command line
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def _unit(module: str) -> str:
    """``recbole_bbq.model.tiger`` -> ``model``; ``recbole_bbq`` itself -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path):
    """``(line, name)`` for each of the package's own imports in ``path``, lazy ones and
    ``importlib.import_module("recbole_bbq....")`` included; ``from a import b`` gives ``a.b``
    (a module or a name inside ``a``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("recbole_bbq"):
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("recbole_bbq."):
                    yield node.lineno, alias.name
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)
              and str(node.args[0].value).startswith("recbole_bbq.")):
            yield node.lineno, node.args[0].value


def test_every_unit_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))
             and p.name != "__init__.py" and p.name != "properties"}
    assert units <= set(LAYER_OF), f"give these a layer in this test: {units - set(LAYER_OF)}"


def test_no_module_imports_one_above_it():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        unit = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if unit == "__init__":
            continue
        for line, name in _imports(path):
            target = _unit(name)
            if target in LAYER_OF and LAYER_OF[target] > LAYER_OF[unit]:
                upward.append(f"{rel}:{line} ({unit}) imports {target}")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def _module_graph():
    """``{module: {(line, module it imports), ...}}`` over the package's own modules (from
    :func:`_imports`; ``a.b`` that is a name inside module ``a`` counts as ``a``)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        edges = {(line, target if target in modules else target.rpartition(".")[0])
                 for line, target in _imports(path)}
        graph[name] = {(line, target) for line, target in edges if target in modules and target != name}
    return graph


def test_no_import_cycles_between_modules():
    """No module imports, directly or through others, a module that imports it (lazy imports
    count): such a cycle (``config`` -> ``utils`` -> ``config`` once) works only while one side
    stays lazy."""
    graph = _module_graph()
    cycles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for line, target in sorted(graph[module]):
            if state.get(target) == "open":
                chain = [m for m, _ in path][[m for m, _ in path].index(target):]
                lines = [ln for _, ln in path][len(path) - len(chain) + 1:] + [line]
                cycles.append("; ".join(f"{m} imports {n} at line {ln}"
                                        for m, n, ln in zip(chain, chain[1:] + [target], lines)))
            elif target not in state:
                visit(target, path + [(target, line)])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [(module, 0)])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_console_scripts_resolve():
    """Every ``console_scripts`` entry of setup.py names a callable that exists."""
    import importlib
    import re

    setup_text = (ROOT / "setup.py").read_text(encoding="utf-8")
    entries = re.findall(r'"([\w-]+)=([\w.]+):(\w+)"', setup_text)
    assert entries, "setup.py lists no console_scripts"
    for script, module, attr in entries:
        target = getattr(importlib.import_module(module), attr, None)
        assert callable(target), f"console script {script}: {module}:{attr} does not exist"


def test_the_console_script_exits_zero_after_a_successful_run(monkeypatch):
    """A console script's return value is its exit status: ``main`` returns the run's result
    (a dict), which ``sys.exit`` would print to stderr with status 1."""
    import re

    from recbole_bbq import cli

    setup_text = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert re.search(r'"recbole-bbq=recbole_bbq\.cli:console_main"', setup_text)
    monkeypatch.setattr(cli, "_main", lambda argv=None: {"test_result": {"recall@10": 0.1}})
    assert cli.console_main() == 0
