"""detect_anomaly(): the first op whose backward produces NaN or inf is named, with its call site."""
import re

import numpy as np
import pytest

import tinygrad_tx as tg
import tinygrad_tx.nn.functional as F
from tinygrad_tx.autograd import detect_anomaly, is_anomaly_enabled, set_detect_anomaly


def _anomaly(run):
    with pytest.raises(RuntimeError) as error:
        run()
    return str(error.value)


def test_sqrt_at_zero_is_named_with_its_shape_and_call_site():
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    with detect_anomaly():
        y = x.sqrt()  # the call site the message must point at
        message = _anomaly(lambda: y.sum().backward())
    assert "Sqrt backward returned inf" in message and "(2,)" in message
    assert re.search(r"test_autograd_anomaly\.py:\d+ in test_sqrt_at_zero", message)
    assert "y = x.sqrt()" in message


def test_log_of_zero_times_zero_is_a_nan_named_at_log():
    x = tg.tensor([[0.0, 2.0]], requires_grad=True)
    with detect_anomaly():
        loss = (x.log() * 0).sum()
        message = _anomaly(loss.backward)
    assert message.startswith("detect_anomaly: Log backward returned NaN") and "(1, 2)" in message


def test_the_first_bad_op_in_backward_order_is_named():
    # sqrt's gradient is inf at 0; the Mul behind it turns it into NaN; the Sqrt runs first in backward
    x = tg.tensor([0.0, 4.0], requires_grad=True)
    with detect_anomaly():
        message = _anomaly(lambda: (x * 0).sqrt().sum().backward())
    assert "Sqrt backward" in message


def test_fused_ops_and_composite_methods_point_at_user_code():
    logits = tg.tensor([[1.0, float("inf")]], requires_grad=True)
    with detect_anomaly():
        loss = F.cross_entropy(logits, tg.tensor([0]))
        message = _anomaly(loss.backward)
    assert "CrossEntropy backward" in message and "test_autograd_anomaly.py" in message


def test_finite_gradients_pass_and_the_mode_is_restored():
    x = tg.tensor([1.0, 4.0], requires_grad=True)
    assert not is_anomaly_enabled()
    with detect_anomaly():
        assert is_anomaly_enabled()
        x.sqrt().sum().backward()
    assert not is_anomaly_enabled()
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 0.25])


def test_without_anomaly_mode_backward_returns_the_nan_silently_as_pytorch():
    x = tg.tensor([0.0], requires_grad=True)
    with np.errstate(all="ignore"):
        (x * 0).sqrt().sum().backward()
    assert np.isnan(x.grad.numpy()).all()


def test_decorator_set_detect_anomaly_and_a_graph_built_outside():
    x = tg.tensor([0.0], requires_grad=True)
    y = x.sqrt()  # recorded outside: no call site to report

    @detect_anomaly()
    def run():
        y.backward(tg.ones(1))

    message = _anomaly(run)
    assert "Sqrt backward" in message and "outside detect_anomaly()" in message
    set_detect_anomaly(True)
    try:
        assert is_anomaly_enabled()
    finally:
        set_detect_anomaly(False)
    assert not is_anomaly_enabled()
