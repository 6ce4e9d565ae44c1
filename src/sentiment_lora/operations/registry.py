"""Model registry with a champion/challenger gate.

The registry directory holds ``champion.json`` (run id, config, model key, test metrics and
test predictions) and ``champion/`` (the champion's model files). A new run's best model (the
challenger) replaces the champion only if there is none, or if it is better on test macro-F1
and not significantly worse by McNemar's test on the same test sentences.
"""

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sentiment_lora.evidence.stats import McNemarResult, mcnemar_test
from sentiment_lora.io import atomic_write_text
from sentiment_lora.training.evaluation import Evaluation

CHAMPION_FILE = "champion.json"
CHAMPION_MODEL_DIR = "champion"


class ModelRecord(BaseModel):
    """A model as the gate sees it: where it came from and how it did on the test set."""

    model_config = ConfigDict(frozen=True)
    run_id: str
    config_name: str
    model_key: str  # identity of the trained model (its cache key); equal keys = same model
    test_accuracy: float
    test_f1_macro: float
    test_set_hash: str
    predictions: list[int]
    promoted_at: str | None = None


class GateDecision(BaseModel):
    """Whether the challenger became champion, and why."""

    model_config = ConfigDict(frozen=True)
    promoted: bool
    reason: str
    challenger: ModelRecord
    champion: ModelRecord | None
    mcnemar: McNemarResult | None
    alpha: float
    unchanged: bool  # the challenger is the champion's model (same data and parameters)


def hash_test_set(sentences: Sequence[str], labels: Sequence[int]) -> str:
    """Identity of a test set: hash of its sentences and labels, in order."""
    digest = hashlib.sha256()
    for sentence, label in zip(sentences, labels, strict=True):
        digest.update(f"{sentence}\t{int(label)}\n".encode())
    return digest.hexdigest()[:16]


def model_record(
    evaluation: Evaluation, *, run_id: str, model_key: str, sentences: Sequence[str]
) -> ModelRecord:
    """The gate's view of a model from its test evaluation."""
    return ModelRecord(
        run_id=run_id,
        config_name=evaluation.model_name,
        model_key=model_key,
        test_accuracy=evaluation.metrics.accuracy,
        test_f1_macro=evaluation.metrics.f1_macro,
        test_set_hash=hash_test_set(sentences, evaluation.labels),
        predictions=evaluation.predictions,
    )


def read_champion(registry_dir: Path | str) -> ModelRecord | None:
    """The current champion, or None if the registry is empty."""
    path = Path(registry_dir) / CHAMPION_FILE
    if not path.is_file():
        return None
    return ModelRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))


def champion_model_dir(registry_dir: Path | str) -> Path:
    """Directory of the champion's model files (may not exist yet)."""
    return Path(registry_dir) / CHAMPION_MODEL_DIR


def decide(
    challenger: ModelRecord,
    champion: ModelRecord | None,
    *,
    labels: Sequence[int],
    champion_predictions: Sequence[int] | None = None,
    alpha: float = 0.05,
) -> GateDecision:
    """Apply the gate. ``champion_predictions`` on the current test set are needed only when
    the champion was scored on a different test set (then its metrics are recomputed)."""

    def result(promoted: bool, reason: str, **kw) -> GateDecision:
        return GateDecision(
            promoted=promoted,
            reason=reason,
            challenger=challenger,
            champion=champion,
            alpha=alpha,
            mcnemar=kw.get("mcnemar"),
            unchanged=kw.get("unchanged", False),
        )

    if champion is None:
        return result(True, "no champion yet: the first model becomes champion")
    if challenger.model_key == champion.model_key:
        return result(
            False,
            f"unchanged: data and parameters are those of the champion (run {champion.run_id}); "
            "the model came from the cache",
            unchanged=True,
        )
    if champion.test_set_hash == challenger.test_set_hash:
        champ_preds = champion.predictions
    elif champion_predictions is not None:
        champ_preds = list(champion_predictions)
    else:
        raise ValueError("champion_predictions: the test set changed; re-score the champion on it")
    champ_correct = [int(p == y) for p, y in zip(champ_preds, labels, strict=True)]
    chall_correct = [int(p == y) for p, y in zip(challenger.predictions, labels, strict=True)]
    test = mcnemar_test(chall_correct, champ_correct)
    champ_acc = sum(champ_correct) / len(champ_correct)
    champ_f1 = champion.test_f1_macro
    if champion.test_set_hash != challenger.test_set_hash:
        from sentiment_lora.training.evaluation import classification_metrics

        champ_f1 = classification_metrics(labels, [float(p) for p in champ_preds]).f1_macro
    worse = test.pvalue < alpha and challenger.test_accuracy < champ_acc
    if worse:
        return result(
            False,
            f"significantly worse than the champion (McNemar p={test.pvalue:.3g} < {alpha}; "
            f"accuracy {challenger.test_accuracy:.4f} vs {champ_acc:.4f})",
            mcnemar=test,
        )
    if challenger.test_f1_macro > champ_f1:
        return result(
            True,
            f"better test macro-F1 ({challenger.test_f1_macro:.4f} vs {champ_f1:.4f}) and not "
            f"significantly worse (McNemar p={test.pvalue:.3g})",
            mcnemar=test,
        )
    return result(
        False,
        f"not better on test macro-F1 ({challenger.test_f1_macro:.4f} vs {champ_f1:.4f})",
        mcnemar=test,
    )


def promote(registry_dir: Path | str, record: ModelRecord, model_dir: Path | str) -> ModelRecord:
    """Make ``record`` the champion: copy its model files, then write ``champion.json``."""
    registry_dir = Path(registry_dir)
    registry_dir.mkdir(parents=True, exist_ok=True)
    target = champion_model_dir(registry_dir)
    tmp = registry_dir / f".{CHAMPION_MODEL_DIR}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_dir, tmp)
    old = registry_dir / f".{CHAMPION_MODEL_DIR}.{os.getpid()}.old"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    promoted = record.model_copy(
        update={"promoted_at": datetime.now(UTC).isoformat(timespec="seconds")}
    )
    atomic_write_text(registry_dir / CHAMPION_FILE, promoted.model_dump_json(indent=2))
    return promoted
