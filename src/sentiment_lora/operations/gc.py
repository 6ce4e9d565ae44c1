"""``sentiment-lora gc``: remove old run directories, keep what anyone still needs.

Removed: published run directories beyond the newest ``keep_runs`` (run ids start with their
UTC time, so the name orders them). Never removed: the champion's run, the run ``latest``
points to, anything hidden (a run being written stages into ``.<run-id>.partial``), anything
that is not a published run, the registry (its versions are the champions' own copies) and
data versions (the ledger may name any of them). Decided and done under the registry's lock,
so it never races a run's promotion.
"""

import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sentiment_lora.operations.disk import dir_bytes
from sentiment_lora.operations.locks import registry_lock
from sentiment_lora.operations.registry import read_champion_version
from sentiment_lora.paths import LATEST, RESULTS_FILE


class Removal(BaseModel):
    """One directory gc removes (or, in a dry run, would remove)."""

    model_config = ConfigDict(frozen=True)
    path: str
    bytes: int
    why: str


class GcPlan(BaseModel):
    """What gc removes and what it keeps on purpose."""

    model_config = ConfigDict(frozen=True)
    remove: list[Removal]
    kept: dict[str, str]  # run id -> why it stays although it is old

    @property
    def freed(self) -> int:
        """Bytes the removals free."""
        return sum(r.bytes for r in self.remove)


def _published_runs(reports_dir: Path) -> list[Path]:
    """Published run directories, oldest first."""
    if not reports_dir.is_dir():
        return []
    runs = [
        p
        for p in reports_dir.iterdir()
        if p.name != LATEST
        and not p.name.startswith(".")
        and p.is_dir()
        and not p.is_symlink()
        and (p / RESULTS_FILE).is_file()
    ]
    return sorted(runs, key=lambda p: p.name)


def plan_gc(reports_dir: Path | str, registry_dir: Path | str, *, keep_runs: int) -> GcPlan:
    """What :func:`run_gc` would remove now."""
    if keep_runs < 1:
        raise ValueError(f"keep_runs: keep at least 1 run (got {keep_runs})")
    reports_dir = Path(reports_dir)
    champion = read_champion_version(registry_dir)
    latest = reports_dir / LATEST
    protected = {
        champion.run_id if champion else None: "the champion's run",
        latest.resolve().name if latest.is_symlink() else None: "the latest run",
    }
    runs = _published_runs(reports_dir)
    old = runs[: max(len(runs) - keep_runs, 0)]
    remove, kept = [], {}
    for run in old:
        if run.name in protected:
            kept[run.name] = protected[run.name]
        else:
            why = f"older than the newest {keep_runs} runs"
            remove.append(Removal(path=str(run), bytes=dir_bytes(run), why=why))
    return GcPlan(remove=remove, kept=kept)


def run_gc(
    reports_dir: Path | str, registry_dir: Path | str, *, keep_runs: int, dry_run: bool = False
) -> GcPlan:
    """Remove what :func:`plan_gc` lists (nothing with ``dry_run``), under the registry lock."""
    with registry_lock(registry_dir):
        plan = plan_gc(reports_dir, registry_dir, keep_runs=keep_runs)
        if not dry_run:
            for removal in plan.remove:
                shutil.rmtree(removal.path)
    return plan
