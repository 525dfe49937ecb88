"""The encoder-decoder Transformer: parity with torch.nn.Transformer (outputs and every gradient), masks,
embeddings, the learning-rate schedule, greedy decoding, and the decoder-only stack with its study switches."""
import math

import numpy as np
import pytest

import tinygrad_tx as tg
from models.transformer import (DecoderOnlyConfig, DecoderOnlyTransformer, Transformer, TransformerConfig, noam_lr,
                                noam_scheduler, paper_optimizer, sinusoidal_encoding)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")

TOLERANCE = {"float64": 1e-6, "float32": 1e-4}
B, S, T, E, H, FF = 3, 7, 6, 16, 4, 24
SRC_LENGTHS, TGT_LENGTHS = [7, 4, 2], [6, 3, 5]   # right padding; every row keeps at least one real token


def small_config(**overrides):
    return TransformerConfig(**{**dict(src_vocab_size=11, tgt_vocab_size=13, d_model=E, n_head=H,
                                       num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=FF, dropout=0.0,
                                       max_len=32), **overrides})


def padding_mask(lengths, size):
    return np.arange(size)[None, :] >= np.asarray(lengths)[:, None]          # (B, size), True = padding


def close(ours, theirs, dtype, what):
    ours = ours.detach().numpy() if isinstance(ours, tg.Tensor) else ours
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    tol = TOLERANCE[dtype]
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs torch {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol, err_msg=what)


# --- copying weights into torch ----------------------------------------------------------------------------------

def torch_attention_state(prefix, attn):
    """torch.nn.MultiheadAttention packs W^Q, W^K, W^V row-wise: in_proj_weight = [q; k; v], (3E, E)."""
    def weights(name):
        return [getattr(attn, p).__getattr__(name).detach().numpy() for p in ("q_proj", "k_proj", "v_proj")]
    return {f"{prefix}.in_proj_weight": np.concatenate(weights("weight"), 0),
            f"{prefix}.in_proj_bias": np.concatenate(weights("bias"), 0),
            f"{prefix}.out_proj.weight": attn.out_proj.weight.detach().numpy(),
            f"{prefix}.out_proj.bias": attn.out_proj.bias.detach().numpy()}


def torch_layer_state(prefix, layer):
    """One of our Encoder/DecoderLayers under torch.nn.TransformerEncoder/DecoderLayer's names."""
    state = torch_attention_state(f"{prefix}.self_attn", layer.self_attn)
    if hasattr(layer, "cross_attn"):
        state.update(torch_attention_state(f"{prefix}.multihead_attn", layer.cross_attn))
    for ours, theirs in (("feed_forward.linear1", "linear1"), ("feed_forward.linear2", "linear2"),
                         ("norm1", "norm1"), ("norm2", "norm2"), ("norm3", "norm3")):
        module = layer
        for part in ours.split("."):
            module = getattr(module, part, None)
        if module is not None:
            state[f"{prefix}.{theirs}.weight"] = module.weight.detach().numpy()
            state[f"{prefix}.{theirs}.bias"] = module.bias.detach().numpy()
    return state


def torch_stack_state(prefix, stack_layers, norm):
    state = {}
    for i, layer in enumerate(stack_layers):
        state.update(torch_layer_state(f"{prefix}layers.{i}", layer))
    if norm is not None:
        state[f"{prefix}norm.weight"] = norm.weight.detach().numpy()
        state[f"{prefix}norm.bias"] = norm.bias.detach().numpy()
    return state


def our_gradient(model, torch_name):
    """Our gradient for torch's parameter name: the three projections' gradients stacked for in_proj."""
    def find(path):
        module = model
        for part in path.split("."):
            module = getattr(module, part) if not part.isdigit() else module[int(part)]
        return module
    path, kind = torch_name.rsplit(".", 1)
    path = path.replace("multihead_attn", "cross_attn").replace("linear1", "feed_forward.linear1") \
        .replace("linear2", "feed_forward.linear2")
    if kind.startswith("in_proj_"):
        attn = find(path)
        name = kind[len("in_proj_"):]
        return np.concatenate([getattr(getattr(attn, p), name).grad.detach().numpy()
                               for p in ("q_proj", "k_proj", "v_proj")])
    return getattr(find(path), kind).grad.detach().numpy()


def torch_transformer(model, config, dtype):
    reference = torch.nn.Transformer(d_model=config.d_model, nhead=config.n_head,
                                     num_encoder_layers=config.num_encoder_layers,
                                     num_decoder_layers=config.num_decoder_layers,
                                     dim_feedforward=config.dim_feedforward, dropout=0.0,
                                     activation=config.activation, batch_first=True, norm_first=config.norm_first)
    if not config.norm_first:
        # torch.nn.Transformer always ends both stacks with a LayerNorm; the paper's post-LN model has none
        reference.encoder.norm = None
        reference.decoder.norm = None
    state = torch_stack_state("encoder.", model.encoder.layers, model.encoder.norm)
    state.update(torch_stack_state("decoder.", model.decoder.layers, model.decoder.norm))
    own = reference.state_dict()
    assert set(state) == set(own), set(state) ^ set(own)
    reference.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    return reference.to(getattr(torch, dtype))


# --- parity ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_encoder_decoder_matches_torch_transformer(norm_first, dtype):
    activation = "relu" if norm_first else "gelu"   # both activations, without doubling the test count
    config = small_config(norm_first=norm_first, activation=activation)
    tg.manual_seed(1)
    model = Transformer(config).to(dtype)
    reference = torch_transformer(model, config, dtype)
    generator = np.random.default_rng(0)
    src = generator.standard_normal((B, S, E)).astype(dtype)
    tgt = generator.standard_normal((B, T, E)).astype(dtype)
    weights = generator.standard_normal((B, T, E)).astype(dtype)   # the loss: sum(output * weights)
    src_pad, tgt_pad = padding_mask(SRC_LENGTHS, S), padding_mask(TGT_LENGTHS, T)

    src_ours, tgt_ours = tg.tensor(src, requires_grad=True), tg.tensor(tgt, requires_grad=True)
    memory = model.encoder(src_ours, tg.tensor(src_pad))
    out = model.decoder(tgt_ours, memory, tg.tensor(tgt_pad), tg.tensor(src_pad))
    (out * tg.tensor(weights)).sum().backward()

    src_theirs, tgt_theirs = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)   # torch: True = may NOT attend
    expected = reference(src_theirs, tgt_theirs, tgt_mask=causal, src_key_padding_mask=torch.tensor(src_pad),
                         tgt_key_padding_mask=torch.tensor(tgt_pad), memory_key_padding_mask=torch.tensor(src_pad))
    (expected * torch.tensor(weights)).sum().backward()

    close(out, expected, dtype, "output")
    close(src_ours.grad, src_theirs.grad, dtype, "gradient of the source embeddings")
    close(tgt_ours.grad, tgt_theirs.grad, dtype, "gradient of the target embeddings")
    named = dict(reference.named_parameters())
    assert len(named) == 2 * 12 + 2 * 18 + (4 if norm_first else 0)   # every parameter of both stacks is compared
    for name, parameter in named.items():
        close(our_gradient(model, name), parameter.grad, dtype, f"gradient of {name}")


def test_whole_model_loss_matches_torch_with_embeddings_and_label_smoothing():
    """Embeddings (scaled, sinusoidal positions), both stacks, the output projection and the label-smoothed,
    padding-ignoring loss, against the same computation in torch."""
    config = small_config(norm_first=True, label_smoothing=0.1, tie_embeddings=True)
    tg.manual_seed(2)
    model = Transformer(config).double()
    reference = torch_transformer(model, config, "float64")
    generator = np.random.default_rng(3)
    src = generator.integers(1, config.src_vocab_size, (B, S))
    tgt = generator.integers(1, config.tgt_vocab_size, (B, T + 1))
    src[padding_mask(SRC_LENGTHS, S)] = 0
    tgt[:, 1:][padding_mask(TGT_LENGTHS, T)] = 0
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
    logits, loss = model(tg.tensor(src), tg.tensor(tgt_in), tg.tensor(tgt_out))
    loss.backward()

    encoding = torch.tensor(sinusoidal_encoding(config.max_len, E), dtype=torch.float64)
    src_table = torch.tensor(model.src_embed.token.weight.detach().numpy(), requires_grad=True)
    tgt_table = torch.tensor(model.tgt_embed.token.weight.detach().numpy(), requires_grad=True)
    src_x = src_table[torch.tensor(src)] * math.sqrt(E) + encoding[:S]
    tgt_x = tgt_table[torch.tensor(tgt_in)] * math.sqrt(E) + encoding[:T]
    src_pad, tgt_pad = torch.tensor(src == 0), torch.tensor(tgt_in == 0)
    y = reference(src_x, tgt_x, tgt_mask=torch.triu(torch.ones(T, T, dtype=torch.bool), 1),
                  src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
    expected_logits = y @ tgt_table.T                                        # tied output projection
    expected_loss = torch.nn.functional.cross_entropy(expected_logits.reshape(-1, config.tgt_vocab_size),
                                                      torch.tensor(tgt_out).reshape(-1), ignore_index=0,
                                                      label_smoothing=0.1)
    expected_loss.backward()
    close(logits, expected_logits, "float64", "logits")
    close(loss, expected_loss, "float64", "loss")
    close(model.src_embed.token.weight.grad, src_table.grad, "float64", "source embedding gradient")
    close(model.tgt_embed.token.weight.grad, tgt_table.grad, "float64", "tied target embedding gradient")


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_only_stack_matches_torch_encoder_with_causal_mask(norm_first):
    config = DecoderOnlyConfig(vocab_size=17, block_size=8, n_layer=2, d_model=E, n_head=H, dim_feedforward=FF,
                               activation="relu", norm_first=norm_first)
    tg.manual_seed(4)
    model = DecoderOnlyTransformer(config).double()
    layer = torch.nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
    norm = torch.nn.LayerNorm(E) if norm_first else None
    reference = torch.nn.TransformerEncoder(layer, 2, norm=norm, enable_nested_tensor=False)
    state = torch_stack_state("", model.layers, model.norm)
    reference.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    reference.double()
    x = np.random.default_rng(5).standard_normal((2, 8, E))
    ours_x = tg.tensor(x, requires_grad=True)
    out = ours_x
    for block in model.layers:
        out = block(out)
    if model.norm is not None:
        out = model.norm(out)
    out.sum().backward()
    theirs_x = torch.tensor(x, requires_grad=True)
    expected = reference(theirs_x, mask=torch.triu(torch.ones(8, 8, dtype=torch.bool), 1), is_causal=True)
    expected.sum().backward()
    close(out, expected, "float64", "output")
    close(ours_x.grad, theirs_x.grad, "float64", "input gradient")


# --- masks and embeddings ------------------------------------------------------------------------------------------

def test_padded_source_positions_do_not_reach_the_output():
    config = small_config()
    model = Transformer(config)
    x = np.random.default_rng(6).standard_normal((B, S, E)).astype(np.float32)
    src_pad = tg.tensor(padding_mask(SRC_LENGTHS, S))
    y = tg.randn(B, T, E)
    first = model.decoder(y, model.encoder(tg.tensor(x), src_pad), None, src_pad).detach().numpy()
    x[padding_mask(SRC_LENGTHS, S)] += 100.0   # change only what sits at padded positions
    second = model.decoder(y, model.encoder(tg.tensor(x), src_pad), None, src_pad).detach().numpy()
    np.testing.assert_allclose(first, second, atol=1e-5)


def test_decoder_is_causal():
    model = Transformer(small_config())
    src = tg.randint(1, 11, (2, S))
    tgt = np.random.default_rng(7).integers(1, 13, (2, T))
    first, _ = model(src, tg.tensor(tgt))
    tgt[:, 3:] = (tgt[:, 3:] % 12) + 1        # change the future
    second, _ = model(src, tg.tensor(tgt))
    np.testing.assert_allclose(first.detach().numpy()[:, :3], second.detach().numpy()[:, :3], atol=1e-5)
    assert not np.allclose(first.detach().numpy()[:, 3:], second.detach().numpy()[:, 3:])


def test_sinusoidal_encoding_follows_the_formula():
    pe = sinusoidal_encoding(50, 8)
    for pos, i in [(0, 0), (3, 1), (49, 3), (17, 2)]:
        angle = pos / 10000 ** (2 * i / 8)
        assert pe[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
        assert pe[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_embedding_is_scaled_token_plus_encoding_of_its_position(positional):
    config = small_config(positional=positional)
    model = Transformer(config)
    embed = model.src_embed
    ids = tg.tensor([[5, 5, 5, 2]])          # one token id at three positions
    x = embed(ids).detach().numpy()[0]
    table = embed.token.weight.detach().numpy()
    positions = embed.position_encoding.detach().numpy() if positional == "sinusoidal" else \
        embed.position.weight.detach().numpy()
    for t, token in enumerate([5, 5, 5, 2]):
        np.testing.assert_allclose(x[t], table[token] * math.sqrt(E) + positions[t], rtol=1e-5, atol=1e-6)
    assert not np.allclose(x[0], x[1])       # same token, different positions
    if positional == "learned":
        assert "src_embed.position.weight" in dict(model.named_parameters())
    else:
        assert "src_embed.position_encoding" not in model.state_dict()   # a fixed function, not saved


def test_positions_make_the_encoder_order_aware():
    """Self-attention alone is permutation-equivariant: reordering the tokens only reorders the outputs. The
    position encoding is what breaks that; a position table indexed by token id (instead of by position)
    is just a second token embedding, and leaves the model blind to order."""
    model = Transformer(small_config(positional="learned"))
    embed = model.src_embed
    tokens, order = [3, 5, 7, 9, 4], [4, 2, 0, 1, 3]
    shuffled = [tokens[i] for i in order]

    def encode_with_positions_by_token_id(ids):
        ids = tg.tensor([ids])
        return model.encoder(embed.token(ids) * math.sqrt(E) + embed.position(ids)).detach().numpy()[0]

    def encode(ids):
        return model.encode(tg.tensor([ids])).detach().numpy()[0]

    np.testing.assert_allclose(encode_with_positions_by_token_id(tokens)[order],
                               encode_with_positions_by_token_id(shuffled), atol=1e-5)   # blind to order
    assert not np.allclose(encode(tokens)[order], encode(shuffled), atol=1e-2)              # sees order


def test_tied_and_shared_embeddings():
    model = Transformer(small_config(src_vocab_size=13, tie_embeddings=True, share_embeddings=True))
    assert model.generator.weight is model.tgt_embed.token.weight is model.src_embed.token.weight
    names = [name for name, _ in model.named_parameters()]
    assert sum(name.endswith("token.weight") or name == "generator.weight" for name in names) == 1
    with pytest.raises(ValueError, match="share_embeddings"):
        Transformer(small_config(share_embeddings=True))


def test_final_layer_norm_only_when_pre_ln():
    assert Transformer(small_config(norm_first=False)).encoder.norm is None
    model = Transformer(small_config(norm_first=True))
    assert model.encoder.norm is not None and model.decoder.norm is not None


# --- training pieces -------------------------------------------------------------------------------------------------

def test_noam_schedule():
    d, warmup = 512, 4000
    assert noam_lr(1, d, warmup) == pytest.approx(d ** -0.5 * warmup ** -1.5)
    assert noam_lr(warmup, d, warmup) == pytest.approx(d ** -0.5 * warmup ** -0.5)   # the peak
    assert max(noam_lr(s, d, warmup) for s in range(1, 20000)) == pytest.approx(noam_lr(warmup, d, warmup))
    assert noam_lr(4 * warmup, d, warmup) == pytest.approx(noam_lr(warmup, d, warmup) / 2)  # 1/sqrt(step) decay
    model = Transformer(small_config())
    optimizer, scheduler = paper_optimizer(model, d_model=E, warmup_steps=10)
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.98) and optimizer.param_groups[0]["eps"] == 1e-9
    seen = []
    for _ in range(20):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: a no-op, in the order a training loop calls them
        scheduler.step()
    assert seen == pytest.approx([noam_lr(s, E, 10) for s in range(1, 21)])
    assert noam_scheduler(tg.optim.SGD(model.parameters(), lr=1.0), E, 10, factor=2).get_last_lr()[0] == \
        pytest.approx(2 * noam_lr(1, E, 10))


def test_learns_to_copy_and_greedy_decode_stops_at_end_token():
    """A few hundred steps on copying 3-5 digit strings; greedy decoding then reproduces held-out strings."""
    tg.manual_seed(0)
    PAD, BOS, EOS = 0, 1, 2
    config = small_config(src_vocab_size=8, tgt_vocab_size=8, d_model=32, n_head=4, num_encoder_layers=1,
                          num_decoder_layers=1, dim_feedforward=64, label_smoothing=0.0, norm_first=True)
    model = Transformer(config)
    optimizer = tg.optim.Adam(model.parameters(), lr=3e-3)
    generator = np.random.default_rng(0)

    def batch(n):
        lengths = generator.integers(3, 6, n)
        src = np.zeros((n, 5), np.int64)
        tgt = np.zeros((n, 7), np.int64)
        for row, length in enumerate(lengths):
            digits = generator.integers(3, 8, length)
            src[row, :length] = digits
            tgt[row, :length + 2] = [BOS, *digits, EOS]
        return src, tgt

    for _ in range(250):
        src, tgt = batch(32)
        _, loss = model(tg.tensor(src), tg.tensor(tgt[:, :-1]), tg.tensor(tgt[:, 1:]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    src, tgt = batch(16)
    out = model.greedy_decode(tg.tensor(src), max_len=8, bos_id=BOS, eos_id=EOS).detach().numpy()
    assert out.shape[1] <= 8
    correct = 0
    for row in range(16):
        tokens = list(out[row])
        assert EOS in tokens
        end = tokens.index(EOS)
        assert all(t == PAD for t in tokens[end + 1:])   # padded after the end token
        correct += tokens[:end + 1] == list(tgt[row, 1:][:end + 1]) and tgt[row, end + 1] == EOS
    assert correct >= 14, f"copied {correct} of 16"


# --- the decoder-only stack and its switches -----------------------------------------------------------------------

@pytest.mark.parametrize("switches", [dict(norm_first=True), dict(norm_first=False), dict(residual=False),
                                      dict(layer_norm=False), dict(layer_norm=False, norm_first=False)])
def test_decoder_only_switches(switches):
    config = DecoderOnlyConfig(vocab_size=20, block_size=12, n_layer=3, d_model=16, n_head=2, dim_feedforward=32,
                               **switches)
    tg.manual_seed(0)
    model = DecoderOnlyTransformer(config)
    names = [name for name, _ in model.named_parameters()]
    has_norms = any(".norm" in name for name in names)
    assert has_norms == config.layer_norm
    assert (model.norm is not None) == (config.layer_norm and config.norm_first)
    idx = tg.randint(0, 20, (2, 12))
    logits, loss = model(idx, idx)
    assert logits.shape == (2, 12, 20) and math.isfinite(loss.item())
    if config.layer_norm:   # normalized features: logits of order 1, a loss near uniform guessing's
        assert abs(loss.item() - math.log(20)) < 1.5
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    # the residual switch really removes the skip: x reaches a layer's output only through its sub-layers
    layer = model.layers[0]
    x = tg.randn(1, 4, 16)
    zeroed = [layer.self_attn.out_proj.weight, layer.self_attn.out_proj.bias, layer.feed_forward.linear2.weight,
              layer.feed_forward.linear2.bias]
    with tg.no_grad():
        for p in zeroed:
            p.zero_()
    y = layer(x).detach().numpy()
    if not config.residual:
        expected = np.zeros_like(y)
    elif config.norm_first or not config.layer_norm:
        expected = x.detach().numpy()
    else:
        expected = layer.norm2(layer.norm1(x)).detach().numpy()
    np.testing.assert_allclose(y, expected, atol=1e-5)
