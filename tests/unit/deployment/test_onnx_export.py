"""ONNX export (merged LoRA, fp32 and int8) and the ONNX Runtime backend."""

from pathlib import Path

import numpy as np
import onnx
import pytest

from sentiment_lora.deployment import onnx_export
from sentiment_lora.deployment.export_check import check_export, compare_export
from sentiment_lora.deployment.onnx_export import ExportError, export_onnx
from sentiment_lora.deployment.onnx_inference import OnnxSentimentAnalyzer, is_onnx_export
from sentiment_lora.errors import UserError
from sentiment_lora.training.inference import SentimentAnalyzer

TEXTS = [
    "a truly great and moving film",
    "boring from start to finish",
    "ok",
    "the worst script in years but the actors try hard and the music is lovely " * 3,
]


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir: Path) -> Path:
    """The shared tiny LoRA model directory (tests/conftest.py)."""
    return tiny_model_dir


@pytest.fixture(scope="module")
def torch_probs(model_dir: Path) -> np.ndarray:
    return SentimentAnalyzer.load(model_dir, device="cpu", precision="fp32").predict_proba(TEXTS)


def test_fp32_export_gives_the_pytorch_probabilities(model_dir, torch_probs, tmp_path):
    result = export_onnx(model_dir, tmp_path / "onnx")
    assert is_onnx_export(result.out_dir)
    onnx_probs = OnnxSentimentAnalyzer(result.out_dir, batch_size=3).predict_proba(TEXTS)
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-5)


def test_predictions_have_the_pytorch_backend_format(model_dir, tmp_path):
    out = export_onnx(model_dir, tmp_path / "onnx").out_dir
    torch_preds = SentimentAnalyzer.load(model_dir, device="cpu", precision="fp32").predict(TEXTS)
    onnx_preds = OnnxSentimentAnalyzer(out).predict(TEXTS)
    assert [p.label for p in onnx_preds] == [p.label for p in torch_preds]
    assert onnx_preds[0].probabilities.keys() == torch_preds[0].probabilities.keys()


def test_int8_export_quantizes_the_matmuls(model_dir, torch_probs, tmp_path):
    fp32 = export_onnx(model_dir, tmp_path / "fp32")
    int8 = export_onnx(model_dir, quantize="int8")  # default location beside the model
    assert Path(int8.out_dir) == model_dir.with_name(model_dir.name + "-onnx-int8")
    ops = {node.op_type for node in onnx.load(Path(int8.out_dir) / "model.onnx").graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    assert int8.size_bytes < fp32.size_bytes
    probs = OnnxSentimentAnalyzer(int8.out_dir).predict_proba(TEXTS)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs, torch_probs, atol=0.05)


def test_a_failed_export_leaves_nothing(model_dir, tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(onnx_export, "_quantize_int8", broken)
    with pytest.raises(RuntimeError):
        export_onnx(model_dir, tmp_path / "out", quantize="int8")
    assert list(tmp_path.iterdir()) == []


def test_bad_sources_are_user_errors(model_dir, tmp_path):
    with pytest.raises(UserError, match="not a sentiment-lora model"):
        export_onnx(tmp_path, tmp_path / "out")
    out = export_onnx(model_dir, tmp_path / "onnx").out_dir
    with pytest.raises(ExportError, match="already an ONNX export"):
        export_onnx(out, tmp_path / "again")
    with pytest.raises(UserError, match="not an ONNX export"):
        OnnxSentimentAnalyzer(model_dir)
    (Path(out) / "model.onnx").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a loadable ONNX model"):
        OnnxSentimentAnalyzer(out)


def _probs(positive: list[float]) -> np.ndarray:
    p = np.asarray(positive)
    return np.stack([1 - p, p], axis=1)


def test_export_check_passes_an_export_that_keeps_the_accuracy():
    labels = [1, 0] * 50
    source = _probs([0.9, 0.1] * 50)
    check = compare_export(source, source, labels, export_dir="x", quantize="int8")
    assert check.passed and check.delta_points == 0 and check.label_agreement == 1


def test_export_check_fails_an_export_that_loses_accuracy():
    labels = [1, 0] * 50
    source = _probs([0.9, 0.1] * 50)
    export = _probs([0.9, 0.1] * 49 + [0.4, 0.6])  # one pair flipped: -2 points
    check = compare_export(source, export, labels, export_dir="x", quantize="int8")
    assert not check.passed and check.delta_points == -2.0
    assert "loses 2.00 accuracy points" in check.reason


def test_check_export_runs_both_backends(model_dir, tmp_path):
    check = check_export(model_dir, TEXTS, [1, 0, 1, 0], export_dir=tmp_path / "int8")
    assert check.quantize == "int8" and (tmp_path / "int8" / "model.onnx").is_file()
    assert 0 <= check.accuracy_export <= 1 and check.mcnemar.discordant >= 0


def _predict(args: list[str], capsys) -> list[dict]:
    import json

    from sentiment_lora.cli import main

    assert main(["predict", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_predict_backend_onnx_gives_the_torch_backend_output(model_dir, tmp_path, capsys):
    sentences = tmp_path / "in.txt"
    sentences.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    export_onnx(model_dir)  # beside the model: predict finds it from the model directory
    common = [str(sentences), "--model-dir", str(model_dir), "--precision", "fp32"]
    torch_rows = _predict(common, capsys)
    onnx_rows = _predict([*common, "--backend", "onnx"], capsys)
    assert [r["label"] for r in onnx_rows] == [r["label"] for r in torch_rows]
    for a, b in zip(onnx_rows, torch_rows, strict=True):
        assert a["text"] == b["text"]
        assert abs(a["confidence"] - b["confidence"]) < 1e-4


def test_predict_backend_onnx_without_an_export_says_what_to_run(model_dir, tmp_path, capsys):
    from sentiment_lora.cli import main

    bare = tmp_path / "model"
    import shutil

    shutil.copytree(model_dir, bare)
    (tmp_path / "in.txt").write_text("fine\n", encoding="utf-8")
    code = main(
        ["predict", str(tmp_path / "in.txt"), "--model-dir", str(bare), "--backend", "onnx"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "has no ONNX export; run `sentiment-lora export" in err and "Traceback" not in err
