"""The layer picture in DESIGN.md stays true: no module imports from a higher layer, nobody imports cli."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "genlab"

# module prefix -> layer; the longest matching prefix wins
LAYERS = {
    "genlab.errors": 0, "genlab.version": 0, "genlab.data": 0, "genlab.nn": 0, "genlab.losses": 0,
    "genlab.convarith": 0, "genlab.convarith_pictures": 0, "genlab.images": 0,
    "genlab.models": 1,
    "genlab.train": 2, "genlab.latent": 2, "genlab.metrics": 2, "genlab.evaluation": 2, "genlab.invert": 2,
    "genlab.invert_models": 2,
    "genlab.figures": 3, "genlab.report": 3, "genlab.serve": 3,
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


def test_the_training_steps_know_no_concrete_model() -> None:
    steps = PACKAGE / "train" / "steps.py"
    models = [m for _, m in genlab_imports(ast.parse(steps.read_text())) if m.startswith("genlab.models.")]
    assert models and all(m == "genlab.models.contract" for m in models), f"steps.py imports {models}"
