"""The results of ``bench/levers.py``: one :class:`LeverRun` per row, the markdown table, and
the spread over seeds."""

import statistics
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict


class LeverRun(BaseModel):
    """One row of the results: a trained (config, seed), or the ensemble."""

    model_config = ConfigDict(frozen=True)
    name: str
    lever: str
    seed: int | None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    test_f1_macro: float | None = None
    train_seconds: float | None = None
    examples_per_second: float | None = None
    trainable_parameters: int | None = None
    device: str = ""
    precision: str = ""
    epochs: int | None = None
    best_epoch: float | None = None
    test_inference_seconds: float | None = None
    forward_passes: int = 1  # per sentence: the ensemble runs one per member
    members: list[str] = []
    evaluation_path: str | None = None
    hyperparams: dict | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        """``name`` and seed, as the run directory is named."""
        return self.name if self.seed is None else f"{self.name}-s{self.seed}"


def seed_spread(runs: Sequence[LeverRun]) -> list[dict[str, object]]:
    """Per config with two or more finished seeds: test accuracy mean, sd, min, max."""
    by_name: dict[str, list[LeverRun]] = {}
    for r in runs:
        if r.error is None and r.seed is not None and r.test_accuracy is not None:
            by_name.setdefault(r.name, []).append(r)
    return [
        {
            "name": name,
            "seeds": [r.seed for r in group],
            "test_accuracy_mean": statistics.fmean(accs := [r.test_accuracy for r in group]),
            "test_accuracy_sd": statistics.stdev(accs),
            "test_accuracy_min": min(accs),
            "test_accuracy_max": max(accs),
            "val_accuracy_mean": statistics.fmean(r.val_accuracy or 0.0 for r in group),
        }
        for name, group in by_name.items()
        if len(group) >= 2
    ]


def fmt_value(value: object, digits: int = 4) -> str:
    """A table cell: "-" for None, fixed decimals for a float, thousands for an int."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_table(runs: Sequence[LeverRun], header: Sequence[str] = ()) -> str:
    """The markdown report: one row per run (the ensemble last), then the spread over seeds."""
    lines = [*header, ""] if header else []
    lines += [
        "| name | lever | seed | val acc | test acc | test macro-F1 | train s | examples/s "
        "| trainable params | test inference s | device |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    columns = 11
    for r in runs:
        if r.error is not None:
            cells = [r.name, r.lever, str(r.seed), f"failed: {r.error}", *[""] * (columns - 4)]
            lines.append("| " + " | ".join(cells) + " |")
            continue
        inference = fmt_value(r.test_inference_seconds, 2)
        if r.forward_passes > 1:
            inference += f" ({r.forward_passes} forward passes)"
        cells = [
            r.name,
            r.lever,
            "-" if r.seed is None else str(r.seed),
            fmt_value(r.val_accuracy),
            fmt_value(r.test_accuracy),
            fmt_value(r.test_f1_macro),
            fmt_value(r.train_seconds, 1),
            fmt_value(r.examples_per_second, 1),
            fmt_value(r.trainable_parameters),
            inference,
            f"{r.device} {r.precision}".strip(),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    spread = seed_spread(runs)
    if spread:
        lines += [
            "",
            "Spread over seeds (test accuracy; the data split is the same for every seed):",
            "",
            "| name | seeds | mean | sd | min | max | val acc mean |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for s in spread:
            cells = [
                str(s["name"]),
                ",".join(map(str, s["seeds"])),  # type: ignore[call-overload]
                *(
                    fmt_value(s[k])
                    for k in (
                        "test_accuracy_mean",
                        "test_accuracy_sd",
                        "test_accuracy_min",
                        "test_accuracy_max",
                        "val_accuracy_mean",
                    )
                ),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
