"""Composition of the statistical evidence over Evaluation objects."""

import numpy as np

from sentiment_lora.config import StatsConfig
from sentiment_lora.evidence.collect import calibrate_model, compare_configs, run_statistical_tests
from sentiment_lora.training.evaluation import evaluate_probabilities

RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, 2, 400).tolist()


def _model(name: str, accuracy: float, seed: int):
    rng = np.random.default_rng(seed)
    right = rng.random(len(LABELS)) < accuracy
    preds = [y if r else 1 - y for y, r in zip(LABELS, right, strict=True)]
    probs = [0.8 if p else 0.2 for p in preds]
    return evaluate_probabilities(name, LABELS, probs)


def test_best_beats_weak_baseline_and_ties_itself() -> None:
    best = _model("best", 0.9, 1)
    tests = run_statistical_tests(
        best,
        baselines={
            "coin": _model("coin", 0.5, 2),
            "same": best.model_copy(update={"model_name": "same"}),
        },
        configs={"best": best, "other": _model("other", 0.88, 3)},
        config=StatsConfig(n_resamples=500),
    )
    verdicts = {c.baseline: c.verdict for c in tests.baselines}
    assert verdicts == {"coin": "better", "same": "not distinguishable"}
    assert tests.accuracy.low <= best.metrics.accuracy <= tests.accuracy.high
    assert tests.configs.cochran_q is not None and len(tests.configs.pairwise) == 1


def test_distinguishable_configs_are_named() -> None:
    configs = {"best": _model("best", 0.92, 1), "weak": _model("weak", 0.6, 4)}
    result = compare_configs(configs, "best", alpha=0.05)
    assert result.best_distinguishable_from == ["weak"]
    assert "significantly different" in result.conclusion


def test_single_config_has_nothing_to_compare() -> None:
    result = compare_configs({"only": _model("only", 0.9, 1)}, "only", alpha=0.05)
    assert result.cochran_q is None and result.pairwise == []
    assert "only one config" in result.conclusion


def test_temperature_scaling_fixes_overconfidence() -> None:
    rng = np.random.default_rng(5)

    def overconfident(n: int):
        p_true = rng.uniform(0.05, 0.95, n)
        labels = (rng.random(n) < p_true).astype(int)
        logit = np.log(p_true / (1 - p_true)) * 3  # three times too sharp
        return evaluate_probabilities("m", labels.tolist(), (1 / (1 + np.exp(-logit))).tolist())

    report = calibrate_model(overconfident(4000), overconfident(4000), config=StatsConfig())
    assert report.temperature > 2
    assert report.after.ece < report.before.ece / 2
