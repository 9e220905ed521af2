"""The project's import graph, read from the source (AST, imports inside functions included): used by the tests
that keep dvc.yaml's code deps equal to what each stage imports, and the graph free of cycles.

    python -m tools.import_graph           # prints, per dvc.yaml stage, the code deps its imports call for
    python -m tools.import_graph --write   # rewrites those deps in dvc.yaml (artifact and param deps kept)
"""

from __future__ import annotations

import ast
import shlex
from functools import cache
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "stages", "leafyolo", "bench", "studies", "tools")
# pipeline/'s packages, lowest first: each may import only from those before it (and from itself)
LAYERS = ("common", "model", "compress", "io", "config", "data", "infer", "evaluate", "export", "train", "stage")


def module_file(module: str) -> Path | None:
    """The repo file of a dotted module name (a package's __init__.py), or None when it is not ours."""
    base = REPO / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (imports for annotations only never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if test is not None and "TYPE_CHECKING" in ast.unparse(test):
                todo.extend(child.orelse)
                continue
            todo.append(child)


@cache
def imports_of(path: Path) -> frozenset[str]:
    """Every repo module `path` imports, at the top or inside functions."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in PACKAGES:
                continue
            while name and module_file(name) is None:  # `from pkg.mod import func`: the module is pkg.mod
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return frozenset(found)


def with_packages(modules: set[str] | frozenset[str]) -> set[str]:
    """`modules` plus their packages: importing pkg.mod runs pkg/__init__.py first."""
    parents = {".".join(n.split(".")[:k]) for n in modules for k in range(1, n.count(".") + 1)}
    return set(modules) | {p for p in parents if module_file(p) is not None}


def closure(module: str) -> set[Path]:
    """Files of every repo module `module` needs, itself and its packages' __init__.py included (`python -m
    stages.teacher` runs stages/__init__.py first)."""
    seen: set[Path] = set()
    todo = sorted(with_packages({module}))
    while todo:
        path = module_file(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(with_packages(imports_of(path)))
    return seen


def all_modules() -> list[str]:
    return sorted(module_name(p) for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def top_level_names(path: Path) -> set[str]:
    """Names a module defines at its top level (defs, classes, assignments, imports)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def unresolved_imports() -> list[str]:
    """`file: name` for every import of ours that names no module of the repo and nothing its module defines
    (an import that only works through an installed copy of another checkout)."""
    bad = []
    for module in all_modules():
        path = module_file(module)
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                bad += [f"{path.relative_to(REPO)}: {a.name}" for a in node.names
                        if a.name.split(".")[0] in PACKAGES and module_file(a.name) is None]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.split(".")[0] in PACKAGES:
                source = module_file(node.module)
                if source is None:
                    bad.append(f"{path.relative_to(REPO)}: {node.module}")
                    continue
                defined = top_level_names(source)
                bad += [f"{path.relative_to(REPO)}: {node.module}.{a.name}" for a in node.names
                        if a.name not in defined and module_file(f"{node.module}.{a.name}") is None]
    return bad


def find_cycle() -> list[str] | None:
    """One import cycle among the repo's modules, or None. Edges are the imports written in each module (a
    package's __init__ running before its modules is Python's order of execution, not an edge)."""
    graph = {m: sorted(imports_of(module_file(m))) for m in all_modules()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in graph.get(m, []):
            if n == m:
                continue
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in graph:
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def is_marker(path: Path) -> bool:
    """A package's __init__.py with nothing but a docstring and `from __future__` imports (no code to hash)."""
    if path.name != "__init__.py":
        return False
    body = ast.parse(path.read_text(), str(path)).body
    return all((isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
               or (isinstance(n, ast.ImportFrom) and n.module == "__future__") for n in body)


def covering_deps(files: set[Path]) -> list[str]:
    """The fewest repo paths covering `files`: a folder when every .py file of it (and below) is needed,
    else the files themselves."""
    def all_py(folder: Path) -> set[Path]:
        return {p for p in folder.rglob("*.py") if "__pycache__" not in p.parts and not is_marker(p)}

    files = {f for f in files if not is_marker(f)}
    chosen: list[Path] = []
    for f in sorted(files):
        if any(c in f.parents for c in chosen):
            continue
        top = None
        for folder in reversed(list(f.relative_to(REPO).parents)[:-1]):  # widest folder first
            folder = REPO / folder
            if all_py(folder) <= files:
                top = folder
                break
        chosen.append(top or f)
    return sorted({str(c.relative_to(REPO)) for c in chosen})


def stage_modules() -> dict[str, str]:
    """dvc.yaml stage -> the module its cmd runs (`python -m stages.x`)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        argv = shlex.split(stage["cmd"])
        out[name] = argv[argv.index("-m") + 1]
    return out


def expected_code_deps(stage: str) -> list[str]:
    return covering_deps(closure(stage_modules()[stage]))


def declared_code_deps(stage: str) -> list[str]:
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"]
    return sorted(d for d in deps if d.split("/")[0] in PACKAGES)


def rewrite_dvc_yaml() -> None:
    """Replace each stage's code deps in dvc.yaml (text edit: comments and layout stay) by the computed ones."""
    lines = (REPO / "dvc.yaml").read_text().splitlines()
    out, stage, in_deps = [], None, False
    for line in lines:
        stripped = line.strip()
        if line.startswith("  ") and not line.startswith("    ") and stripped.endswith(":"):
            stage = stripped[:-1]
        if stripped == "deps:":
            in_deps = True
            out.append(line)
            indent = line[: len(line) - len(line.lstrip())] + "  "
            out.extend(f"{indent}- {dep}" for dep in expected_code_deps(stage))
            continue
        if in_deps and stripped.startswith("- "):
            if stripped[2:].split("/")[0] in PACKAGES:
                continue  # an old code dep: replaced above
        elif in_deps:
            in_deps = False
        out.append(line)
    (REPO / "dvc.yaml").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv:
        rewrite_dvc_yaml()
    for name in stage_modules():
        print(f"{name}:")
        for dep in expected_code_deps(name):
            print(f"      - {dep}")


def layer_violations() -> list[str]:
    """Every import inside pipeline/ that reaches a package at its own layer or above (LAYERS), as
    'pipeline.a.x -> pipeline.b.y'; a package missing from LAYERS is reported too."""
    found = []
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        source = module_name(path).split(".")
        if len(source) < 2:
            continue
        for target in sorted(imports_of(path)):
            parts = target.split(".")
            if parts[0] != "pipeline" or len(parts) < 2 or parts[1] == source[1]:
                continue
            if source[1] not in LAYERS or parts[1] not in LAYERS:
                found.append(f"{module_name(path)} -> {target} (a package not in LAYERS)")
            elif LAYERS.index(parts[1]) > LAYERS.index(source[1]):
                found.append(f"{module_name(path)} -> {target}")
    return found
