"""Dropout with a cheaper random mask for training on CPU.

torch's CPU dropout draws one 32-bit Mersenne-Twister number per element through
``bernoulli_`` (its vectorised MKL path is taken on Intel CPUs only). With LoRA's short
batches that is a quarter of a training step: ~1 ms for each of the ~30 masks a MiniLM step
draws (bench/RESULTS.md). :class:`FastDropout` keeps the same rate, scaling and random
generator, but splits each 64-bit draw into four 16-bit lanes and drops an element when its
lane falls below ``round(p * 65536)``: a drop probability within 1/131072 of ``p`` (0.1 ->
0.100006), at less than half the cost for forward and backward together. The attention
probabilities' dropout happens inside SDPA, so a model on SDPA attention is switched to an
attention function (registered with transformers' ``AttentionInterface``) that computes the
same softmax(QK^T)V with this mask while training and calls SDPA unchanged otherwise.

The swap changes no parameter, so saved adapters and evaluation are unaffected; in eval mode
the module is the identity, as ``nn.Dropout`` is.
"""

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

LANES = 65536  # values of one 16-bit lane


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """Boolean mask of ``shape``: True (keep) with probability ``1 - round(p*65536)/65536``."""
    count = shape.numel()
    draws = torch.empty((count + 3) // 4, dtype=torch.int64, device=device)
    draws.random_(-(2**63), None)  # all 64 bits uniform
    lanes = draws.view(torch.int16)[:count].view(shape)  # uniform in [-32768, 32767]
    return lanes >= round(p * LANES) - LANES // 2


class _MaskedScale(torch.autograd.Function):
    """``x * mask / (1 - p)``, with the mask kept for the backward pass (as torch's dropout
    keeps its own). The mask is stored as 0/1 in ``x``'s dtype: same-dtype products are
    vectorised, while a boolean mask costs ~8x more on this CPU. The scale is applied as a
    Python float (computed in fp32), since ``1 / (1 - p)`` in bf16 would be off by up to 0.2%."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:  # noqa: D102
        keep = keep_mask(x.shape, p, x.device)
        one = torch.ones((), dtype=x.dtype, device=x.device)
        mask = torch.where(keep, one, torch.zeros_like(one))
        ctx.save_for_backward(mask)
        ctx.scale = 1.0 / (1.0 - p)
        return (x * mask).mul_(ctx.scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        (mask,) = ctx.saved_tensors
        return (grad * mask).mul_(ctx.scale), None


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with the cheaper mask of :func:`keep_mask` in training mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return torch.zeros_like(x)
        if self.inplace:
            raise ValueError("FastDropout: inplace dropout is not supported")
        return _MaskedScale.apply(x, self.p)


FAST_DROPOUT_ATTENTION = "sdpa_fast_dropout"


def _attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, with the attention-probability dropout done by
    :class:`_MaskedScale` when training (SDPA's own dropout calls ``bernoulli_``)."""
    if dropout == 0.0:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=0.0, scaling=scaling, **kwargs
        )
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None and attention_mask.dtype == torch.bool:  # True = attend
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    elif attention_mask is not None:  # additive float mask
        scores = scores + attention_mask
    probs = _MaskedScale.apply(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def use_fast_dropout(model: nn.Module) -> int:
    """Make ``model``'s dropout cheaper on CPU, in place, at the same rates: every plain
    ``nn.Dropout`` becomes a :class:`FastDropout`, and a transformers model on SDPA attention
    switches to :func:`_attention`. Returns how many modules were replaced."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout and not child.inplace:
                fast = FastDropout(child.p)
                fast.train(child.training)
                setattr(parent, name, fast)
                replaced += 1
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) == "sdpa":
        AttentionInterface.register(FAST_DROPOUT_ATTENTION, _attention)
        AttentionMaskInterface.register(FAST_DROPOUT_ATTENTION, sdpa_mask)
        model.set_attn_implementation(FAST_DROPOUT_ATTENTION)
    return replaced
