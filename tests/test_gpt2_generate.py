"""GPT-2 generation: the KV cache gives the tokens of full recomputation, greedy decoding gives transformers'
tokens on the same weights (also for left-padded batches), and the sampling filters keep what they promise."""
import numpy as np
import pytest

import tinygrad_tx as tg
from models.gpt2 import GPT2, KVCache, sample_next_token

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A random HF GPT-2 with peaked next-token distributions (greedy choices are then far from ties), and
    ours loaded from it."""
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=2, n_head=4, n_embd=32, n_positions=16, vocab_size=61, initializer_range=0.3, bos_token_id=60,
        eos_token_id=60,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)).eval()
    directory = tmp_path_factory.mktemp("gpt2")
    hf.save_pretrained(directory)
    return hf, GPT2.from_pretrained(str(directory)).eval()


def greedy_hf(hf, ids, n, attention_mask=None):
    with torch.no_grad():
        out = hf.generate(torch.tensor(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0,
                          attention_mask=None if attention_mask is None else torch.tensor(attention_mask))
    return out.tolist()


def test_cached_logits_equal_recomputed_logits(models):
    _, ours = models
    ids = tg.tensor(np.random.default_rng(0).integers(0, 61, (2, 12)))
    full = ours(ids)[0].detach().numpy()                                            # (2, 12, V)
    cache = KVCache(ours.config.n_layer)
    with tg.no_grad():
        first = ours.lm_head(ours.hidden_states(ids[:, :5], cache=cache)).numpy()      # 5 positions at once
        rest = ours.lm_head(ours.hidden_states(ids[:, 5:9], cache=cache)).numpy()      # 4 more after them
        steps = [ours.lm_head(ours.hidden_states(ids[:, t:t + 1], cache=cache)).numpy() for t in range(9, 12)]
    np.testing.assert_allclose(np.concatenate([first, rest, *steps], axis=1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == 12


def test_cached_greedy_generation_equals_uncached_and_transformers(models):
    hf, ours = models
    prompt = np.random.default_rng(1).integers(0, 61, (1, 5))
    cached = ours.generate(tg.tensor(prompt), 11, temperature=0).tolist()
    assert cached == ours.generate(tg.tensor(prompt), 11, temperature=0, use_cache=False).tolist()
    assert cached == greedy_hf(hf, prompt, 11)  # 16 tokens: the whole position table
    assert len(set(cached[0][5:])) > 3          # a model that says something, not one token over and over


def test_past_block_size_the_window_slides_with_or_without_cache(models):
    _, ours = models
    prompt = tg.tensor(np.random.default_rng(2).integers(0, 61, (2, 10)))
    cached = ours.generate(prompt, 20, temperature=0)
    assert cached.shape == (2, 30) and cached.tolist() == ours.generate(prompt, 20, temperature=0,
                                                                        use_cache=False).tolist()


def test_seeded_sampling_draws_the_same_tokens_with_or_without_cache(models):
    _, ours = models
    prompt = tg.tensor([[3, 1, 4, 1, 5]])
    runs = []
    for use_cache in (True, False):
        tg.manual_seed(7)
        runs.append(ours.generate(prompt, 10, temperature=0.9, top_k=20, top_p=0.95, use_cache=use_cache).tolist())
    assert runs[0] == runs[1]


def test_left_padded_batch_equals_each_prompt_alone_and_transformers(models):
    hf, ours = models
    prompts = [[5, 9, 2, 7, 1, 8], [4, 4], [11, 3, 6]]
    width = max(map(len, prompts))
    ids = [[0] * (width - len(p)) + p for p in prompts]
    mask = [[0] * (width - len(p)) + [1] * len(p) for p in prompts]
    batch = ours.generate(tg.tensor(ids), 8, temperature=0, attention_mask=mask).tolist()
    for row, prompt in zip(batch, prompts):
        alone = ours.generate(tg.tensor([prompt]), 8, temperature=0).tolist()[0]
        assert row[width - len(prompt):] == alone
    assert batch == greedy_hf(hf, ids, 8, attention_mask=mask)
    assert batch == ours.generate(tg.tensor(ids), 8, temperature=0, attention_mask=mask, use_cache=False).tolist()


def test_eos_stops_generation_and_finished_rows_repeat_it(models):
    _, ours = models
    prompt = tg.tensor([[1, 2, 3], [7, 8, 9]])
    free = ours.generate(prompt, 8, temperature=0).tolist()
    eos = free[0][3]  # the first token row 0 generates
    columns = []
    out = ours.generate(prompt, 8, temperature=0, eos_token_id=eos, stream=columns.append).tolist()
    assert out[0][:4] == free[0][:4] and all(t == eos for t in out[0][4:])
    if eos not in free[1][3:]:
        assert out[1] == free[1] and len(columns) == 8
    assert [list(c) for c in zip(*columns)] == [row[3:] for row in out]  # stream saw every column in order
    stopped = ours.generate(prompt[:1], 8, temperature=0, eos_token_id=eos).tolist()
    assert stopped == [free[0][:4]]  # one row: it stops at its eos


def test_top_k_and_top_p_keep_only_their_tokens():
    logits = tg.tensor(np.log([[0.5, 0.3, 0.15, 0.05]] * 2000).astype(np.float32))
    tg.manual_seed(0)
    drawn = sample_next_token(logits, top_p=0.7)[:, 0].numpy()               # 0.5 + 0.3 reach 0.7
    assert set(drawn) == {0, 1} and abs((drawn == 0).mean() - 0.5 / 0.8) < 0.05
    assert set(sample_next_token(logits, top_k=3)[:, 0].numpy()) == {0, 1, 2}
    assert set(sample_next_token(logits, top_p=0.1)[:, 0].numpy()) == {0}   # the likeliest always stays
    assert sample_next_token(logits, temperature=0)[:, 0].numpy().tolist() == [0] * 2000


@pytest.mark.parametrize("arguments, message", [
    (dict(max_new_tokens=-1), "max_new_tokens"), (dict(temperature=-0.5), "temperature"),
    (dict(top_k=0), "top_k"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
    (dict(attention_mask=[[1, 1]]), "attention_mask has shape"),
])
def test_bad_generation_arguments_are_refused(models, arguments, message):
    _, ours = models
    with pytest.raises(ValueError, match=message):
        ours.generate(tg.tensor([[1, 2, 3]]), **{"max_new_tokens": 2, **arguments})
