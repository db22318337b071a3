"""Optimiser parameter groups: weight decay on weight matrices, never on norms, biases, tokens."""

from __future__ import annotations

import torch
from torch import nn

from jetfm.backbone.optim import parameter_groups
from jetfm.backbone.pretrain.base import create_objective
from jetfm.backbone.registry import create_model


def mpm_objective() -> nn.Module:
    torch.manual_seed(0)
    return create_objective("mpm", create_model("tiny", max_particles=16), num_codes=16)


def test_decay_only_on_linear_weights():
    model = mpm_objective()
    names = {id(p): n for n, p in model.named_parameters()}
    groups = parameter_groups(model, 0.05)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    decayed, exempt = ({names[id(p)] for p in g["params"]} for g in groups)
    linear_weights = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    assert decayed == linear_weights
    assert decayed | exempt == set(names.values()) and not decayed & exempt  # every parameter, once
    for name in ("encoder.class_token", "mask_token", "rank_embedding.weight", "encoder.jet_norm.weight"):
        assert name in exempt
    norms = [n for n, m in model.named_modules() if "Norm" in type(m).__name__]
    assert norms and all(f"{n}.weight" in exempt and f"{n}.bias" in exempt for n in norms)  # LayerNorm + batch norms
    assert all(n in exempt for n in names.values() if n.endswith(".bias"))


def test_adamw_leaves_exempt_parameters_alone_and_shrinks_weights():
    """With zero gradients, AdamW's only update is the decay: it must shrink weight matrices and leave
    the class token, the norms' scales and the biases exactly where they were."""
    model = mpm_objective()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(parameter_groups(model, weight_decay=0.5), lr=0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    after = dict(model.named_parameters())
    for name in ("encoder.class_token", "encoder.particle_norm.weight", "encoder.pair_embed.mlp.1.weight"):
        assert torch.equal(after[name], before[name]), name
    assert torch.equal(after["encoder.blocks.0.attn.proj.bias"], before["encoder.blocks.0.attn.proj.bias"])
    weight = "encoder.blocks.0.attn.proj.weight"
    torch.testing.assert_close(after[weight], before[weight] * (1 - 0.1 * 0.5))


def test_options_frozen_and_shared_parameters():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.LayerNorm(3), layer)  # the Linear is used twice
    model[1].weight.requires_grad_(False)
    groups = parameter_groups(model, 0.01, lr_scale=0.1)
    assert all(g["lr_scale"] == 0.1 for g in groups)
    assert [len(g["params"]) for g in groups] == [1, 2]  # layer.weight; layer.bias and the LayerNorm bias
    only_norm = parameter_groups(nn.LayerNorm(3), 0.01)  # the empty decayed group is left out
    assert len(only_norm) == 1 and only_norm[0]["weight_decay"] == 0.0 and len(only_norm[0]["params"]) == 2
