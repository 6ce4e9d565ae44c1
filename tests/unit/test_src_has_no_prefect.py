"""src/sentiment_lora must stay importable and testable without Prefect."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "sentiment_lora"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_imports_prefect() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) >= 8
    offenders = [str(p.relative_to(SRC)) for p in files if "prefect" in _imports(p)]
    assert offenders == []


def test_the_check_sees_prefect_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom prefect.tasks import task\n")
    assert "prefect" in _imports(bad)
