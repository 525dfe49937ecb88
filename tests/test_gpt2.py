"""GPT-2: structure, init, generation, and parity with HuggingFace's GPT2LMHeadModel in both directions."""
import math

import numpy as np
import pytest

import tinygrad_tx as tg
from models.gpt2 import GPT2, PRESETS, GPT2Config

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def tiny_config(**overrides):
    return GPT2Config(**{**dict(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=50), **overrides})


def test_parameter_names_and_count_match_huggingface_presets():
    model = GPT2(tiny_config())
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=16,
                                                              vocab_size=50))
    ours = dict(model.named_parameters())
    theirs = dict(hf.named_parameters())
    assert set(ours) == set(theirs)  # tied lm_head appears once, under transformer.wte.weight
    assert sum(p.numel() for p in ours.values()) == sum(p.numel() for p in theirs.values())


def test_preset_sizes():
    # the 124M model: 124,439,808 parameters counting the shared embedding once
    config = GPT2Config(**PRESETS["gpt2"])
    c = config
    per_block = 2 * 2 * c.n_embd + (c.n_embd * 3 * c.n_embd + 3 * c.n_embd) + (c.n_embd ** 2 + c.n_embd) \
        + (c.n_embd * 4 * c.n_embd + 4 * c.n_embd) + (4 * c.n_embd * c.n_embd + c.n_embd)
    total = c.vocab_size * c.n_embd + c.block_size * c.n_embd + c.n_layer * per_block + 2 * c.n_embd
    assert total == 124_439_808
    assert [PRESETS[name]["n_layer"] for name in ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")] == [12, 24, 36, 48]


def test_init_scales_residual_projections():
    tg.manual_seed(0)
    model = GPT2(tiny_config(n_layer=8, n_embd=64, n_head=4))
    c_proj = model.transformer.h[0].attn.c_proj.weight.detach().numpy()
    c_fc = model.transformer.h[0].mlp.c_fc.weight.detach().numpy()
    assert abs(c_fc.std() - 0.02) < 0.002
    assert abs(c_proj.std() - 0.02 / math.sqrt(16)) < 0.001
    assert model.lm_head.weight is model.transformer.wte.weight
    assert np.all(model.transformer.h[0].attn.c_attn.bias.detach().numpy() == 0)


def test_weight_tying_shares_gradient():
    model = GPT2(tiny_config())
    idx = tg.randint(0, 50, (2, 8))
    _, loss = model(idx, idx)
    loss.backward()
    assert model.transformer.wte.weight.grad is model.lm_head.weight.grad


def test_loss_at_init_is_near_uniform():
    tg.manual_seed(0)
    model = GPT2(tiny_config())
    idx, targets = tg.randint(0, 50, (4, 16)), tg.randint(0, 50, (4, 16))
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(50)) < 0.1


def test_configure_optimizers_decays_only_matrices():
    model = GPT2(tiny_config())
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decayed["params"]) and all(p.ndim == 1 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_generate_extends_and_respects_top_k():
    tg.manual_seed(0)
    model = GPT2(tiny_config())
    start = tg.tensor([[1, 2, 3]])
    out = model.generate(start, max_new_tokens=10, top_k=1)
    assert out.shape == (1, 13)
    assert out[:, :3].tolist() == [[1, 2, 3]]
    # top_k=1 is greedy: each new token is the argmax of the model's logits
    logits, _ = model(out[:, :-1])
    assert logits[0, 2:].argmax(-1).tolist() == out[0, 3:].tolist()
    with pytest.raises(ValueError, match="block_size"):
        model(tg.zeros(1, 17, dtype=tg.int64))
    assert model.generate(start, max_new_tokens=20).shape == (1, 23)  # the context is cropped to block_size


def hf_model(seed, **config):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(**{**dict(n_layer=2, n_head=4, n_embd=32, n_positions=24, vocab_size=97,
                                               resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0), **config})
    model = transformers.GPT2LMHeadModel(config)
    with torch.no_grad():  # random LayerNorm gains and biases, so a transposition mistake cannot hide
        for name, p in model.named_parameters():
            if name.endswith((".bias", "ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.normal_(0, 0.5 if "ln" in name else 0.02)
    return model.eval()


@pytest.mark.parametrize("seed,config", [(0, {}), (1, dict(n_layer=3, n_head=2, n_embd=16, n_positions=8)),
                                          (2, dict(layer_norm_epsilon=1e-3, vocab_size=13))])
def test_loads_huggingface_checkpoint_with_same_logits_and_loss(tmp_path, seed, config):
    hf = hf_model(seed, **config)
    hf.save_pretrained(tmp_path)
    ours = GPT2.from_pretrained(str(tmp_path)).eval()
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, hf.config.vocab_size, (3, hf.config.n_positions))
    with torch.no_grad():
        expected = hf(torch.from_numpy(ids), labels=torch.from_numpy(ids))
    logits, loss = ours(tg.tensor(ids[:, :-1]), tg.tensor(ids[:, 1:]))
    assert np.abs(logits.detach().numpy() - expected.logits[:, :-1].numpy()).max() < 1e-4
    assert abs(loss.item() - expected.loss.item()) < 1e-4  # HF shifts labels inside; we pass shifted targets


def test_saved_checkpoint_loads_in_huggingface_with_same_logits(tmp_path):
    tg.manual_seed(3)
    ours = GPT2(tiny_config(n_layer=3, n_head=4, vocab_size=61)).eval()
    with tg.no_grad():  # move biases and gains off their init so transposition mistakes show
        for name, p in ours.named_parameters():
            if p.ndim == 1:
                p.normal_(0.3, 0.1)
    ours.save_pretrained(str(tmp_path))
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path)).eval()
    ids = np.random.default_rng(0).integers(0, 61, (2, 16))
    with torch.no_grad():
        expected = hf(torch.from_numpy(ids), labels=torch.from_numpy(ids))
    logits, loss = ours(tg.tensor(ids[:, :-1]), tg.tensor(ids[:, 1:]))
    assert np.abs(logits.detach().numpy() - expected.logits[:, :-1].numpy()).max() < 1e-4
    assert abs(loss.item() - expected.loss.item()) < 1e-4
    # and back again: our own loader reads what we wrote
    again = GPT2.from_pretrained(str(tmp_path)).eval()
    assert np.array_equal(again(tg.tensor(ids))[0].detach().numpy(), ours(tg.tensor(ids))[0].detach().numpy())


def test_gradients_match_huggingface(tmp_path):
    hf = hf_model(4)
    hf.save_pretrained(tmp_path)
    ours = GPT2.from_pretrained(str(tmp_path))
    ids = np.random.default_rng(1).integers(0, 97, (2, 24))
    hf(torch.from_numpy(ids), labels=torch.from_numpy(ids)).loss.backward()
    _, loss = ours(tg.tensor(ids[:, :-1]), tg.tensor(ids[:, 1:]))
    loss.backward()
    theirs = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        expected = theirs[name].grad.numpy()
        if name.endswith(GPT2._CONV1D):
            expected = expected.T
        assert np.abs(p.grad.numpy() - expected).max() < 1e-5, name


def test_save_pretrained_refuses_bias_free_model(tmp_path):
    with pytest.raises(ValueError, match="bias"):
        GPT2(tiny_config(bias=False)).save_pretrained(str(tmp_path))
