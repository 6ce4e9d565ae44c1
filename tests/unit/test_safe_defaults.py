"""Safe defaults: loopback-only servers, safetensors-only loading, no path escapes."""

import inspect
import runpy
from pathlib import Path

import pytest

from sentiment_lora.cli import build_parser
from sentiment_lora.config import LoraHyperparams
from sentiment_lora.paths import safe_name
from sentiment_lora.reporting import server as report_server
from sentiment_lora.training import modeling

ROOT = Path(__file__).resolve().parents[2]


def test_report_server_binds_loopback_by_default() -> None:
    assert inspect.signature(report_server.serve).parameters["host"].default == "127.0.0.1"
    args = build_parser().parse_args(["serve-reports"])
    assert args.host == "127.0.0.1"


def test_prefect_stack_binds_loopback_by_default() -> None:
    stack = runpy.run_path(str(ROOT / "scripts" / "prefect_stack.py"))
    env = stack["stack_env"](Path("/tmp/x"), 4200)
    assert env["PREFECT_SERVER_API_HOST"] == "127.0.0.1"
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"


def test_models_never_trust_remote_code_and_load_safetensors_only() -> None:
    source = inspect.getsource(modeling)
    assert "trust_remote_code=True" not in source
    assert "use_safetensors=True" in inspect.getsource(modeling.load_classifier)


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden", "", "a b"])
def test_names_from_parameters_cannot_escape(name: str) -> None:
    with pytest.raises(ValueError):
        safe_name(name)
    with pytest.raises(ValueError):
        LoraHyperparams(name=name, learning_rate=1e-3, epochs=1)
