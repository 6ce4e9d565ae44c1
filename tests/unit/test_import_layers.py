"""The wings of ``src/sentiment_lora`` import only downwards (README, "Layout")."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "sentiment_lora"
# Lowest first: a wing may import the foundations and the wings before it, never one after it.
WINGS = ["training", "evidence", "deployment", "operations", "reporting"]
ENTRY_POINTS = {
    "cli",
    "predict_command",
    "gc_command",
    "lineage_command",
}  # the commands: they may import any wing


def _imported_wings(path: Path) -> set[str]:
    wings = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "sentiment_lora" and len(parts) > 1 and parts[1] in WINGS:
                wings.add(parts[1])
    return wings


def test_every_import_goes_downwards() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if len(relative.parts) == 1:
            if relative.stem in ENTRY_POINTS:
                continue
            allowed: set[str] = set()  # a foundation imports no wing
        else:
            allowed = set(WINGS[: WINGS.index(relative.parts[0]) + 1])
        upward += [f"{relative} imports {w}" for w in sorted(_imported_wings(path) - allowed)]
    assert not upward, upward


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from sentiment_lora.reporting.format import fmt\n", encoding="utf-8")
    assert _imported_wings(module) == {"reporting"}


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at the top or inside a function alike."""
    paths = {_module_name(p, package): p for p in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                candidates = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            targets.update(c for c in candidates if c in paths and c != name)
        graph[name] = targets
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_anywhere() -> None:
    # imports inside functions count too: they hide a circle, they do not remove it
    assert _circles(_import_graph(PACKAGE)) == []


def test_the_check_sees_a_circle_hidden_in_a_function(tmp_path: Path) -> None:
    package = tmp_path / "sentiment_lora"
    (package / "wing").mkdir(parents=True)
    (package / "wing" / "a.py").write_text("from sentiment_lora.wing.b import x\n")
    (package / "wing" / "b.py").write_text(
        "def f():\n    from sentiment_lora.wing import a\n", encoding="utf-8"
    )
    (package / "wing" / "c.py").write_text("import sentiment_lora.wing.a\n")
    graph = _import_graph(package)
    assert graph["sentiment_lora.wing.b"] == {"sentiment_lora.wing.a"}
    assert _circles(graph) == [["sentiment_lora.wing.a", "sentiment_lora.wing.b"]]
