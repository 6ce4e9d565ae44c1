"""Where the report templates are: the one place that locates ``templates/``.

The project's top-level ``templates/`` directory is shipped as the package-data package
``sentiment_lora.templates`` (see ``pyproject.toml``), so an installed wheel carries its own
copy, and an editable install maps that package onto the checkout's directory.
"""

import importlib.util
from pathlib import Path

TEMPLATES_PACKAGE = "sentiment_lora.templates"
MAIN_TEMPLATE = "report.html.j2"
_PACKAGE_DATA_DIR = Path(__file__).resolve().parents[1] / "templates"  # in an installed wheel
# A source checkout without the package mapping (e.g. PYTHONPATH=src): src/../templates.
_CHECKOUT_DIR = Path(__file__).resolve().parents[3] / "templates"
# Code imported from a checkout's src/ uses that checkout's templates first, even where an
# editable install of another checkout (a git worktree's main) maps the package elsewhere.
_IN_CHECKOUT = Path(__file__).resolve().parents[2].name == "src"


def _package_dirs() -> list[Path]:
    """Directories of the ``sentiment_lora.templates`` package, if it can be found."""
    try:
        spec = importlib.util.find_spec(TEMPLATES_PACKAGE)
    except ModuleNotFoundError:
        return []
    locations = spec.submodule_search_locations if spec is not None else None
    # An editable install adds a placeholder entry that is not a directory: skip it.
    return [Path(p) for p in locations or () if Path(p).is_dir()]


def templates_dir() -> Path:
    """The directory holding ``report.html.j2``, ``report.css`` and the other templates.

    Raises
    ------
    FileNotFoundError
        If no candidate directory holds ``report.html.j2``; the message names every path tried.
    """
    first = [_CHECKOUT_DIR] if _IN_CHECKOUT else []
    candidates = list(dict.fromkeys([*first, *_package_dirs(), _PACKAGE_DATA_DIR, _CHECKOUT_DIR]))
    for candidate in candidates:
        if (candidate / MAIN_TEMPLATE).is_file():
            return candidate
    tried = ", ".join(str(c / MAIN_TEMPLATE) for c in candidates)
    raise FileNotFoundError(
        f"report templates not found: looked for {tried} (the package {TEMPLATES_PACKAGE} "
        "ships them: reinstall sentiment-lora)"
    )
