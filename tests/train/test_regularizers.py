"""KL and EWC: zero where they must be, positive after a step, matching a hand computation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from cpt.train.regularizers import EWC, KLToReference


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=64, max_position_embeddings=64)
    return LlamaForCausalLM(config)


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 64, (2, 12), generator=g)


def test_kl_is_zero_for_the_reference_itself_and_positive_after_a_step(tiny):
    ref = copy.deepcopy(tiny)
    kl = KLToReference(ref, weight=1.0, temperature=2.0)
    ids = batch()
    assert kl(tiny(input_ids=ids).logits, ids).item() == pytest.approx(0.0, abs=1e-6)

    opt = torch.optim.SGD(tiny.parameters(), lr=1.0)
    out = tiny(input_ids=ids, labels=ids)
    out.loss.backward()
    opt.step()
    value = kl(tiny(input_ids=ids).logits, ids)
    assert value.item() > 1e-4
    value.backward()  # the term has a gradient for the trained model only
    assert all(p.grad is None for p in ref.parameters())


def test_kl_general_only_masks_domain_sequences(tiny):
    ref = copy.deepcopy(tiny)
    with torch.no_grad():
        for p in tiny.parameters():
            p.add_(0.05)
    ids = batch()
    kl = KLToReference(ref, weight=1.0, general_only=True)
    none = kl(tiny(input_ids=ids).logits, ids, is_general=torch.tensor([False, False]))
    some = kl(tiny(input_ids=ids).logits, ids, is_general=torch.tensor([True, False]))
    assert none.item() == 0.0 and some.item() > 0


class TwoParams(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(1.0))
        self.b = nn.Parameter(torch.tensor(-2.0))


def test_ewc_penalty_zero_at_anchor_and_matches_hand_computation():
    model = TwoParams()
    fisher = {"a": torch.tensor(0.5), "b": torch.tensor(2.0)}
    ewc = EWC.from_model(model, fisher, weight=3.0)
    assert ewc.penalty(model).item() == 0.0
    with torch.no_grad():
        model.a.fill_(1.5)  # Δa = 0.5
        model.b.fill_(-1.0)  # Δb = 1.0
    expected = 3.0 * (0.5 * 0.5**2 + 2.0 * 1.0**2)
    assert ewc.penalty(model).item() == pytest.approx(expected)


def test_fisher_estimate_is_mean_of_squared_grads_and_reloads_identically(tiny, tmp_path):
    batches = [{"input_ids": batch(i)} for i in range(3)]
    fisher = EWC.estimate(tiny, batches)
    assert set(fisher) == {n for n, _ in tiny.named_parameters()}
    assert all((f >= 0).all() for f in fisher.values())
    assert sum(f.sum() for f in fisher.values()) > 0

    # by hand for the first batch alone
    one = EWC.estimate(tiny, batches[:1])
    tiny.zero_grad()
    ids = batches[0]["input_ids"]
    logits = tiny(input_ids=ids).logits[:, :-1]
    torch.nn.functional.cross_entropy(logits.reshape(-1, 64), ids[:, 1:].reshape(-1)).backward()
    name = "model.layers.0.mlp.up_proj.weight"
    assert torch.allclose(one[name], dict(tiny.named_parameters())[name].grad ** 2)

    ewc = EWC.from_model(tiny, fisher, weight=0.1)
    ewc.save(tmp_path / "ewc.safetensors")
    again = EWC.load(tmp_path / "ewc.safetensors")
    assert again.weight == 0.1
    for n in fisher:
        assert torch.equal(again.fisher[n], ewc.fisher[n]) and torch.equal(again.anchor[n], ewc.anchor[n])
    n_params = sum(p.numel() for p in tiny.parameters())
    assert ewc.memory_bytes == 2 * 4 * n_params


def test_sampled_fisher_differs_from_empirical(tiny):
    batches = [{"input_ids": batch(i)} for i in range(2)]
    emp = EWC.estimate(tiny, batches, mode="empirical")
    smp = EWC.estimate(tiny, batches, mode="sampled", generator=torch.Generator().manual_seed(1))
    name = "lm_head.weight"
    assert not torch.allclose(emp[name], smp[name])


def test_ewc_add_gradient_is_the_gradient_of_the_penalty(tiny):
    ewc = EWC.from_model(tiny, EWC.estimate(tiny, [{"input_ids": batch(i)} for i in range(2)]), weight=5.0)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in tiny.parameters():
            p.add_(0.01 * torch.randn_like(p))
    tiny.zero_grad(set_to_none=True)
    value = ewc.penalty(tiny)
    value.backward()
    by_autograd = {n: p.grad.clone() for n, p in tiny.named_parameters()}
    tiny.zero_grad(set_to_none=True)
    assert ewc.add_gradient(tiny) == pytest.approx(value.item(), rel=1e-5)  # from no gradient at all
    ewc.add_gradient(tiny)  # and added onto an existing one
    for n, p in tiny.named_parameters():
        torch.testing.assert_close(p.grad, 2 * by_autograd[n])
    assert value.item() > 0


def test_ewc_load_places_tensors_like_the_model_and_refuses_foreign_names(tiny, tmp_path):
    ewc = EWC.from_model(tiny, EWC.estimate(tiny, [{"input_ids": batch(0)}]), weight=2.0)
    ewc.save(tmp_path / "ewc.safetensors")
    placed = EWC.load(tmp_path / "ewc.safetensors", like=tiny)
    assert placed.weight == 2.0 and placed.penalty(tiny).item() == 0.0
    EWC.from_model(TwoParams(), {"a": torch.tensor(1.0)}, weight=1.0).save(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="does not have"):
        EWC.load(tmp_path / "other.safetensors", like=tiny)
