"""The layer picture of docs/architecture.md stays true: no module imports from a higher layer, nobody imports
cli, no import cycles; the modules that read runs never reach the training package, and the command line leaves
the torchrun process group to the library."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "genlab"

# module prefix -> layer; the longest matching prefix wins
LAYERS = {
    "genlab.errors": 0, "genlab.version": 0, "genlab.config": 0, "genlab.sizes": 0, "genlab.files": 0,
    "genlab.plugins": 0, "genlab.options": 0, "genlab.world": 0, "genlab.data": 0, "genlab.nn": 0,
    "genlab.losses": 0, "genlab.images": 0, "genlab.convarith": 0, "genlab.threads": 0, "genlab.progress": 0,
    "genlab.heap": 0,
    "genlab.models": 1,
    "genlab.runs": 2, "genlab.training": 2, "genlab.latent": 2, "genlab.metrics": 2, "genlab.evaluation": 2,
    "genlab.invert": 2, "genlab.disentanglement": 2, "genlab.editing": 2,
    "genlab.figures": 3, "genlab.plots": 3, "genlab.report": 3, "genlab.serve": 3, "genlab.tables": 3,
    "genlab.workflow": 3, "genlab.vector_arithmetic": 3,
    "genlab.cli": 4, "genlab.__main__": 4,
}


CLI_SIDE = ("genlab.__main__", "genlab.cli")  # only the command line itself may import the command line


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    matches = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def genlab_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every import of a genlab module; `from genlab import x` counts as genlab.x."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "genlab"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "genlab":
                found += [(node.lineno, f"genlab.{a.name}") for a in node.names]
            elif node.module.startswith("genlab."):
                found.append((node.lineno, node.module))
    return found


def package_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_module_has_a_layer() -> None:
    missing = [module_name(p) for p in package_modules() if layer_of(module_name(p)) is None]
    assert not missing, f"add these modules to LAYERS (and docs/architecture.md): {missing}"


def test_no_upward_imports() -> None:
    violations = []
    for path in package_modules():
        own = module_name(path)
        for line, imported in genlab_imports(ast.parse(path.read_text())):
            target = layer_of(imported)
            if target is None:
                violations.append(f"{own}:{line} imports {imported}, which has no layer")
            elif target > layer_of(own) or (imported.startswith("genlab.cli") and not own.startswith(CLI_SIDE)):
                violations.append(f"{own} (L{layer_of(own)}):{line} imports {imported} (L{target})")
    assert not violations, "upward imports:\n" + "\n".join(violations)


def test_the_checker_sees_violations() -> None:
    tree = ast.parse("from genlab.cli import main\nimport genlab.report\nfrom genlab import losses\n")
    assert genlab_imports(tree) == [(1, "genlab.cli"), (2, "genlab.report"), (3, "genlab.losses")]
    assert layer_of("genlab.models.vae") == 1 and layer_of("genlab.data.idx") == 0


def imported_modules(tree: ast.AST, modules: set[str]) -> set[str]:
    """The genlab modules a file imports: `from genlab.data import idx` imports genlab.data.idx (a module),
    `from genlab.data import Dataset` imports the package genlab.data itself."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in modules:
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the genlab modules it imports."""
    paths = {module_name(p): p for p in package_modules()} | {"genlab": PACKAGE / "__init__.py"}
    return {name: imported_modules(ast.parse(path.read_text()), set(paths)) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles_even_inside_a_layer() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_sees_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None


def test_the_training_steps_know_no_concrete_model() -> None:
    steps = PACKAGE / "training" / "steps.py"
    models = [m for _, m in genlab_imports(ast.parse(steps.read_text())) if m.startswith("genlab.models.")]
    assert models and all(m == "genlab.models.contract" for m in models), f"steps.py imports {models}"


# modules that use finished runs (or make pictures, pages and numbers of them): not even indirectly may they
# depend on the training package, which writes runs
READERS = ("genlab.runs", "genlab.evaluation", "genlab.figures", "genlab.plots", "genlab.report", "genlab.serve",
           "genlab.invert", "genlab.latent", "genlab.metrics", "genlab.disentanglement", "genlab.tables",
           "genlab.editing", "genlab.vector_arithmetic")
TRAINING = "genlab.training"
# the torchrun process group: the library joins it and shares decisions over it, the command line never does
PROCESS_GROUP = ("genlab.world", "torch.distributed")


def under(module: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module `start` imports, directly or not: module -> the module that imports it on one such path."""
    seen: dict[str, str] = {}
    stack = [start]
    while stack:
        node = stack.pop()
        for target in graph.get(node, ()):
            if target not in seen and target != start:
                seen[target] = node
                stack.append(target)
    return seen


def training_reached_by_readers(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for reader in sorted(m for m in graph if under(m, READERS)):
        via = reachable(graph, reader)
        found += [f"{reader} reaches {m} (imported by {via[m]})" for m in sorted(via) if under(m, TRAINING)]
    return found


def test_readers_never_reach_the_training_package() -> None:
    found = training_reached_by_readers(import_graph())
    assert not found, "modules that read runs depend on training:\n" + "\n".join(found)


def test_the_reader_check_sees_an_indirect_import() -> None:
    graph = {"genlab.figures": {"genlab.latent"}, "genlab.latent": {"genlab.training.trainer"},
             "genlab.training.trainer": set()}
    assert training_reached_by_readers(graph) == [
        "genlab.figures reaches genlab.training.trainer (imported by genlab.latent)",
        "genlab.latent reaches genlab.training.trainer (imported by genlab.latent)"]


def all_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import, genlab's or not; `from a import b` counts as a.b too."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def forbidden_on_the_command_line(code: str) -> list[tuple[int, str]]:
    """(line, module) of each import of the process group or the training package in a command module's code."""
    return [(line, module) for line, module in all_imports(ast.parse(code))
            if under(module, PROCESS_GROUP) or under(module, TRAINING)]


def test_the_command_line_leaves_torchrun_and_training_to_the_library() -> None:
    found = [f"{module_name(path)}:{line} imports {module}" for path in package_modules()
             if under(module_name(path), CLI_SIDE) for line, module in forbidden_on_the_command_line(path.read_text())]
    assert not found, "the command line handles the process group or training itself:\n" + "\n".join(found)


def test_the_command_line_check_sees_both_kinds() -> None:
    code = "from genlab import world\nimport torch.distributed as dist\nfrom genlab.training.plan import plan_run\n"
    assert forbidden_on_the_command_line(code) == [(1, "genlab.world"), (2, "torch.distributed"),
                                                   (3, "genlab.training.plan"), (3, "genlab.training.plan.plan_run")]
