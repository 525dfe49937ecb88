"""Learning-rate schedules against torch.optim.lr_scheduler: the whole sequence of learning rates (and momenta,
for OneCycleLR) over many steps, with two parameter groups, must be PyTorch's; a state-dict round trip in the
middle must not change it; the warnings and the errors are PyTorch's."""
import json
import math
import warnings

import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from tinygrad_tx import nn, optim
from tinygrad_tx.optim import lr_scheduler

STEPS = 60


def make_optimizer(lib, kind="SGD", **options):
    """Two groups with different lrs, so a schedule that mixes them up is caught."""
    if lib == "tg":
        params = [nn.Parameter(tg.zeros(2)), nn.Parameter(tg.zeros(3))]
        cls = getattr(optim, kind)
    else:
        params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
        cls = getattr(torch.optim, kind)
    options = {"lr": 0.1, **options}
    return cls([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.03}], **options)


def scheduler_class(lib, name):
    return getattr(lr_scheduler if lib == "tg" else torch.optim.lr_scheduler, name)


def make_scheduler(lib, optimizer, name, options):
    if name == "SequentialLR":  # a warmup, then a cosine decay (the usual pairing)
        warmup = scheduler_class(lib, "LinearLR")(optimizer, start_factor=0.1, total_iters=5)
        decay = scheduler_class(lib, "CosineAnnealingLR")(optimizer, T_max=30, eta_min=1e-4)
        hold = scheduler_class(lib, "ConstantLR")(optimizer, factor=0.5, total_iters=4)
        return scheduler_class(lib, name)(optimizer, [warmup, decay, hold], milestones=[5, 40])
    return scheduler_class(lib, name)(optimizer, **options)


def momentum_of(group):
    return group["betas"][0] if "betas" in group else group.get("momentum")


def record(optimizer, scheduler):
    return (scheduler.get_last_lr(), [group["lr"] for group in optimizer.param_groups],
            [momentum_of(group) for group in optimizer.param_groups])


def run(lib, name, options, steps=STEPS, kind="SGD", optimizer_options=None):
    optimizer = make_optimizer(lib, kind, **(optimizer_options or {}))
    scheduler = make_scheduler(lib, optimizer, name, options)
    history = [record(optimizer, scheduler)]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        history.append(record(optimizer, scheduler))
    return history


SCHEDULES = [  # (name, options, optimizer, optimizer options, steps)
    ("LambdaLR", dict(lr_lambda=lambda it: 0.95 ** it + 0.01 * (it % 3)), "SGD", {}, STEPS),
    ("StepLR", dict(step_size=7), "SGD", {}, STEPS),
    ("StepLR", dict(step_size=3, gamma=0.5), "SGD", {}, STEPS),
    ("MultiStepLR", dict(milestones=[30, 5, 12, 12], gamma=0.3), "SGD", {}, STEPS),
    ("ConstantLR", dict(factor=0.25, total_iters=6), "SGD", {}, STEPS),
    ("ExponentialLR", dict(gamma=0.93), "SGD", {}, STEPS),
    ("CosineAnnealingLR", dict(T_max=17), "SGD", {}, STEPS),  # past T_max: rises again
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.005), "SGD", {}, STEPS),
    ("LinearLR", dict(), "SGD", {}, STEPS),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.05, total_iters=40), "SGD", {}, STEPS),
    ("SequentialLR", dict(), "SGD", {}, STEPS),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=STEPS), "SGD", dict(momentum=0.9), STEPS),
    ("OneCycleLR", dict(max_lr=[0.5, 0.2], total_steps=STEPS, anneal_strategy="linear"), "SGD", dict(momentum=0.9),
     STEPS),
    ("OneCycleLR", dict(max_lr=0.01, epochs=6, steps_per_epoch=10, three_phase=True, pct_start=0.25), "AdamW", {},
     STEPS),
    ("OneCycleLR", dict(max_lr=0.01, total_steps=100, cycle_momentum=False, div_factor=10.0), "Adam", {}, 99),
    ("OneCycleLR", dict(max_lr=0.01, total_steps=STEPS, base_momentum=0.8, max_momentum=[0.9, 0.99]), "Adam", {},
     STEPS),
]
SCHEDULE_IDS = [f"{name}-{number}" for number, (name, *_) in enumerate(SCHEDULES)]


@pytest.mark.parametrize("name, options, kind, optimizer_options, steps", SCHEDULES, ids=SCHEDULE_IDS)
def test_sequence_matches_torch(name, options, kind, optimizer_options, steps):
    ours = run("tg", name, options, steps, kind, optimizer_options)
    theirs = run("torch", name, options, steps, kind, optimizer_options)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"{name} at step {step}: {a} != PyTorch's {b}"


@pytest.mark.parametrize("name, options, kind, optimizer_options, steps", SCHEDULES, ids=SCHEDULE_IDS)
def test_state_dict_round_trip_continues_the_sequence(name, options, kind, optimizer_options, steps):
    """Stop halfway, save both state dicts (through JSON), rebuild everything fresh, load, and carry on: the
    learning rates are those of the uninterrupted run."""
    uninterrupted = run("tg", name, options, steps, kind, optimizer_options)
    optimizer = make_optimizer("tg", kind, **optimizer_options)
    scheduler = make_scheduler("tg", optimizer, name, options)
    half = steps // 2 + 1
    for _ in range(half):
        optimizer.step()
        scheduler.step()
    saved_scheduler = json.loads(json.dumps(scheduler.state_dict(), default=lambda value: None))
    saved_optimizer = optimizer.state_dict()
    optimizer = make_optimizer("tg", kind, **optimizer_options)
    scheduler = make_scheduler("tg", optimizer, name, options)
    optimizer.load_state_dict(saved_optimizer)
    scheduler.load_state_dict(saved_scheduler)
    history = [record(optimizer, scheduler)]
    for _ in range(steps - half):
        optimizer.step()
        scheduler.step()
        history.append(record(optimizer, scheduler))
    assert history == uninterrupted[half:]


def test_loading_restores_the_learning_rates_without_the_optimizer_state():
    optimizer = make_optimizer("tg")
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    saved = scheduler.state_dict()
    fresh_optimizer = make_optimizer("tg")
    fresh = lr_scheduler.StepLR(fresh_optimizer, step_size=2)
    fresh.load_state_dict(saved)
    assert [group["lr"] for group in fresh_optimizer.param_groups] == scheduler.get_last_lr()
    for _ in range(4):
        optimizer.step(), fresh_optimizer.step()
        scheduler.step(), fresh.step()
        assert fresh.get_last_lr() == scheduler.get_last_lr()


def test_lambda_lr_saves_callable_objects_not_functions():
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, it):
            return self.rate ** it

    for lib in ("tg", "torch"):
        optimizer = make_optimizer(lib)
        scheduler = scheduler_class(lib, "LambdaLR")(optimizer, [Decay(0.5), lambda it: 1.0])
        saved = scheduler.state_dict()
        assert saved["lr_lambdas"] == [{"rate": 0.5}, None]
        other = Decay(0.9)
        scheduler_class(lib, "LambdaLR")(make_optimizer(lib), [other, lambda it: 1.0]).load_state_dict(saved)
        assert other.rate == 0.5


def chained(lib):
    """Two chainable schedules on one optimizer: their factors multiply."""
    optimizer = make_optimizer(lib)
    first = scheduler_class(lib, "ExponentialLR")(optimizer, gamma=0.9)
    second = scheduler_class(lib, "StepLR")(optimizer, step_size=3, gamma=0.5)
    lrs = []
    for _ in range(12):
        optimizer.step()
        first.step()
        second.step()
        lrs.append([group["lr"] for group in optimizer.param_groups])
    return lrs


def test_two_schedules_on_one_optimizer_compose_as_torch():
    assert chained("tg") == chained("torch")


@pytest.mark.parametrize("name, options", [("StepLR", dict(step_size=3)), ("MultiStepLR", dict(milestones=[2, 5])),
                                           ("ExponentialLR", dict(gamma=0.8)), ("CosineAnnealingLR", dict(T_max=9)),
                                           ("LinearLR", dict(total_iters=4)), ("ConstantLR", dict(total_iters=4))])
def test_step_with_an_epoch_uses_the_closed_form_and_warns(name, options):
    results = []
    for lib in ("tg", "torch"):
        optimizer = make_optimizer(lib)
        scheduler = scheduler_class(lib, name)(optimizer, **options)
        lrs = []
        for epoch in (3, 7, 1, 12):
            optimizer.step()
            with pytest.warns(UserWarning, match="epoch parameter"):
                scheduler.step(epoch)
            lrs.append(scheduler.get_last_lr())
        results.append(lrs)
    assert results[0] == results[1]


def test_resuming_with_last_epoch():
    results = []
    for lib in ("tg", "torch"):
        optimizer = make_optimizer(lib)
        for group in optimizer.param_groups:
            group["initial_lr"] = group["lr"] * 2
        scheduler = scheduler_class(lib, "CosineAnnealingLR")(optimizer, T_max=20, last_epoch=6)
        lrs = [scheduler.get_last_lr()]
        for _ in range(5):
            optimizer.step()
            scheduler.step()
            lrs.append(scheduler.get_last_lr())
        results.append(lrs)
    assert results[0] == results[1]
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(make_optimizer("tg"), step_size=2, last_epoch=3)


# --- warnings ---------------------------------------------------------------------------------------------------
def test_stepping_before_the_optimizer_warns_as_torch():
    for lib in ("tg", "torch"):
        optimizer = make_optimizer(lib)
        scheduler = scheduler_class(lib, "StepLR")(optimizer, step_size=2)
        with pytest.warns(UserWarning, match=r"`lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
            scheduler.step()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            scheduler.step()  # warned once, on the first step only
    for lib in ("tg", "torch"):
        optimizer = make_optimizer(lib)
        scheduler = scheduler_class(lib, "StepLR")(optimizer, step_size=2)
        optimizer.step()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            scheduler.step()


def test_get_lr_outside_step_warns():
    scheduler = lr_scheduler.StepLR(make_optimizer("tg"), step_size=2)
    with pytest.warns(UserWarning, match="get_last_lr"):
        scheduler.get_lr()


def test_old_base_name_and_subclassing():
    class Halving(lr_scheduler._LRScheduler):
        def get_lr(self):
            return [base_lr * 0.5 ** self.last_epoch for base_lr in self.base_lrs]

    optimizer = make_optimizer("tg")
    scheduler = Halving(optimizer)
    optimizer.step()
    scheduler.step()
    assert scheduler.get_last_lr() == [0.05, 0.015] and isinstance(scheduler, lr_scheduler.LRScheduler)


# --- ReduceLROnPlateau --------------------------------------------------------------------------------------------
METRICS = [1.0, 0.9, 0.9, 0.95, 0.9, 0.89995, 0.91, 0.92, 0.5, 0.5, 0.5, 0.5, 0.6, 0.49, 0.7, 0.7, 0.7, 0.7, 0.7,
           0.7, 0.7, 0.7, 0.7, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]


@pytest.mark.parametrize("options", [
    dict(), dict(patience=2), dict(patience=1, cooldown=2), dict(mode="max", patience=1, factor=0.5),
    dict(patience=0, threshold=0.05, threshold_mode="abs", min_lr=[0.004, 0.001]),
    dict(mode="max", threshold_mode="abs", patience=1, threshold=0.0), dict(patience=0, min_lr=0.02, eps=1e-3),
    dict(patience=0, factor=0.9, eps=0.01)], ids=str)
def test_reduce_lr_on_plateau_matches_torch(options):
    results = []
    for lib in ("tg", "torch"):
        optimizer = make_optimizer(lib)
        scheduler = scheduler_class(lib, "ReduceLROnPlateau")(optimizer, **options)
        history = []
        for metric in METRICS:
            optimizer.step()
            scheduler.step(metric if lib == "tg" else torch.tensor(metric, dtype=torch.float64))
            history.append((scheduler.get_last_lr(), scheduler.num_bad_epochs, scheduler.cooldown_counter,
                            scheduler.best, scheduler.last_epoch))
        results.append(history)
    assert results[0] == results[1]


def test_reduce_lr_on_plateau_state_dict_round_trip():
    optimizer = make_optimizer("tg")
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, patience=1, cooldown=1)
    for metric in METRICS[:15]:
        scheduler.step(metric)
    saved = json.loads(json.dumps(scheduler.state_dict()))
    fresh = lr_scheduler.ReduceLROnPlateau(make_optimizer("tg"), mode="max")
    fresh.load_state_dict(saved)
    for metric in METRICS[15:]:
        scheduler.step(metric)
        fresh.step(metric)
        assert fresh.get_last_lr() == scheduler.get_last_lr() and fresh.best == scheduler.best


def test_reduce_lr_on_plateau_takes_a_tensor_metric():
    optimizer = make_optimizer("tg")
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, patience=0)
    scheduler.step(tg.tensor(1.0))
    scheduler.step(tg.tensor(2.0))
    assert scheduler.get_last_lr() == pytest.approx([0.01, 0.003])


# --- errors -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, options, match", [
    ("LinearLR", dict(start_factor=0), "start_factor"),
    ("LinearLR", dict(end_factor=1.5), "end_factor"),
    ("ConstantLR", dict(factor=2), "factor"),
    ("OneCycleLR", dict(max_lr=0.1), "total_steps"),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=0), "total_steps"),
    ("OneCycleLR", dict(max_lr=0.1, epochs=2, steps_per_epoch=2.5), "steps_per_epoch"),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, pct_start=1), "pct_start"),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, anneal_strategy="exp"), "anneal_strategy"),
    ("OneCycleLR", dict(max_lr=[0.1, 0.2, 0.3], total_steps=10), "max_lr"),
    ("ReduceLROnPlateau", dict(factor=1.0), "factor"),
    ("ReduceLROnPlateau", dict(mode="mean"), "mode"),
    ("ReduceLROnPlateau", dict(threshold_mode="ratio"), "threshold mode"),
    ("ReduceLROnPlateau", dict(min_lr=[0.1]), "min_lrs"),
])
def test_bad_arguments_raise_value_error_as_torch(name, options, match):
    with pytest.raises(ValueError):
        scheduler_class("torch", name)(make_optimizer("torch"), **options)
    with pytest.raises(ValueError, match=match):
        scheduler_class("tg", name)(make_optimizer("tg"), **options)


def test_step_lr_refuses_a_zero_step_size_when_made():
    """PyTorch takes it and fails at the first step with a ZeroDivisionError; the constructor says why instead."""
    scheduler = torch.optim.lr_scheduler.StepLR(make_optimizer("torch"), step_size=0)
    with pytest.raises(ZeroDivisionError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler.step()
    with pytest.raises(ValueError, match="step_size must be a positive integer, got 0"):
        lr_scheduler.StepLR(make_optimizer("tg"), step_size=0)


def test_one_cycle_needs_a_momentum_and_stops_after_total_steps():
    class Plain(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, dict(lr=0.1))

        def step(self, closure=None):
            pass

    with pytest.raises(ValueError, match="momentum"):
        lr_scheduler.OneCycleLR(Plain([nn.Parameter(tg.zeros(1))]), max_lr=0.1, total_steps=5)
    optimizer = make_optimizer("tg", momentum=0.9)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=3)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    with pytest.raises(ValueError, match="tried to step 4 times"):
        scheduler.step()


def test_a_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.ReduceLROnPlateau([0.1])


def test_sequential_lr_errors():
    optimizer = make_optimizer("tg")
    first, second = lr_scheduler.ConstantLR(optimizer), lr_scheduler.ExponentialLR(optimizer, 0.9)
    with pytest.raises(ValueError, match="milestone"):
        lr_scheduler.SequentialLR(optimizer, [first, second], milestones=[2, 4])
    with pytest.raises(ValueError, match="at least one"):
        lr_scheduler.SequentialLR(optimizer, [], milestones=[])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        lr_scheduler.SequentialLR(optimizer, [first, lr_scheduler.ReduceLROnPlateau(optimizer)], milestones=[2])
    other = lr_scheduler.ConstantLR(make_optimizer("tg"))
    with pytest.raises(ValueError, match="belong to its optimizer"):
        lr_scheduler.SequentialLR(optimizer, [first, other], milestones=[2])


def test_cycle_momentum_drives_adams_beta1_in_training():
    """A real training step reads the scheduled beta1: AdamW under OneCycleLR moves as torch's."""
    results = []
    for lib in ("tg", "torch"):
        module = tg if lib == "tg" else torch
        weight = (nn.Parameter if lib == "tg" else torch.nn.Parameter)(module.tensor(np.linspace(-1, 1, 6)))
        optimizer = (optim.AdamW if lib == "tg" else torch.optim.AdamW)([weight], lr=1e-3)
        scheduler = scheduler_class(lib, "OneCycleLR")(optimizer, max_lr=0.05, total_steps=20)
        for _ in range(20):
            optimizer.zero_grad()
            ((weight - 0.3) ** 4).sum().backward()
            optimizer.step()
            scheduler.step()
        results.append(weight.detach().numpy().copy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-10, atol=1e-12)
    assert not math.isclose(results[0][0], -1.0)
