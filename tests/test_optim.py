"""Optimizers, schedules and gradient clipping against PyTorch: the same initial parameters and the same
gradient sequence must give the same parameter trajectory."""
import inspect
import json
import math

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from conftest import assert_close, randn, rng, to_numpy
from tinygrad_tx import nn, optim
from tinygrad_tx.optim.lr_scheduler import CosineWithWarmup, LambdaLR, cosine_with_warmup

SHAPES = [(4, 3), (3,), (2, 2, 2), ()]
STEPS = 20
TRAJECTORY_TOLERANCES = {np.float64: (1e-10, 1e-12), np.float32: (1e-6, 1e-6)}

CONFIGS = [  # (name, optimizer, options)
    ("sgd", "SGD", dict(lr=0.1)),
    ("sgd-momentum", "SGD", dict(lr=0.1, momentum=0.9)),
    ("sgd-nesterov", "SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd-weight-decay", "SGD", dict(lr=0.1, weight_decay=0.05)),
    ("sgd-dampening", "SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("sgd-all", "SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True, maximize=True)),
    ("adam", "Adam", dict(lr=1e-2)),
    ("adam-weight-decay", "Adam", dict(lr=1e-2, weight_decay=0.1)),
    ("adam-amsgrad", "Adam", dict(lr=1e-2, amsgrad=True)),
    ("adam-all", "Adam", dict(lr=2e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=True, maximize=True)),
    ("adamw", "AdamW", dict(lr=1e-2)),
    ("adamw-decay-amsgrad", "AdamW", dict(lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1, amsgrad=True)),
]
CONFIG_BY_NAME = {name: (kind, options) for name, kind, options in CONFIGS}


# --- helpers --------------------------------------------------------------------------------------------------
def initial_arrays(dtype, seed=0):
    return [randn(*shape, seed=seed + i).astype(dtype) for i, shape in enumerate(SHAPES)]


def gradient_sequence(dtype, steps=STEPS, seed=100):
    """grads[step][i]; parameter 2 has no gradient every fourth step (the optimizers must skip it)."""
    generator = rng(seed)
    return [[None if (i == 2 and step % 4 == 3) else generator.standard_normal(shape).astype(dtype)
             for i, shape in enumerate(SHAPES)] for step in range(steps)]


def make_params(lib, arrays, device="cpu"):
    if lib == "tg":
        return [nn.Parameter(tg.tensor(a.copy(), device=device)) for a in arrays]
    return [torch.nn.Parameter(torch.tensor(a.copy())) for a in arrays]


def grouped(params, groups):
    """groups: None (one list) or [{option: value, "params": [indices]}, ...]."""
    if groups is None:
        return params
    return [{**group, "params": [params[i] for i in group["params"]]} for group in groups]


def make_optimizer(lib, kind, params, options, groups=None):
    cls = getattr(optim, kind) if lib == "tg" else getattr(torch.optim, kind)
    return cls(grouped(params, groups), **options)


def set_grads(lib, params, grads, device="cpu"):
    for p, g in zip(params, grads):
        if g is None:
            p.grad = None
        else:
            p.grad = tg.tensor(g.copy(), device=device) if lib == "tg" else torch.tensor(g.copy())


def run_steps(lib, optimizer, params, grads, device="cpu", lrs=None):
    trajectory = []
    for step, step_grads in enumerate(grads):
        if lrs is not None:
            for group in optimizer.param_groups:
                group["lr"] = lrs[step]
        optimizer.zero_grad(set_to_none=True)
        set_grads(lib, params, step_grads, device)
        optimizer.step()
        trajectory.append([to_numpy(p).copy() for p in params])
    return trajectory


def assert_same_trajectory(ours, theirs, dtype, exact=False):
    rtol, atol = (0, 0) if exact else TRAJECTORY_TOLERANCES[dtype]
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for i, (x, y) in enumerate(zip(a, b)):
            assert x.dtype == y.dtype, f"step {step}, parameter {i}: dtype {x.dtype} != {y.dtype}"
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"step {step + 1}, parameter {i}")


TWO_GROUPS = [{"params": [0, 2], "lr": 0.03, "weight_decay": 0.2}, {"params": [1, 3]}]


# --- trajectories against PyTorch ---------------------------------------------------------------------------------
@pytest.mark.parametrize("groups", [None, TWO_GROUPS], ids=["one-group", "two-groups"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", CONFIG_BY_NAME)
def test_trajectory_matches_torch(name, dtype, groups, device):
    kind, options = CONFIG_BY_NAME[name]
    arrays, grads = initial_arrays(dtype), gradient_sequence(dtype)
    ours, theirs = make_params("tg", arrays, device), make_params("torch", arrays)
    ours_optimizer = make_optimizer("tg", kind, ours, options, groups)
    theirs_optimizer = make_optimizer("torch", kind, theirs, options, groups)
    assert_same_trajectory(run_steps("tg", ours_optimizer, ours, grads, device),
                           run_steps("torch", theirs_optimizer, theirs, grads), dtype)


@pytest.mark.parametrize("name", ["sgd-momentum", "adamw-decay-amsgrad"])
def test_trajectory_with_changing_lr_matches_torch(name):
    """The trainer writes group["lr"] every iteration; the next step must use it (bias corrections too)."""
    kind, options = CONFIG_BY_NAME[name]
    arrays, grads = initial_arrays(np.float64), gradient_sequence(np.float64)
    lrs = [cosine_with_warmup(it, 0.05, 5, 15, 0.005) for it in range(STEPS)]
    ours, theirs = make_params("tg", arrays), make_params("torch", arrays)
    assert_same_trajectory(run_steps("tg", make_optimizer("tg", kind, ours, options), ours, grads, lrs=lrs),
                           run_steps("torch", make_optimizer("torch", kind, theirs, options), theirs, grads, lrs=lrs),
                           np.float64)


def test_adamw_on_a_model_matches_torch():
    """Gradients from a real backward pass, GPT-style groups (decay matrices, not biases or gains)."""
    x, target = randn(8, 5, seed=1), randn(8, 3, seed=2)
    w1, b1, w2, b2 = randn(6, 5, seed=3), randn(6, seed=4), randn(3, 6, seed=5), randn(3, seed=6)
    results = []
    for lib, module in (("tg", tg), ("torch", torch)):
        params = make_params(lib, [w1, b1, w2, b2])
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
        optimizer = (optim.AdamW if lib == "tg" else torch.optim.AdamW)(groups, lr=3e-3, betas=(0.9, 0.95))
        inputs, targets = module.tensor(x), module.tensor(target)
        losses = []
        for _ in range(15):
            hidden = (inputs @ params[0].T + params[1]).tanh()
            loss = ((hidden @ params[2].T + params[3] - targets) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        results.append((losses, [to_numpy(p) for p in params]))
    (our_losses, our_params), (their_losses, their_params) = results
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-10)
    for ours, theirs in zip(our_params, their_params):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    assert our_losses[-1] < our_losses[0]


# --- what a step does to the tensors ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdamW"])
def test_step_bumps_version_and_skips_params_without_grad(kind):
    params = make_params("tg", initial_arrays(np.float64)[:2])
    optimizer = getattr(optim, kind)(params, lr=0.1)
    params[0].grad = tg.tensor(np.ones(params[0].shape))
    before = [p._version.value for p in params]
    untouched = to_numpy(params[1]).copy()
    optimizer.step()
    assert params[0]._version.value == before[0] + 1
    assert params[1]._version.value == before[1]
    np.testing.assert_array_equal(to_numpy(params[1]), untouched)
    assert params[1] not in optimizer.state or not optimizer.state[params[1]]


def test_step_between_forward_and_backward_is_caught():
    """The update is in place: a graph that saved the old values must refuse to backward through them."""
    w = nn.Parameter(tg.tensor(randn(3)))
    loss = (w * w).sum()  # w's gradient reads w (w * x with a constant x would read only x, as in PyTorch)
    w.grad = tg.tensor(np.ones(3))
    optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_adam_state_layout():
    params = make_params("tg", initial_arrays(np.float32)[:2])
    optimizer = optim.Adam(params, amsgrad=True)
    set_grads("tg", params, gradient_sequence(np.float32, steps=1)[0][:2])
    optimizer.step()
    optimizer.step()
    state = optimizer.state[params[0]]
    assert state["step"] == 2
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        assert isinstance(state[key], tg.Tensor) and state[key].shape == params[0].shape
        assert state[key].dtype is tg.float32


def test_closure_is_evaluated_with_grad_enabled():
    w = nn.Parameter(tg.tensor(randn(3)))
    optimizer = optim.SGD([w], lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    before = to_numpy(w).copy()
    loss = optimizer.step(closure)
    assert_close(loss, (before * before).sum())
    assert_close(w, before - 0.1 * 2 * before)


# --- zero_grad ------------------------------------------------------------------------------------------------------
def test_zero_grad_set_to_none():
    params = make_params("tg", initial_arrays(np.float64)[:2])
    optimizer = optim.SGD(params, lr=0.1)
    (params[0].sum() + (params[1] * params[1]).sum()).backward()
    assert all(p.grad is not None for p in params)
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


def test_zero_grad_to_zeros_then_accumulate():
    params = make_params("tg", initial_arrays(np.float64)[:2])
    optimizer = optim.SGD(params, lr=0.1)
    (params[0].sum() + params[1].sum()).backward()  # sum's gradients are broadcasts of one 1
    optimizer.zero_grad(set_to_none=False)
    for p in params:
        assert p.grad is not None and p.grad.shape == p.shape
        np.testing.assert_array_equal(to_numpy(p.grad), np.zeros(p.shape))
    (params[1] * 3).sum().backward()
    np.testing.assert_array_equal(to_numpy(params[1].grad), np.full(params[1].shape, 3.0))
    np.testing.assert_array_equal(to_numpy(params[0].grad), np.zeros(params[0].shape))


# --- construction -----------------------------------------------------------------------------------------------------
def test_param_groups_take_defaults_and_add_param_group():
    params = make_params("tg", initial_arrays(np.float64))
    optimizer = optim.AdamW([{"params": params[:2], "lr": 0.5}], lr=0.1, betas=(0.8, 0.9))
    optimizer.add_param_group({"params": params[2], "weight_decay": 0.0})
    first, second = optimizer.param_groups
    assert first["lr"] == 0.5 and first["weight_decay"] == 1e-2 and first["betas"] == (0.8, 0.9)
    assert second["lr"] == 0.1 and second["weight_decay"] == 0.0
    assert len(second["params"]) == 1 and second["params"][0] is params[2]
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": [params[0]]})


def test_adam_takes_foreach_and_fused_as_pytorch():
    """Scripts ask `'fused' in inspect.signature(torch.optim.AdamW).parameters` and pass fused=True on a GPU."""
    for kind in ("Adam", "AdamW"):
        assert {"foreach", "fused"} <= set(inspect.signature(getattr(optim, kind)).parameters)
        params = make_params("tg", initial_arrays(np.float32)[:1])
        group = getattr(optim, kind)(params, fused=True).param_groups[0]
        assert group["fused"] is True and group["foreach"] is None
        with pytest.raises(RuntimeError, match="cannot be `True` together"):
            getattr(optim, kind)(params, foreach=True, fused=True)


def test_construction_errors():
    params = make_params("tg", initial_arrays(np.float64)[:2])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(params[0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([params[0] * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": params}, {"params": params[:1]}], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam(params, lr=-1)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        optim.AdamW(params, betas=(0.9, 1.0))


# --- state dicts ------------------------------------------------------------------------------------------------------
def checkpoint_roundtrip(state_dict):
    """What the checkpoint code does: tensors through NumPy (as safetensors would), the rest through JSON."""
    tensors = {(index, key): to_numpy(value).copy() for index, entry in state_dict["state"].items()
               for key, value in entry.items() if isinstance(value, tg.Tensor)}
    scalars = {index: {key: value for key, value in entry.items() if not isinstance(value, tg.Tensor)}
               for index, entry in state_dict["state"].items()}
    text = json.loads(json.dumps({"state": scalars, "param_groups": state_dict["param_groups"]}))
    state = {int(index): entry for index, entry in text["state"].items()}
    for (index, key), array in tensors.items():
        state.setdefault(index, {})[key] = tg.tensor(array)
    return {"state": state, "param_groups": text["param_groups"]}


@pytest.mark.parametrize("name", ["sgd-momentum", "adam-all", "adamw-decay-amsgrad"])
def test_state_dict_roundtrip_resumes_exactly(name):
    kind, options = CONFIG_BY_NAME[name]
    arrays, grads = initial_arrays(np.float64), gradient_sequence(np.float64)
    params = make_params("tg", arrays)
    optimizer = make_optimizer("tg", kind, params, options, TWO_GROUPS)
    run_steps("tg", optimizer, params, grads[:10])
    saved = checkpoint_roundtrip(optimizer.state_dict())
    resumed_params = make_params("tg", [to_numpy(p).copy() for p in params])
    resumed = make_optimizer("tg", kind, resumed_params, dict(options, lr=123.0), TWO_GROUPS)  # lr comes from the dict
    resumed.load_state_dict(saved)
    assert [g["lr"] for g in resumed.param_groups] == [g["lr"] for g in optimizer.param_groups]
    uninterrupted = run_steps("tg", optimizer, params, grads[10:])
    continued = run_steps("tg", resumed, resumed_params, grads[10:])
    assert_same_trajectory(continued, uninterrupted, np.float64, exact=True)
    # the loaded optimizer owns its state: stepping it never touches the state dict it came from
    for entry in saved["state"].values():
        for value in entry.values():
            if isinstance(value, tg.Tensor):
                assert all(value.array is not v.array for s in resumed.state.values() for v in s.values()
                           if isinstance(v, tg.Tensor))


def test_state_dict_layout_is_pytorchs():
    params = make_params("tg", initial_arrays(np.float32))
    optimizer = make_optimizer("tg", "Adam", params, dict(lr=1e-3), TWO_GROUPS)
    set_grads("tg", params, gradient_sequence(np.float32, steps=4)[3])  # parameter 2 has no grad here
    optimizer.step()
    state_dict = optimizer.state_dict()
    assert [g["params"] for g in state_dict["param_groups"]] == [[0, 1], [2, 3]]  # group 0 holds params 0 and 2
    assert sorted(state_dict["state"]) == [0, 2, 3]  # numbered in group order: params[2] (no grad) is index 1
    entry = state_dict["state"][0]
    assert entry["step"] == 1 and isinstance(entry["exp_avg"], tg.Tensor)
    json.dumps(state_dict["param_groups"])
    torch_params = make_params("torch", initial_arrays(np.float32))
    torch_optimizer = make_optimizer("torch", "Adam", torch_params, dict(lr=1e-3), TWO_GROUPS)
    torch_groups = torch_optimizer.state_dict()["param_groups"]
    assert [g["params"] for g in torch_groups] == [g["params"] for g in state_dict["param_groups"]]
    assert set(state_dict["param_groups"][0]) <= set(torch_groups[0])


def test_load_state_dict_from_torch_continues_like_torch():
    """A PyTorch Adam state dict (tensors converted, step a 0-d tensor) resumes on tinygrad_tx."""
    kind, options = CONFIG_BY_NAME["adam-all"]
    arrays, grads = initial_arrays(np.float64), gradient_sequence(np.float64)
    theirs = make_params("torch", arrays)
    torch_optimizer = make_optimizer("torch", kind, theirs, options, TWO_GROUPS)
    run_steps("torch", torch_optimizer, theirs, grads[:10])
    torch_state = torch_optimizer.state_dict()
    converted = {"state": {index: {key: tg.tensor(value.detach().numpy().copy()) for key, value in entry.items()}
                           for index, entry in torch_state["state"].items()},
                 "param_groups": torch_state["param_groups"]}
    ours = make_params("tg", [to_numpy(p).copy() for p in theirs])
    our_optimizer = make_optimizer("tg", kind, ours, options, TWO_GROUPS)
    our_optimizer.load_state_dict(converted)
    assert our_optimizer.state[ours[0]]["step"] == 10
    assert_same_trajectory(run_steps("tg", our_optimizer, ours, grads[10:]),
                           run_steps("torch", torch_optimizer, theirs, grads[10:]), np.float64)


def _trained_state_dict(groups=TWO_GROUPS):
    params = make_params("tg", initial_arrays(np.float64))
    optimizer = make_optimizer("tg", "Adam", params, dict(lr=1e-3), groups)
    run_steps("tg", optimizer, params, gradient_sequence(np.float64, steps=2))
    return optimizer.state_dict()


def test_load_state_dict_errors_name_the_mismatch():
    params = make_params("tg", initial_arrays(np.float64))
    optimizer = make_optimizer("tg", "Adam", params, dict(lr=1e-3), TWO_GROUPS)
    with pytest.raises(ValueError, match="2 parameter groups, the optimizer has 1"):
        make_optimizer("tg", "Adam", params, dict(lr=1e-3)).load_state_dict(_trained_state_dict())
    with pytest.raises(ValueError, match="parameter group 1 has 1 parameters in the state dict, 2 in the optimizer"):
        optimizer.load_state_dict(_trained_state_dict([{"params": [0, 2]}, {"params": [1]}]))
    wrong_shape = _trained_state_dict()
    wrong_shape["state"][1]["exp_avg_sq"] = tg.tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"'exp_avg_sq' of parameter 1 \(group 0\) has shape \(3, 4\), the "
                                         r"parameter has shape \(2, 2, 2\)"):
        optimizer.load_state_dict(wrong_shape)
    unknown = _trained_state_dict()
    unknown["state"][7] = unknown["state"][0]
    with pytest.raises(ValueError, match="state for parameter 7"):
        optimizer.load_state_dict(unknown)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        optimizer.load_state_dict({"state": {}})
    assert not optimizer.state  # failed loads leave the optimizer as it was


def test_load_state_dict_casts_to_parameter_dtype():
    params = make_params("tg", initial_arrays(np.float32))
    optimizer = make_optimizer("tg", "Adam", params, dict(lr=1e-3), TWO_GROUPS)
    optimizer.load_state_dict(_trained_state_dict())  # saved from float64 parameters
    assert all(s["exp_avg"].dtype is tg.float32 for s in optimizer.state.values())


# --- learning-rate schedules ------------------------------------------------------------------------------------------
def nanogpt_get_lr(it, learning_rate, warmup_iters, lr_decay_iters, min_lr):
    """nanoGPT train.py get_lr, verbatim but for the arguments."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


@pytest.mark.parametrize("it", [0, 1, 50, 99, 100, 101, 1000, 2500, 4999, 5000, 5001, 10 ** 6])
def test_cosine_with_warmup_is_nanogpts(it):
    assert cosine_with_warmup(it, 6e-4, 100, 5000, 6e-5) == nanogpt_get_lr(it, 6e-4, 100, 5000, 6e-5)


def test_cosine_with_warmup_shape():
    assert cosine_with_warmup(0, 1.0, 0, 10, 0.1) == 1.0  # no warmup: starts at the peak
    assert cosine_with_warmup(10, 1.0, 4, 10, 0.1) == pytest.approx(0.1)
    assert cosine_with_warmup(5, 1.0, 5, 5, 0.1) == 0.1  # decay_iters == warmup_iters: no division by zero
    lrs = [cosine_with_warmup(it, 1.0, 10, 50, 0.1) for it in range(60)]
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11])) and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_cosine_scheduler_sets_group_lrs():
    params = make_params("tg", initial_arrays(np.float64))
    optimizer = make_optimizer("tg", "AdamW", params, dict(lr=1e-3), TWO_GROUPS)  # group lrs 0.03 and 1e-3
    scheduler = CosineWithWarmup(optimizer, warmup_iters=3, decay_iters=12, min_lr=[3e-3, 1e-4])
    for it in range(15):
        expected = [cosine_with_warmup(it, 0.03, 3, 12, 3e-3), cosine_with_warmup(it, 1e-3, 3, 12, 1e-4)]
        assert scheduler.get_last_lr() == expected
        assert [g["lr"] for g in optimizer.param_groups] == expected
        optimizer.step()
        scheduler.step()
    saved = json.loads(json.dumps(scheduler.state_dict()))
    fresh = CosineWithWarmup(optimizer, warmup_iters=0, decay_iters=1)
    fresh.load_state_dict(saved)
    assert fresh.last_epoch == 15 and fresh.get_last_lr() == scheduler.get_last_lr()
    fresh.step()
    scheduler.step()
    assert fresh.get_last_lr() == scheduler.get_last_lr()


def test_lambda_lr_matches_torch():
    lambdas = [lambda it: 0.9 ** it, lambda it: 1 / (1 + it)]
    results = []
    for lib in ("tg", "torch"):
        params = make_params(lib, initial_arrays(np.float64))
        optimizer = make_optimizer(lib, "SGD", params, dict(lr=0.1), TWO_GROUPS)
        scheduler = (LambdaLR if lib == "tg" else torch.optim.lr_scheduler.LambdaLR)(optimizer, lambdas)
        lrs = []
        for _ in range(8):
            lrs.append(scheduler.get_last_lr())
            optimizer.step()
            scheduler.step()
        results.append(lrs)
    assert results[0] == results[1]


# --- gradient clipping ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    arrays = initial_arrays(np.float64)
    x = randn(5, 4, seed=9)
    results = []
    for lib, module in (("tg", tg), ("torch", torch)):
        params = make_params(lib, arrays)
        loss = (module.tensor(x) @ params[0]).tanh().sum() * 3 + (params[1] * params[1]).sum() + params[2].sum() \
            + params[3] * 2  # params[2]'s and params[3]'s grads are broadcasts on tinygrad_tx
        loss.backward()
        clip = nn.clip_grad_norm_ if lib == "tg" else torch.nn.utils.clip_grad_norm_
        norm = clip(params, max_norm, norm_type=norm_type)
        results.append((to_numpy(norm), [to_numpy(p.grad) for p in params]))
    (our_norm, our_grads), (their_norm, their_grads) = results
    assert our_norm.shape == () and our_norm.dtype == their_norm.dtype
    np.testing.assert_allclose(our_norm, their_norm, rtol=1e-12)
    for ours, theirs in zip(our_grads, their_grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_clip_grad_norm_shared_gradient_memory_is_scaled_once():
    """a + b gives both leaves the same gradient memory; clipping must scale each gradient exactly once."""
    a, b = nn.Parameter(tg.tensor(randn(3, 4))), nn.Parameter(tg.tensor(randn(3, 4, seed=1)))
    ((a + b) * tg.tensor(randn(3, 4, seed=2))).sum().backward()
    expected = to_numpy(a.grad).copy()
    norm = nn.clip_grad_norm_([a, b], 0.1)
    scale = 0.1 / (float(norm) + 1e-6)
    assert_close(a.grad, expected * scale)
    assert_close(b.grad, expected * scale)
