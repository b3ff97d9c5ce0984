"""Representation change over checkpoints (issue 28, item 2): the probe set, the hidden states of one batched forward,
linear CKA against the kernel formula on real hidden states and its invariances, effective rank, repr.csv's rows,
and the probe-file and mixed-checkpoint faults."""

import math

import pytest
import torch
from helpers import model_folder

from classit import layout
from classit.data.tokenizer import load_tokenizer
from classit.dynamics.probe import dev_sentences, probe_sentences, read_probe, write_probe
from classit.dynamics.representation import (COLUMNS, effective_rank, hidden_states, linear_cka, plot_representation,
                                             representation_rows)


@pytest.fixture(scope="module")
def probe(data_root) -> list[str]:
    return probe_sentences(layout.split_dir(data_root, "dev"), count=24)


@pytest.fixture(scope="module")
def states(model, tiny_model_dir, probe) -> list[torch.Tensor]:
    return hidden_states(model, load_tokenizer(tiny_model_dir), probe, 8, torch.device("cpu"))


def kernel_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """CKA the other way: the token Gram matrices K = XXᵀ, L = YYᵀ centred (HKH with H = I - 11ᵀ/n),
    HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with HSIC(K, L) = tr(KL) of the centred ones."""
    x, y = x.double(), y.double()
    n = x.shape[0]
    h = torch.eye(n, dtype=torch.float64) - 1.0 / n
    k, l_ = h @ (x @ x.T) @ h, h @ (y @ y.T) @ h

    def hsic(a, b):
        return torch.trace(a @ b)

    return float(hsic(k, l_) / torch.sqrt(hsic(k, k) * hsic(l_, l_)))


def test_probe_is_seeded_sentences_of_the_dev_set(data_root, tmp_path):
    dev = layout.split_dir(data_root, "dev")
    first, again, other = probe_sentences(dev, 50, 0), probe_sentences(dev, 50, 0), probe_sentences(dev, 50, 1)
    assert first == again and first != other and len(set(first)) == 50
    every = set(dev_sentences(dev))
    assert set(first) <= every and all(5 <= len(s.split()) <= 40 and "= = =" not in s for s in first)
    write_probe(first, tmp_path / "probe.txt")
    assert read_probe(tmp_path / "probe.txt") == first
    assert len((tmp_path / "probe.txt").read_text().splitlines()) == 50


@pytest.mark.parametrize("content, says", [(b"", "empty probe file"), (b"\n  \n", "empty probe file"),
                                           (b"a sentence\x00here\n", "NUL byte"),
                                           (b"caf\xe9 au lait\n", "not UTF-8 at byte 3")])
def test_a_probe_file_empty_or_not_text_stops_naming_it(tmp_path, content, says):
    path = tmp_path / "probe.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        read_probe(path)
    assert str(error.value).startswith(f"{path}: ") and says in str(error.value) and "\n" not in str(error.value)


def test_hidden_states_are_every_token_of_every_layer_unchanged_by_padding(model, tiny_model_dir, probe, states):
    tokenizer = load_tokenizer(tiny_model_dir)
    lengths = [len(ids) for ids in tokenizer(probe)["input_ids"]]
    assert len(states) == model.config.num_hidden_layers + 1
    assert all(x.shape == (sum(lengths), model.config.hidden_size) for x in states)
    alone = [hidden_states(model, tokenizer, [s], 1, torch.device("cpu")) for s in probe[:4]]
    start = 0
    for sentence_states, n in zip(alone, lengths):
        for layer, x in zip(states, sentence_states):
            torch.testing.assert_close(layer[start:start + n], x, atol=1e-5, rtol=1e-5)
        start += n
    # index 0 = the embeddings of the tokens, BOS first
    ids = tokenizer(probe[0])["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    torch.testing.assert_close(states[0][:len(ids)], model.get_input_embeddings().weight[ids].detach())


def test_one_forward_per_batch_gives_every_layer(model, tiny_model_dir, probe):
    calls = {"model": 0, "layer": 0}
    hooks = [model.base_model.register_forward_hook(lambda *_: calls.__setitem__("model", calls["model"] + 1)),
             model.base_model.layers[0].register_forward_hook(
                 lambda *_: calls.__setitem__("layer", calls["layer"] + 1))]
    try:
        hidden_states(model, load_tokenizer(tiny_model_dir), probe, 5, torch.device("cpu"))
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == {"model": math.ceil(len(probe) / 5), "layer": math.ceil(len(probe) / 5)}


def test_linear_cka_equals_the_kernel_formula_on_real_hidden_states(states):
    for x, y in ((states[0], states[1]), (states[1], states[2]), (states[0], states[2])):
        assert linear_cka(x, y) == pytest.approx(kernel_cka(x, y), abs=1e-10)
    assert 0.05 < linear_cka(states[0], states[2]) < 0.999  # the layers do differ: not a trivial 0 or 1


def test_linear_cka_invariances_and_self_similarity(states):
    x, y = states[1], states[2]
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(x.shape[1], x.shape[1], dtype=torch.float64))
    base = linear_cka(x, y)
    assert linear_cka(x.double() @ q, y) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x, 7.5 * y.double()) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x.double() + 3.0, y) == pytest.approx(base, abs=1e-10)  # columns centred: a shift changes nothing
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, torch.randn_like(x)) < 0.5 * base  # noise is far from the model's states


def test_effective_rank_of_known_singular_values():
    torch.manual_seed(0)
    n, d = 40, 6
    raw = torch.randn(n, d, dtype=torch.float64)
    u, _ = torch.linalg.qr(raw - raw.mean(0))  # orthonormal columns, each summing to zero: x stays centred
    v, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64))
    for singular in ([5.0, 5, 5, 5, 5, 5], [3.0, 2, 1, 0.5, 0, 0], [1.0, 0, 0, 0, 0, 0]):
        s = torch.tensor(singular, dtype=torch.float64)
        p = s[s > 0] / s.sum()
        expected = math.exp(-float((p * p.log()).sum()))
        assert effective_rank(u @ torch.diag(s) @ v.T) == pytest.approx(expected, rel=1e-6)
    assert effective_rank(u @ torch.diag(torch.full((d,), 2.0, dtype=torch.float64)) @ v.T) == pytest.approx(d)


@pytest.fixture(scope="module")
def checkpoints(tiny_model_dir, tmp_path_factory) -> list[tuple[str, object]]:
    """Three checkpoints of the tiny model: itself, its weights nudged by 1%, and a copy of the first."""
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("checkpoints")
    tokenizer = load_tokenizer(tiny_model_dir)
    found = []
    for name, scale in (("chck_1M", 0.0), ("chck_2M", 0.01), ("chck_3M", 0.0)):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        torch.manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(scale * torch.randn_like(p) * p.std())
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        found.append((name, root / name))
    return found


def test_representation_rows_over_checkpoints(checkpoints, probe, tmp_path):
    rows = representation_rows(checkpoints, probe, batch_size=8, device="cpu")
    assert all(tuple(r) == COLUMNS for r in rows)
    value = {(r["checkpoint"], r["layer"], r["weight"], r["metric"]): r["value"] for r in rows}
    layers = sorted({r["layer"] for r in rows if r["layer"] != ""})
    assert layers == [0, 1, 2]
    for layer in layers:
        assert value["chck_1M", layer, "", "cka_prev"] is None
        assert value["chck_1M", layer, "", "cka_last"] == pytest.approx(1.0)  # chck_3M is a copy of chck_1M
        assert value["chck_3M", layer, "", "cka_last"] == pytest.approx(1.0)
        assert 0.5 < value["chck_2M", layer, "", "cka_prev"] < 1 - 1e-9
        assert value["chck_3M", layer, "", "cka_prev"] == pytest.approx(value["chck_2M", layer, "", "cka_prev"])
        assert value["chck_1M", layer, "", "effective_rank"] == pytest.approx(value["chck_3M", layer, "",
                                                                                    "effective_rank"])
    weights = {r["weight"] for r in rows if r["weight"]}
    assert "model.embed_tokens.weight" in weights and "model.layers.0.self_attn.q_proj.weight" in weights
    assert not any("norm" in w.split(".")[-2] for w in weights)  # RMSNorm scales are vectors, not matrices
    for w in weights:
        assert value["chck_1M", "", w, "rel_change"] is None
        assert value["chck_2M", "", w, "rel_change"] == pytest.approx(0.01, rel=0.3)
        assert value["chck_2M", "", w, "norm"] > 0
    png = plot_representation(rows, tmp_path / "repr.png", stages={"chck_1M": "pretrain", "chck_2M": "pretrain",
                                                                   "chck_3M": "conversation"})
    from PIL import Image

    assert Image.open(png).size[0] <= 1600


def test_checkpoints_of_different_architectures_or_tokenizers_are_named(checkpoints, tokenizer, tmp_path, probe):
    import shutil

    smaller = model_folder("llama", tokenizer, tmp_path / "smaller")  # 1 layer × 32, the fixture's 2 × 64
    retokenized = shutil.copytree(checkpoints[0][1], tmp_path / "retokenized")
    other = load_tokenizer(retokenized)
    other.add_tokens(["<extra>"])
    other.save_pretrained(retokenized)
    with pytest.raises(ValueError) as error:
        representation_rows([*checkpoints[:2], ("chck_4M", smaller), ("hf", retokenized)], probe, device="cpu")
    message = str(error.value)
    assert "\n" not in message and f"the first, chck_1M ({checkpoints[0][1]})" in message
    assert f"chck_4M ({smaller}): hidden_size 32 (not 64), num_hidden_layers 1 (not 2)" in message
    assert f"hf ({retokenized}): tokenizer " in message
    assert "chck_2M" not in message  # the same as the first: not named


@pytest.mark.parametrize("kind", ["gpt2", "gpt_neox", "opt"])
def test_hidden_states_of_other_architectures(kind, tokenizer, tmp_path, probe):
    from classit.export import load_pretrained

    model, loaded = load_pretrained(model_folder(kind, tokenizer, tmp_path / kind))
    model.eval()
    states = hidden_states(model, loaded, probe[:6], 4, torch.device("cpu"))
    alone = hidden_states(model, loaded, probe[5:6], 1, torch.device("cpu"))
    assert len(states) == model.config.num_hidden_layers + 1 == len(alone)
    for layer, x in zip(states, alone):
        torch.testing.assert_close(layer[-len(x):], x, atol=1e-5, rtol=1e-5)


def test_a_checkpoint_without_config_is_named_before_any_work(checkpoints, tmp_path, probe):
    half = tmp_path / "chck_5M"
    half.mkdir()
    with pytest.raises(FileNotFoundError, match=f"^{half}: not a Hugging Face model folder"):
        representation_rows([*checkpoints, ("chck_5M", half)], probe, device="cpu")
