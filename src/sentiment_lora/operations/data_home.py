"""The one writable data directory that the weekly service trains on and ``data add`` writes.

Everything that feeds or reads the live data takes its place from :func:`data_home`:
``$SENTIMENT_LORA_DATA_HOME``, else ``data/sst2-live`` under the current directory (the
project root for ``make`` and the deployments). ``make stack``/``make deploy`` create it from the
read-only ``data/sst2`` on first start (:func:`ensure_data_home`); the weekly schedule, the
data trigger and ``data add`` all name it.
"""

import os
import shutil
import tempfile
from pathlib import Path

from sentiment_lora.errors import UserError

DATA_HOME_ENV = "SENTIMENT_LORA_DATA_HOME"
DEFAULT_DATA_HOME = "data/sst2-live"
SEED_FILES = ("train.tsv", "dev.tsv")  # what a new home starts with (holdout.tsv comes later)


class DataHomeError(UserError):
    """The live data directory cannot be created from its source."""


def data_home(base: Path | None = None) -> Path:
    """The live data directory, absolute: ``$SENTIMENT_LORA_DATA_HOME`` or ``data/sst2-live``,
    a relative one taken from ``base`` (default: the current directory)."""
    home = Path(os.environ.get(DATA_HOME_ENV) or DEFAULT_DATA_HOME).expanduser()
    return home if home.is_absolute() else (base or Path.cwd()) / home


def ensure_data_home(home: Path | str, source: Path | str) -> bool:
    """Create ``home`` as a writable copy of ``source``'s TSVs (links followed); False when it
    already holds a train.tsv (it is never overwritten). The copy is made beside ``home`` and
    renamed into place, so an interrupted copy leaves no half-filled home."""
    home, source = Path(home), Path(source)
    if (home / SEED_FILES[0]).is_file():
        return False
    if home.exists() and any(home.iterdir()):
        raise DataHomeError(f"{home}: exists without a train.tsv; move it aside or fill it")
    missing = [name for name in SEED_FILES if not (source / name).is_file()]
    if missing:
        raise DataHomeError(
            f"{source}: no {', '.join(missing)} to start the live data from (run `make setup`)"
        )
    home.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{home.name}.", dir=home.parent))
    try:
        for name in SEED_FILES:
            shutil.copyfile(source / name, stage / name)  # the bytes, never the link
            (stage / name).chmod(0o644)
        stage.chmod(0o755)
        if home.exists():
            home.rmdir()  # empty (checked above)
        stage.rename(home)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return True
