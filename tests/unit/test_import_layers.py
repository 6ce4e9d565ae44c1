"""The wings of ``src/sentiment_lora`` import only downwards (README, "Layout")."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "sentiment_lora"
# Lowest first: a wing may import the foundations and the wings before it, never one after it.
WINGS = ["training", "evidence", "deployment", "operations", "reporting"]
ENTRY_POINTS = {"cli", "predict_command"}  # the commands: they may import every wing


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
