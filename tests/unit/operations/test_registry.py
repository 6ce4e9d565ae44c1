"""Champion/challenger gate."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sentiment_lora.deployment.export_check import ExportCheck
from sentiment_lora.operations.gate import (
    HoldoutPredictions,
    as_dry_run,
    challenge_champion,
    decide,
    gate_markdown,
    hash_test_set,
    model_key,
    with_export_check,
)
from sentiment_lora.operations.registry import (
    ModelRecord,
    RegistryError,
    VersionRecord,
    champion_model_dir,
    check_champion,
    list_versions,
    promote,
    read_champion,
    read_champion_version,
    rollback,
    served_model_dir,
    version_model_dir,
)

LABELS = [1, 0] * 50  # 100 test sentences


def _record(
    name: str,
    wrong: set[int],
    *,
    key: str | None = None,
    f1: float | None = None,
    data: str | None = None,
) -> ModelRecord:
    preds = [1 - y if i in wrong else y for i, y in enumerate(LABELS)]
    acc = 1 - len(wrong) / len(LABELS)
    return ModelRecord(
        run_id=f"run-{name}",
        config_name=name,
        model_key=key or name,
        test_accuracy=acc,
        test_f1_macro=acc if f1 is None else f1,
        test_set_hash="t1",
        predictions=preds,
        train_data_hash=data,
    )


def test_first_model_becomes_champion() -> None:
    d = decide(_record("a", {1, 2}), None, labels=LABELS)
    assert d.promoted and "no champion" in d.reason


def test_same_model_is_unchanged_and_not_promoted() -> None:
    champ = _record("a", {1, 2})
    d = decide(_record("a", {1, 2}), champ, labels=LABELS)
    assert not d.promoted and d.unchanged and "cache" in d.reason


def test_same_data_without_significance_keeps_the_champion() -> None:
    # two more sentences right on the champion's training data: p = 0.25, not significant
    d = decide(_record("b", {1}, data="d1"), _record("a", {1, 2, 3}, data="d1"), labels=LABELS)
    assert not d.promoted and d.rule == "superiority"
    assert d.reason.startswith("not significantly better than the champion on test")
    assert "trained on the champion's training data" in d.reason
    assert d.checks[0].superiority is not None and d.checks[0].superiority.pvalue == 0.25


def test_same_data_and_significantly_better_is_promoted() -> None:
    d = decide(
        _record("b", set(), data="d1"), _record("a", set(range(10)), data="d1"), labels=LABELS
    )
    assert d.promoted and d.rule == "superiority" and d.reason.startswith("significantly better")
    assert d.checks[0].superiority.pvalue < 0.01  # 10 of 10 discordant pairs: p = 1/1024


def test_a_dry_run_decides_like_the_gate_and_promotes_nothing() -> None:
    champion = _record("a", set(range(10)), data="d1")
    real = decide(_record("b", set(), data="d1"), champion, labels=LABELS)
    dry = as_dry_run(real)
    assert real.promoted and not dry.promoted and dry.dry_run and dry.would_promote
    assert dry.reason == f"dry run: would promote, because {real.reason}"
    assert dry.reasons[0] == dry.reason and dry.reasons[1:] == real.reasons[1:]
    assert (dry.rule, dry.checks) == (real.rule, real.checks)  # the same evidence
    assert (real.outcome(), dry.outcome()) == ("promoted to champion", "dry run: would promote")
    assert gate_markdown(dry.summary()).startswith("# Champion gate: dry run: would promote\n")
    kept = as_dry_run(decide(_record("c", set(range(12)), data="d1"), champion, labels=LABELS))
    assert not kept.would_promote and kept.outcome() == "dry run: would keep"
    assert kept.reason.startswith("dry run: would keep the champion, because not significantly")


def test_changed_data_within_the_margin_is_promoted_and_beyond_it_kept() -> None:
    champion = _record("a", {2}, data="d1")
    within = decide(_record("b", {1}, data="d2"), champion, labels=LABELS, margin=0.05)
    assert within.promoted and within.rule == "non-inferiority"
    assert within.reason.startswith("non-inferior on test (100 sentences)")
    assert "the training data changed since the champion" in within.reason
    assert within.checks[0].difference.low > -0.05
    # the same challenger, judged with a 1-point margin on 100 sentences: the bound is wider
    beyond = decide(_record("b", {1}, data="d2"), champion, labels=LABELS, margin=0.01)
    assert not beyond.promoted and beyond.reason.startswith("possibly inferior on test")
    assert beyond.checks[0].difference.low <= -0.01


def test_unknown_data_counts_as_changed_and_the_rule_can_be_forced() -> None:
    d = decide(_record("b", {1}), _record("a", {1, 2, 3}, data="d1"), labels=LABELS)
    assert d.rule == "non-inferiority" and d.rule_option == "auto"
    forced = decide(
        _record("b", {1}, data="d2"), _record("a", {1, 2, 3}, data="d1"), labels=LABELS,
        rule="superiority",
    )  # fmt: skip
    assert forced.rule == "superiority" and not forced.promoted and "as set" in forced.reason


def test_significantly_worse_is_refused_even_with_higher_f1() -> None:
    wrong = set(range(0, 40))  # 40 more errors than the champion
    challenger = _record("b", wrong, f1=0.99)  # an inconsistent F1 must not sneak it through
    d = decide(challenger, _record("a", set(), f1=0.5), labels=LABELS)
    assert not d.promoted and "possibly inferior" in d.reason
    assert any("two-sided McNemar p=" in r for r in d.reasons)


def test_the_holdout_must_agree() -> None:
    champion = _record("a", {2}, data="d1")
    holdout_labels = [1, 0] * 150
    good = HoldoutPredictions(
        labels=holdout_labels, challenger=holdout_labels, champion=holdout_labels
    )
    worse = good.model_copy(update={"challenger": [1] * 300})  # every negative wrong
    kw = {"labels": LABELS, "margin": 0.05}
    assert decide(_record("b", {1}, data="d2"), champion, holdout=good, **kw).promoted
    refused = decide(_record("b", {1}, data="d2"), champion, holdout=worse, **kw)
    assert not refused.promoted and refused.reason.startswith("possibly inferior on holdout")
    assert [c.test_set for c in refused.checks] == ["test", "holdout"]
    assert refused.checks[0].passed and not refused.checks[1].passed
    # the holdout is judged for non-inferiority under either rule
    same_data = decide(
        _record("b", set(), data="d1"), _record("a", set(range(10)), data="d1"),
        labels=LABELS, holdout=worse,
    )  # fmt: skip
    assert same_data.rule == "superiority" and not same_data.promoted
    assert same_data.checks[1].rule == "non-inferiority"
    markdown = gate_markdown(refused)
    assert "Rule: non-inferiority (option auto); margin 0.050 macro-F1" in markdown
    assert "holdout: failed" in markdown


def test_changed_test_set_needs_champion_rescored() -> None:
    champ = _record("a", {1}).model_copy(update={"test_set_hash": "old"})
    with pytest.raises(ValueError, match="champion_predictions"):
        decide(_record("b", {2}), champ, labels=LABELS)
    rescored = [1 - y if i in {1, 2, 3} else y for i, y in enumerate(LABELS)]
    d = decide(_record("b", {2}), champ, labels=LABELS, champion_predictions=rescored, margin=0.05)
    assert d.promoted


def test_promote_writes_record_and_model(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "adapter_model.safetensors").write_bytes(b"x")
    assert read_champion(tmp_path / "reg") is None
    promote(tmp_path / "reg", _record("a", set()), model)
    (model / "adapter_model.safetensors").write_bytes(b"y")
    promote(tmp_path / "reg", _record("b", set()), model)
    champ = read_champion(tmp_path / "reg")
    assert champ is not None and champ.config_name == "b" and champ.promoted_at
    assert (champion_model_dir(tmp_path / "reg") / "adapter_model.safetensors").read_bytes() == b"y"
    assert sorted(p.name for p in (tmp_path / "reg").iterdir()) == [
        ".lock",
        "champion.json",
        "versions",
    ]
    assert sorted(p.name for p in (tmp_path / "reg" / "versions").iterdir()) == ["v0001", "v0002"]


def test_promote_keeps_every_version_with_its_record(tmp_path: Path) -> None:
    registry, model = tmp_path / "reg", _model_dir(tmp_path, b"w1")
    first = promote(registry, _record("a", set()), model, reason="first", hyperparameters={"r": 8})
    (model / "adapter_model.safetensors").write_bytes(b"w2")
    second = promote(registry, _record("b", set()), model, reason="better")
    assert (first.version, second.version) == ("v0001", "v0002")
    assert second.became_champion.previous_version == "v0001"
    assert first.became_champion.cause == "promotion" and first.became_champion.reason == "first"
    assert read_champion_version(registry) == second
    assert list_versions(registry) == [first, second]
    stored = VersionRecord.model_validate_json(
        (registry / "versions" / "v0001" / "record.json").read_text(encoding="utf-8")
    )
    assert stored == first and stored.hyperparameters == {"r": 8} and stored.predictions
    weights = registry / "versions" / "v0001" / "model" / "adapter_model.safetensors"
    assert weights.read_bytes() == b"w1"  # the first version's model is kept as it was
    assert champion_model_dir(registry) == registry / "versions" / "v0002" / "model"
    assert version_model_dir(registry, "v0001") == weights.parent
    with pytest.raises(ValueError, match="version: unknown version 'v0003'"):
        version_model_dir(registry, "v0003")


def test_promote_removes_stages_left_by_a_crashed_writer(tmp_path: Path) -> None:
    registry, model = tmp_path / "reg", _model_dir(tmp_path, b"w1")
    stale = registry / "versions" / ".v0001.999999.tmp" / "model"
    stale.mkdir(parents=True)
    assert list_versions(registry) == []  # a hidden stage is no version
    promote(registry, _record("a", set()), model)
    assert [p.name for p in (registry / "versions").iterdir()] == ["v0001"]


def _old_layout(registry: Path, record: ModelRecord, weights: bytes) -> None:
    """A registry as the single-champion code wrote it: champion.json and champion/."""
    (registry / "champion").mkdir(parents=True)
    (registry / "champion" / "adapter_model.safetensors").write_bytes(weights)
    promoted = record.model_copy(update={"promoted_at": "2025-01-02T03:04:05+00:00"})
    (registry / "champion.json").write_text(promoted.model_dump_json(), encoding="utf-8")


def test_the_old_layout_is_read_in_place_then_migrated_by_the_next_promotion(
    tmp_path: Path,
) -> None:
    registry = tmp_path / "reg"
    _old_layout(registry, _record("old", set()), b"old")
    legacy = read_champion_version(registry)
    assert legacy is not None and legacy.version == "v0001" and legacy.run_id == "run-old"
    assert legacy.became_champion.at == "2025-01-02T03:04:05+00:00"
    assert list_versions(registry) == [legacy]
    assert champion_model_dir(registry) == registry / "champion"
    assert read_champion(registry) == _record("old", set()).model_copy(
        update={"promoted_at": "2025-01-02T03:04:05+00:00"}
    )

    new = promote(registry, _record("new", set()), _model_dir(tmp_path, b"new"))
    assert new.version == "v0002" and new.became_champion.previous_version == "v0001"
    assert not (registry / "champion").exists()
    old_weights = registry / "versions" / "v0001" / "model" / "adapter_model.safetensors"
    assert old_weights.read_bytes() == b"old"
    assert [v.version for v in list_versions(registry)] == ["v0001", "v0002"]
    assert list_versions(registry)[0] == legacy
    assert (champion_model_dir(registry) / "adapter_model.safetensors").read_bytes() == b"new"


def test_a_migration_cut_short_is_finished_not_repeated(tmp_path: Path) -> None:
    """Crash after versions/v0001 was renamed into place, before champion.json was rewritten."""
    registry = tmp_path / "reg"
    _old_layout(registry, _record("old", set()), b"old")
    migrated = read_champion_version(registry)
    assert migrated is not None
    copy = registry / "versions" / "v0001"
    shutil.copytree(registry / "champion", copy / "model")
    (copy / "record.json").write_text(migrated.model_dump_json(), encoding="utf-8")
    assert list_versions(registry) == [migrated]  # the old champion and its copy: one version
    assert champion_model_dir(registry) == copy / "model"
    new = promote(registry, _record("new", set()), _model_dir(tmp_path, b"new"))
    assert new.version == "v0002" and not (registry / "champion").exists()
    assert [v.version for v in list_versions(registry)] == ["v0001", "v0002"]


def test_test_set_hash_depends_on_sentences_and_labels() -> None:
    assert hash_test_set(["a", "b"], [0, 1]) != hash_test_set(["a", "b"], [1, 1])
    assert hash_test_set(["a", "b"], [0, 1]) != hash_test_set(["a", "c"], [0, 1])


def _champion_in(registry: Path, record: ModelRecord) -> None:
    champion_model_dir(registry).mkdir(parents=True)
    (registry / "champion.json").write_text(record.model_dump_json(), encoding="utf-8")


def _evaluation(wrong: set[int]):
    from sentiment_lora.training.evaluation import evaluate_probabilities

    probs = [float(1 - y if i in wrong else y) for i, y in enumerate(LABELS)]
    return evaluate_probabilities("challenger", LABELS, probs)


def _model_dir(tmp_path: Path, weights: bytes) -> Path:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "adapter_model.safetensors").write_bytes(weights)
    return model_dir


def test_model_key_is_the_weights_identity(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for path, weights in ((a, b"w1"), (b, b"w2")):
        path.mkdir()
        (path / "adapter_model.safetensors").write_bytes(weights)
    assert model_key(a) == model_key(a) != model_key(b)


def test_challenge_rescores_the_champion_only_when_the_test_set_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentiment_lora.training import inference

    loaded: list[tuple[Path, dict]] = []

    class AlwaysWrong:  # the champion, re-scored: wrong on every sentence
        def predict_proba(self, texts: list[str]) -> np.ndarray:
            p = np.array([float(1 - y) for y in LABELS])
            return np.stack([1 - p, p], axis=1)

    def load(model_dir: Path, **options: object) -> AlwaysWrong:
        loaded.append((Path(model_dir), options))
        return AlwaysWrong()

    monkeypatch.setattr(inference, "load_analyzer", load)
    sentences = [f"sentence {i}" for i in range(len(LABELS))]
    registry = tmp_path / "registry"
    stale = _record("old", set()).model_copy(update={"test_set_hash": "another-test-set"})
    _champion_in(registry, stale)  # perfect on its own (old) test set
    decision = challenge_champion(
        _evaluation({0, 1, 2}),
        model_dir=_model_dir(tmp_path, b"new"),
        run_id="run-new",
        sentences=sentences,
        registry_dir=registry,
        alpha=0.05,
        inference_options={"batch_size": 8},
    )
    assert loaded == [(champion_model_dir(registry), {"batch_size": 8})]
    assert decision.promoted, decision.reason  # 97% against the re-scored champion's 0%
    assert decision.challenger.model_key == model_key(tmp_path / "model")

    loaded.clear()
    (registry / "champion.json").write_text(
        stale.model_copy(
            update={"test_set_hash": decision.challenger.test_set_hash}
        ).model_dump_json(),
        encoding="utf-8",
    )
    kept = challenge_champion(
        _evaluation({0, 1, 2}),
        model_dir=tmp_path / "model",
        run_id="run-new",
        sentences=sentences,
        registry_dir=registry,
        alpha=0.05,
    )
    assert loaded == []  # same test set: the stored predictions are compared
    assert not kept.promoted


def test_gate_summary_drops_predictions_and_renders_as_markdown() -> None:
    decision = decide(_record("b", {1}), _record("a", {1, 2, 3}), labels=LABELS)
    summary = decision.summary()
    assert "predictions" not in summary.model_dump()["challenger"]
    assert summary.challenger.test_accuracy == decision.challenger.test_accuracy
    markdown = gate_markdown(decision)
    assert "| config | b | a |" in markdown and decision.reason in markdown
    assert "| run | run-b | - |" in gate_markdown(decide(_record("b", set()), None, labels=LABELS))


def test_a_slice_regression_blocks_an_overall_better_challenger() -> None:
    sentences = [
        f"it is not {w} at all" if i % 4 == 0 else f"a plain {w} sentence number {i}"
        for i, w in enumerate(["good", "bad"] * 50)
    ]
    negation = {i for i, s in enumerate(sentences) if " not " in s}
    others = set(range(len(LABELS))) - negation
    champion = _record("champ", set(sorted(others)[:40]))  # 60% right, right on every negation
    challenger = _record("chall", negation)  # 75% right, wrong on every negation sentence
    blocked = decide(challenger, champion, labels=LABELS, sentences=sentences)
    assert not blocked.promoted
    assert blocked.slices is not None and "negation" in blocked.slices.regressions
    assert blocked.reason.startswith("worse on a slice") and "negation" in blocked.reason
    assert any(r.startswith("non-inferior on test") for r in blocked.reasons)
    allowed = decide(challenger, champion, labels=LABELS, sentences=sentences, slice_rule=False)
    assert allowed.promoted and any("slice rule is off" in r for r in allowed.reasons)
    without = decide(challenger, champion, labels=LABELS)
    assert without.promoted and without.slices is None


def test_a_version_directory_must_match_its_record(tmp_path: Path) -> None:
    registry = tmp_path / "reg"
    promote(registry, _record("a", set()), _model_dir(tmp_path, b"w"))
    (registry / "versions" / "v0001").rename(registry / "versions" / "v0007")
    with pytest.raises(ValueError, match="records version v0001, not v0007"):
        list_versions(registry)


def _version(registry: Path, name: str) -> None:
    """Promote model ``name`` (its weights are its name)."""
    (registry.parent / name).mkdir()
    promote(registry, _record(name, set()), _model_dir(registry.parent / name, name.encode()))


def _two_versions(tmp_path: Path) -> Path:
    registry = tmp_path / "reg"
    _version(registry, "a")
    _version(registry, "b")
    return registry


def _cut(path: Path, size: int = 60) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _retype(path: Path, **changes: object) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: _cut(r / "champion.json"), r"champion\.json: Invalid JSON: EOF while parsing"),
        (
            lambda r: _retype(r / "champion.json", test_accuracy="high"),
            r"champion\.json: test_accuracy: Input should be a valid number",
        ),
        (
            lambda r: (r / "champion.json").write_text("[]"),
            r"champion\.json: Input should be an object",
        ),
        (
            lambda r: _cut(r / "versions" / "v0001" / "record.json"),
            r"v0001/record\.json: Invalid JSON: EOF while parsing",
        ),
        (
            lambda r: _retype(r / "versions" / "v0001" / "record.json", predictions="all"),
            r"v0001/record\.json: predictions: Input should be a valid list",
        ),
        (
            lambda r: (r / "versions" / "v0001" / "record.json").unlink(),
            r"v0001/record\.json: cannot be read \(No such file or directory\)",
        ),
    ],
    ids=["champion cut", "champion retyped", "champion a list", "record cut", "record retyped",
         "record missing"],
)  # fmt: skip
def test_a_damaged_registry_file_is_named(tmp_path: Path, damage, message: str) -> None:
    registry = _two_versions(tmp_path)
    damage(registry)
    with pytest.raises(RegistryError, match=message) as raised:
        list_versions(registry)
        read_champion(registry)
    assert "\n" not in str(raised.value)
    assert "restore it from a backup" in str(raised.value)


def test_a_champion_without_its_model_is_not_served(tmp_path: Path) -> None:
    assert served_model_dir(tmp_path / "empty") is None  # no champion: the caller decides
    registry = _two_versions(tmp_path)
    assert served_model_dir(registry) == registry / "versions" / "v0002" / "model"
    shutil.rmtree(registry / "versions" / "v0002" / "model")
    with pytest.raises(RegistryError, match=r"champion\.json: the champion v0002 has no model"):
        served_model_dir(registry)
    shutil.rmtree(registry / "versions" / "v0002")
    with pytest.raises(RegistryError, match=r"the champion v0002 is not in .*versions; make"):
        check_champion(registry)


def test_rollback_repairs_a_lost_champion_but_not_to_a_lost_version(tmp_path: Path) -> None:
    registry = _two_versions(tmp_path)
    shutil.rmtree(registry / "versions" / "v0001" / "model")
    with pytest.raises(ValueError, match="version: v0001 has no model directory"):
        rollback(registry, "v0001", reason="v0002 is lost")
    _version(registry, "c")
    shutil.rmtree(registry / "versions" / "v0003")
    assert rollback(registry, "v0002", reason="v0003 is lost").version == "v0002"
    assert served_model_dir(registry) == registry / "versions" / "v0002" / "model"


def _export(passed: bool) -> ExportCheck:
    from sentiment_lora.deployment.export_check import compare_export

    src = np.stack([[0.1, 0.9], [0.9, 0.1]] * 50)
    exp = src if passed else np.stack([[0.9, 0.1], [0.1, 0.9]] * 5 + [[0.1, 0.9], [0.9, 0.1]] * 45)
    return compare_export(src, exp, LABELS, export_dir="x", quantize="int8")


def test_a_failed_export_check_refuses_the_promotion() -> None:
    promoted = decide(_record("b", {1}), _record("a", {1, 2, 3}), labels=LABELS)
    refused = with_export_check(promoted, _export(passed=False))
    assert promoted.promoted and not refused.promoted
    assert refused.reason.startswith("refused: int8 ONNX export loses 10.00 accuracy points")
    assert refused.export_check is not None and refused.reasons[1:] == promoted.reasons
    assert refused.summary().export_check == refused.export_check  # recorded in the results


def test_a_passed_export_check_keeps_the_decision_and_says_so() -> None:
    promoted = decide(_record("b", {1}), _record("a", {1, 2, 3}), labels=LABELS)
    checked = with_export_check(promoted, _export(passed=True))
    assert checked.promoted and checked.reason == promoted.reason
    assert checked.reasons[-1].startswith("int8 ONNX export keeps the accuracy")
