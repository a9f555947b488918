"""The dependency rules of Carepath's packages, and no import cycles (``make lint``).

Allowed imports between first-party packages (docs/architecture.md has the picture)::

    carepath_contracts   -> (nothing first-party; pydantic only, no I/O libraries)
    carepath_runtime     -> carepath_contracts
    carepath_<service>   -> carepath_contracts, carepath_runtime
    carepath (the CLI)   -> carepath_contracts, carepath_runtime, any service
    carepath_testkit     -> carepath_contracts, carepath_runtime

Every import counts, including those inside functions: a late import hides a dependency, it
does not remove it. A cycle is counted among module-level imports within the product
(``shared/``, ``services/``, ``cli/``, ``testkit/``). ``from package import name`` is an edge
to the package's ``__init__`` (and to ``package.name`` when that is a module): a cycle that
only works because Python falls back to a half-initialised package is still a cycle.

Run: ``python tools/check_dependencies.py`` (exit 1 and one line per finding).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SERVICES = frozenset({
    "carepath_intake", "carepath_pathway", "carepath_referrals", "carepath_notifications",
    "carepath_console",
})
FIRST_PARTY = SERVICES | {"carepath_contracts", "carepath_runtime", "carepath", "carepath_testkit"}

ALLOWED: dict[str, frozenset[str]] = {
    "carepath_contracts": frozenset(),
    "carepath_runtime": frozenset({"carepath_contracts"}),
    "carepath": frozenset({"carepath_contracts", "carepath_runtime"}) | SERVICES,
    "carepath_testkit": frozenset({"carepath_contracts", "carepath_runtime"}),
    **{s: frozenset({"carepath_contracts", "carepath_runtime"}) for s in SERVICES},
}

# The contracts are pydantic models and pure functions: no network, storage or web framework.
CONTRACTS_FORBIDDEN = frozenset({
    "aiokafka", "faststream", "redis", "fastapi", "starlette", "httpx", "uvicorn", "structlog",
    "opentelemetry", "prometheus_client", "socket", "asyncio", "subprocess", "requests",
})


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (or package)
    line: int
    top_level: bool


def source_dirs(root: Path) -> list[Path]:
    return [root / "shared", root / "cli", root / "testkit", *sorted(root.glob("services/*"))]


def module_files(root: Path = ROOT) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for base in source_dirs(root):
        for path in base.rglob("*.py"):
            rel = path.relative_to(base)
            if rel.parts[0] not in FIRST_PARTY or "node_modules" in rel.parts:
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    top_level_nodes = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        top = id(node) in top_level_nodes
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno, top)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, node.module] if node.module else package)
            else:
                base = node.module or ""
            yield Import(module, base, node.lineno, top)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if candidate in modules:
                    yield Import(module, candidate, node.lineno, top)


def top_package(module: str) -> str:
    return module.split(".", 1)[0]


def check(root: Path = ROOT) -> list[str]:
    modules = module_files(root)
    findings: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in sorted(modules.items()):
        owner = top_package(module)
        for imp in imports_of(module, path, modules):
            target_pkg = top_package(imp.target)
            where = f"{path.relative_to(root)}:{imp.line}"
            if owner == "carepath_contracts" and target_pkg in CONTRACTS_FORBIDDEN:
                findings.append(f"{where}: carepath_contracts imports {imp.target} (no I/O)")
            if (target_pkg in FIRST_PARTY and target_pkg != owner
                    and target_pkg not in ALLOWED[owner]):
                finding = f"{where}: {owner} may not import {target_pkg}"
                if finding not in findings:  # `from pkg import module` is two edges
                    findings.append(finding)
            if imp.top_level and imp.target in modules and imp.target != module:
                graph[module].add(imp.target)
    findings.extend(f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph))
    return findings


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One representative cycle per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def strongconnect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(path_within(graph, set(component)))

    limit = sys.getrecursionlimit()  # the walk recurses once per module on a path
    sys.setrecursionlimit(max(limit, 4 * len(graph) + 100))
    try:
        for node in sorted(graph):
            if node not in index:
                strongconnect(node)
    finally:
        sys.setrecursionlimit(limit)  # the caller's limit (a test process) is theirs
    return found


def path_within(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A concrete cycle through the component's smallest module (for the message)."""
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for node in frontier:
            for succ in sorted(graph[node] & component):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if succ not in previous:
                    previous[succ] = node
                    nxt.append(succ)
        frontier = nxt
    return sorted(component)


def main() -> int:
    findings = check()
    for finding in findings:
        print(finding)
    if findings:
        print(f"check_dependencies: {len(findings)} finding(s)", file=sys.stderr)
        return 1
    print(f"check_dependencies: {len(module_files())} modules, rules hold, no import cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
