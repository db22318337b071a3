"""Optimiser parameter groups: weight decay on weight matrices only.

Decay pulls a parameter towards zero. That regularises the weight matrices of linear (and
convolution) layers, but on a LayerNorm or batch-norm scale it shrinks the normalised activations,
on a bias it shifts them, and on a learned token (class token, mask token) or an embedding table it
erases what was learned; ParT, timm and nanoGPT all exempt them.
"""

from __future__ import annotations

from typing import Any

from torch import nn

# Layers whose `weight` is a matrix that weight decay regularises.
_DECAYED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Bilinear)


def parameter_groups(model: nn.Module, weight_decay: float, **options: Any) -> list[dict[str, Any]]:
    """AdamW groups of the trainable parameters of ``model``: the ``weight`` of linear and
    convolution layers with ``weight_decay``, everything else (biases, norm scales and shifts,
    learned tokens, embedding tables) with none. ``options`` (e.g. ``lr_scale=0.1``) go into both
    groups, so a model's parts can get different learning rates::

        groups = parameter_groups(classifier.encoder, 0.01, lr_scale=0.1) + parameter_groups(classifier.head, 0.01)

    A parameter shared by several modules is listed once; empty groups are left out.
    """
    decayed = {id(m.weight) for m in model.modules() if isinstance(m, _DECAYED)}
    groups: dict[bool, list[nn.Parameter]] = {True: [], False: []}
    for param in model.parameters():  # parameters() yields each shared parameter once
        if param.requires_grad:
            groups[id(param) in decayed].append(param)
    rates = {True: weight_decay, False: 0.0}
    return [{"params": params, "weight_decay": rates[decay], **options} for decay, params in groups.items() if params]
