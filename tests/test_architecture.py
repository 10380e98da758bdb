"""The layout's rules, checked: import contracts (import-linter), zero import cycles, declared dependencies equal
to what src/ imports."""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for p in SRC.rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return out


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    res = subprocess.run([exe, str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def _internal_edges() -> dict[str, set[str]]:
    """module -> edgeslim modules it imports, counting imports inside functions."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, (path, is_pkg) in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                if node.level > 1:
                    base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + [node.module] if node.module else base) if node.level else (node.module or "")
                targets = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
            edges[mod] |= {t for t in targets if t in mods and t != mod}
    return edges


def test_no_import_cycles():
    edges = _internal_edges()
    # a package's __init__ re-exporting its own submodules is not a cycle of layers
    edges = {m: {t for t in ts if not (t.startswith(m + ".") or m.startswith(t + "."))} for m, ts in edges.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycles.append(path[path.index(t):] + [t] if t in path else [m, t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _imported_top_modules() -> set[str]:
    """Top-level modules src/ imports, including the lazy `require("x.y")` imports of heavy backends."""
    out: set[str] = set()
    for path, _ in _modules().values():
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                out |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                out.add(node.module.split(".")[0])
        out |= {m.split(".")[0] for m in re.findall(r"""require\(["']([\w.]+)["']\)""", text)}
    return {m for m in out if m not in sys.stdlib_module_names and m != "edgeslim"}


def _dist_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_declared_dependencies_match_imports():
    from importlib.metadata import packages_distributions

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = meta["project"]
    declared = {_dist_name(r) for r in project["dependencies"]}
    for extra, reqs in project["optional-dependencies"].items():
        if extra not in ("dev", "all"):
            declared |= {_dist_name(r) for r in reqs}
    indirect = {k.lower() for k in meta["tool"]["edgeslim"]["indirect-dependencies"]}
    dists = packages_distributions()
    imported: dict[str, str] = {}
    for mod in _imported_top_modules():
        names = dists.get(mod)
        if not names:
            pytest.fail(f"src/ imports {mod!r}, which no installed distribution provides")
        imported[names[0].lower().replace("_", "-")] = mod
    undeclared = sorted(d for d in imported if d not in declared)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    unused = sorted(d for d in declared if d not in imported and d not in indirect)
    assert not unused, (f"declared but never imported by src/: {unused}; drop them or list them under "
                        "[tool.edgeslim.indirect-dependencies] with the reason")
