"""FastDropout: the same dropout rate and scaling as torch's, at a lower cost on CPU."""

from pathlib import Path

import pytest
import torch
from torch import nn

from sentiment_lora.config import LoraHyperparams
from sentiment_lora.training.dropout import (
    FAST_DROPOUT_ATTENTION,
    FastDropout,
    keep_mask,
    use_fast_dropout,
)
from sentiment_lora.training.modeling import (
    add_lora,
    load_classifier,
    load_tokenizer,
    resolve_model_source,
)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_keep_mask_drops_at_the_requested_rate(p: float) -> None:
    torch.manual_seed(0)
    mask = keep_mask(torch.Size([1000, 1000]), p, torch.device("cpu"))
    assert mask.dtype == torch.bool and mask.shape == (1000, 1000)
    # 1e6 draws: the standard error of the rate is < 0.0005.
    assert abs((~mask).float().mean().item() - p) < 0.002
    # no structure across the four lanes of one 64-bit draw
    lanes = (~mask).reshape(-1, 4).float().mean(dim=0)
    assert torch.all((lanes - p).abs() < 0.004)


def test_keep_mask_follows_the_seed() -> None:
    torch.manual_seed(1)
    a = keep_mask(torch.Size([64, 33]), 0.1, torch.device("cpu"))
    torch.manual_seed(1)
    b = keep_mask(torch.Size([64, 33]), 0.1, torch.device("cpu"))
    assert torch.equal(a, b)


def test_fast_dropout_scales_kept_values_and_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(32, 50, requires_grad=True)
    layer = FastDropout(0.25)
    y = layer(x)
    kept = y != 0
    assert 0.15 < 1 - kept.float().mean().item() < 0.35
    assert torch.allclose(y[kept], x[kept] / 0.75)
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(grad, kept.float() / 0.75)
    layer.eval()
    assert torch.equal(layer(x), x)


def _tiny_inputs(source: str) -> dict[str, torch.Tensor]:
    tokenizer = load_tokenizer(source)
    texts = ["a good movie", "an utterly boring film with nothing to recommend it at all"]
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))


@pytest.mark.parametrize("which", ["embedded", "distilbert"])
def test_swap_keeps_the_model_function(which: str, tiny_distilbert_dir: Path) -> None:
    """Every dropout is replaced at its rate; eval outputs are unchanged, and in training mode
    with the rates set to 0 the switched attention computes what SDPA computes."""
    source = resolve_model_source("embedded") if which == "embedded" else str(tiny_distilbert_dir)
    hp = LoraHyperparams(name="t", learning_rate=1e-3, epochs=1, lora_dropout=0.1)
    torch.manual_seed(0)
    model = add_lora(load_classifier(source), hp)
    inputs = _tiny_inputs(source)
    rates = sorted(m.p for m in model.modules() if isinstance(m, nn.Dropout))
    model.eval()
    with torch.no_grad():
        reference = model(**inputs).logits

    replaced = use_fast_dropout(model)

    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert replaced == len(dropouts) > 0
    assert all(type(m) is FastDropout for m in dropouts)
    assert sorted(m.p for m in dropouts) == rates
    assert model.config._attn_implementation == FAST_DROPOUT_ATTENTION
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, reference, atol=1e-6)
        model.train()
        for m in dropouts:
            m.p = 1e-9  # training-mode code path, (almost) nothing dropped
        assert torch.allclose(model(**inputs).logits, reference, atol=1e-5)
        for m in dropouts:
            m.p = 0.5
        assert not torch.allclose(model(**inputs).logits, reference, atol=1e-3)


def test_bf16_activations_are_scaled_like_torch_dropout() -> None:
    """Kept values equal torch's own dropout arithmetic in bf16 (scale not rounded to bf16)."""
    torch.manual_seed(0)
    x = torch.randn(64, 384).bfloat16()
    y = FastDropout(0.1)(x)
    kept = y != 0
    expected = (x.float() * (1 / 0.9)).bfloat16()
    assert y.dtype == torch.bfloat16
    assert torch.equal(y[kept], expected[kept])
