"""The optimizer rules: AdamW's parameter groups and the LR of a phase, without a Trainer."""

import pytest
from torch import nn

from classit.optim import lr_factor, parameter_groups


def test_weight_decay_falls_on_matrices_but_not_on_embeddings_norms_and_biases():
    module = nn.ModuleDict({"embed_tokens": nn.Embedding(10, 4), "wpe": nn.Embedding(8, 4), "norm": nn.LayerNorm(4),
                            "proj": nn.Linear(4, 4)})
    decay, no_decay = parameter_groups(module, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert decay["params"] == [module["proj"].weight]
    assert {id(p) for p in no_decay["params"]} == {id(p) for n, p in module.named_parameters() if n != "proj.weight"}

    decay, no_decay = parameter_groups(module, 0.1, decay_embeddings=True)  # fine-tuning's choice
    assert {id(p) for p in decay["params"]} == {id(module[n].weight) for n in ("embed_tokens", "wpe", "proj")}
    assert {id(p) for p in no_decay["params"]} == {id(p) for p in module["norm"].parameters()} | {id(module["proj"].bias)}


def test_a_tied_parameter_is_in_one_group_once():
    module = nn.ModuleDict({"emb": nn.Embedding(10, 4), "head": nn.Linear(4, 10, bias=False)})
    module["head"].weight = module["emb"].weight
    decay, no_decay = parameter_groups(module, 0.1)
    assert decay["params"] == [] and no_decay["params"] == [module["emb"].weight]


def test_the_lr_warms_up_then_reaches_its_floor_at_the_last_step():
    total, warmup = 100, 0.1
    factors = [lr_factor(step, total, warmup, 0.1) for step in range(total)]
    assert factors[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert factors[10] == 1.0
    assert factors[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert lr_factor(total + 5, total, warmup, 0.1) == pytest.approx(0.1)  # held at the floor after the phase


@pytest.mark.parametrize("decay, middle", [("linear", 0.55), ("constant", 1.0)])
def test_linear_and_constant_decay(decay, middle):
    assert lr_factor(5, 11, 0.0, 0.1, decay) == pytest.approx(middle)
    assert lr_factor(10, 11, 0.0, 0.1, decay) == pytest.approx(0.1 if decay == "linear" else 1.0)


def test_a_one_step_phase_runs_at_its_peak():
    assert lr_factor(0, 1, 0.0, 0.1) == 1.0
