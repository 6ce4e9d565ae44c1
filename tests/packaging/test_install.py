"""Packaging: declared dependencies, and a non-editable install that renders a report.

The install tests build the project into a fresh virtual environment (no pip of its own; it
sees the project's installed dependencies through a ``.pth`` file and runs their pip), then
run the installed ``sentiment-lora`` console script from a directory outside the checkout.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from sentiment_lora.reporting import templates
from sentiment_lora.reporting.templates import templates_dir

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_RUN = ROOT / "tests" / "fixtures" / "run"
FIRST_PARTY = {"sentiment_lora", "tasks", "flows"}
# Needed at run time without an import of their own (see the comments in pyproject.toml).
RUNTIME_ONLY = {"accelerate", "safetensors", "pyarrow", "onnx"}  # onnx: onnxruntime.quantization


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level_modules() -> set[str]:
    """Top-level modules that src/, tasks/ and flows/ import (absolute imports only)."""
    modules: set[str] = set()
    for folder in ("src", "tasks", "flows"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.partition(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.partition(".")[0])
    return modules - FIRST_PARTY - set(sys.stdlib_module_names) - {"__future__"}


def _declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_normalise(r.name): r for r in map(Requirement, project["dependencies"])}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.partition("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not pinned with =="
            pins[_normalise(name)] = version.strip()
    return pins


def test_every_imported_distribution_is_declared() -> None:
    owners = packages_distributions()
    needed: set[str] = set()
    for module in _imported_top_level_modules():
        assert module in owners, f"{module}: imported but no installed distribution provides it"
        needed.update(_normalise(d) for d in owners[module])
    declared = set(_declared())
    assert not needed - declared, f"imported but not in [project] dependencies: {needed - declared}"
    assert not declared - needed - RUNTIME_ONLY, (
        f"declared but never imported: {declared - needed - RUNTIME_ONLY}"
    )


def test_requirements_pin_the_declared_dependencies_at_the_constraints() -> None:
    requirements = _pins(ROOT / "requirements.txt")
    constraints = _pins(ROOT / "constraints.txt")
    for name, requirement in _declared().items():
        pin = requirements.get(name)
        assert pin is not None, f"requirements.txt does not pin {name}"
        assert pin == constraints.get(name), f"{name}: {pin} here, {constraints.get(name)} there"
        assert requirement.specifier.contains(pin), f"{name}=={pin} is outside {requirement}"


def test_templates_dir_is_the_checkouts_templates_in_an_editable_install() -> None:
    found = templates_dir()
    assert found.resolve() == (ROOT / "templates").resolve()  # live files, not a stale copy
    assert (found / "report.css").is_file()


def test_missing_templates_raise_naming_the_paths_tried(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(templates, "_package_dirs", lambda: [tmp_path / "package"])
    monkeypatch.setattr(templates, "_PACKAGE_DATA_DIR", tmp_path / "wheel")
    monkeypatch.setattr(templates, "_CHECKOUT_DIR", tmp_path / "checkout")
    with pytest.raises(FileNotFoundError) as raised:
        templates_dir()
    for where in ("package", "wheel", "checkout"):
        assert str(tmp_path / where / "report.html.j2") in str(raised.value)


# --- a non-editable install -------------------------------------------------------------------


def _copy_checkout(dest: Path) -> Path:
    """The working tree's tracked and untracked-but-not-ignored files (no .venv, .git, reports)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # skips files deleted in the working tree
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _run(cmd: list[str], *, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _site_packages(env_dir: Path) -> Path:
    return env_dir / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A temporary venv with a non-editable install of a clean copy of the project."""
    tmp = tmp_path_factory.mktemp("packaging")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    site = _site_packages(env_dir)
    # Dependencies (and pip, setuptools) come from the project's venv, after the temp venv's own.
    (site / "_project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    source = _copy_checkout(tmp / "source")
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q"]
    pip += ["--disable-pip-version-check", "--no-index", "-c", str(ROOT / "constraints.txt")]
    done = _run([*pip, "--no-deps", "--no-build-isolation", str(source)], cwd=tmp, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(source)  # nothing may point back at the copy
    return env_dir


@pytest.mark.slow
def test_install_ships_sentiment_lora_with_templates_and_nothing_else(
    installed: Path, tmp_path: Path
) -> None:
    site = _site_packages(installed)
    probe = (
        "import json, sentiment_lora.cli as cli;"
        "from sentiment_lora.reporting.templates import templates_dir;"
        "print(json.dumps({'cli': cli.__file__, 'templates': str(templates_dir())}))"
    )
    done = _run([str(installed / "bin" / "python"), "-c", probe], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["cli"]).is_relative_to(site)  # the installed copy, not the checkout
    templates = Path(found["templates"])
    assert templates == site / "sentiment_lora" / "templates"
    shipped = {p.name for p in templates.iterdir()}
    assert {p.name for p in (ROOT / "templates").glob("*.j2")} <= shipped
    assert "report.css" in shipped
    assert not (site / "tasks").exists() and not (site / "flows").exists()
    expected = {
        p.parent.relative_to(ROOT / "src").as_posix()
        for p in (ROOT / "src" / "sentiment_lora").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    installed_pkgs = {
        p.parent.relative_to(site).as_posix()
        for p in (site / "sentiment_lora").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert installed_pkgs == expected  # every subpackage, discovered without a list to update


@pytest.mark.slow
def test_installed_console_script_renders_a_report(installed: Path, tmp_path: Path) -> None:
    run_dir = shutil.copytree(FIXTURE_RUN, tmp_path / "run")
    done = _run([str(installed / "bin" / "sentiment-lora"), "report", str(run_dir)], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (run_dir / "report.pdf").read_bytes().startswith(b"%PDF")
    run_id = json.loads((run_dir / "fine_tuning_results.json").read_text())["run_id"]
    assert run_id in (run_dir / "report.html").read_text(encoding="utf-8")
