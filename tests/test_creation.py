"""Factories, dtype inference, seeding and getting values out, against PyTorch."""
import numpy as np
import pytest
import torch

import tinygrad_tx as tg
from tinygrad_tx import dtype as dtypes
from conftest import assert_close


def _name(dtype):
    return str(dtype).split(".")[-1]


def _same_kind(ours, theirs, values=True):
    assert _name(ours.dtype) == _name(theirs.dtype), (ours.dtype, theirs.dtype)
    assert tuple(ours.shape) == tuple(theirs.shape)
    if values:
        assert_close(ours, theirs)


TENSOR_DATA = [
    1.5, 3, True, [1, 2.5], [[1, 2], [3, 4]], [True, False], [], [[1.0], [2.0]],
    np.zeros(3), np.zeros(3, np.float32), np.zeros(3, np.float16), np.arange(3, dtype=np.int32), np.array([True]),
    np.float64(2.5), np.float32(2.5), np.int32(4), np.int64(4), np.bool_(True), np.array(3.0),
]


@pytest.mark.parametrize("data", TENSOR_DATA, ids=repr)
def test_tensor_dtype_inference(data, device):
    _same_kind(tg.tensor(data, device=device), torch.tensor(data))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "int64", "bool"])
def test_tensor_with_explicit_dtype(dtype):
    data = [[0, 1.5], [2, -3.25]]
    _same_kind(tg.tensor(data, dtype=getattr(tg, dtype)), torch.tensor(data, dtype=getattr(torch, dtype)))


def test_dtype_spellings():
    assert tg.tensor([1], dtype="float64").dtype is tg.float64
    assert tg.tensor([1], dtype=float).dtype is tg.float32
    assert tg.tensor([1.0], dtype=int).dtype is tg.int64
    assert tg.tensor([1], dtype=bool).dtype is tg.bool
    assert tg.tensor([1], dtype=np.float64).dtype is tg.float64
    assert tg.tensor([1], dtype=np.bool_).dtype is tg.bool
    assert tg.tensor([1], dtype=np.dtype("int32")).dtype is tg.int32
    assert (tg.double, tg.float, tg.half, tg.long, tg.int) == (tg.float64, tg.float32, tg.float16, tg.int64, tg.int32)


def test_tensor_copies_its_source():
    source = np.array([1.0, 2.0])
    t = tg.tensor(source)
    source[0] = 9.0
    assert t.tolist() == [1.0, 2.0]
    copy = tg.tensor(t)
    copy[0] = 5.0
    assert t.tolist() == [1.0, 2.0]


def test_tensor_of_a_tensor_is_a_new_leaf():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = tg.tensor(x * 2)
    assert y.is_leaf and not y.requires_grad and y.tolist() == [2.0, 4.0]


@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
@pytest.mark.parametrize("shape", [(2, 3), ((2, 3),), ([4],), ((),), (0, 2)], ids=str)
def test_filled_factories(name, shape, device):
    ours, theirs = getattr(tg, name)(*shape, device=device), getattr(torch, name)(*shape)
    _same_kind(ours, theirs, values=name != "empty")
    if name == "empty":
        assert (ours.numpy() == 0).all()  # ours is zero-filled, so runs repeat exactly


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "randn", "rand"])
@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_factories_with_dtype_and_requires_grad(name, dtype):
    ours = getattr(tg, name)(2, 3, dtype=getattr(tg, dtype), requires_grad=True)
    theirs = getattr(torch, name)(2, 3, dtype=getattr(torch, dtype), requires_grad=True)
    _same_kind(ours, theirs, values=name in ("zeros", "ones"))
    assert ours.requires_grad and ours.is_leaf


@pytest.mark.parametrize("fill", [3, 2.5, True, -1])
def test_full(fill):
    _same_kind(tg.full((2, 3), fill), torch.full((2, 3), fill))
    _same_kind(tg.full((2,), fill, dtype=tg.float64), torch.full((2,), fill, dtype=torch.float64))


@pytest.mark.parametrize("args", [(5,), (2, 10, 3), (5, 0, -2), (0, 1, 0.25), (5.0,), (1, 2.5, 0.5), (-3, 3),
                                  (0, 1, 0.1), (3, 3)], ids=str)
def test_arange(args):
    _same_kind(tg.arange(*args), torch.arange(*args))
    _same_kind(tg.arange(*args, dtype=tg.float64), torch.arange(*args, dtype=torch.float64))


def test_arange_zero_step():
    with pytest.raises(ValueError, match="arange"):
        tg.arange(0, 5, 0)


@pytest.mark.parametrize("args, kwargs", [((0, 5, (3, 4)), {}), ((5, (3,)), {}), ((-2, 2), {"size": (100,)}),
                                          ((0, 3, (2,)), {"dtype": tg.int32})], ids=str)
def test_randint(args, kwargs):
    ours = tg.randint(*args, **kwargs)
    torch_kwargs = {k: (torch.int32 if v is tg.int32 else v) for k, v in kwargs.items()}
    theirs = torch.randint(*args, **torch_kwargs)
    _same_kind(ours, theirs, values=False)
    low, high = (0, args[0]) if len(args) == 2 and isinstance(args[1], tuple) else args[:2]
    values = ours.numpy()
    assert values.min() >= low and values.max() < high


def test_randint_bad_range():
    with pytest.raises(ValueError, match=r"randint.*low \(3\).*high \(3\)"):
        tg.randint(3, 3, (2,))


def test_random_factory_statistics():
    tg.manual_seed(0)
    normal = tg.randn(100_000).numpy()
    uniform = tg.rand(100_000).numpy()
    assert abs(normal.mean()) < 0.02 and abs(normal.std() - 1) < 0.02
    assert uniform.min() >= 0 and uniform.max() < 1 and abs(uniform.mean() - 0.5) < 0.01
    integers = tg.randint(0, 4, (100_000,)).numpy()
    np.testing.assert_allclose(np.bincount(integers) / 100_000, [0.25] * 4, atol=0.01)


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "empty_like", "randn_like", "rand_like"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_like_factories(name, dtype):
    ours = getattr(tg, name)(tg.zeros(2, 3, dtype=getattr(tg, dtype)))
    theirs = getattr(torch, name)(torch.zeros(2, 3, dtype=getattr(torch, dtype)))
    _same_kind(ours, theirs, values=name in ("zeros_like", "ones_like"))
    ours = getattr(tg, name)(tg.zeros(2, 3), dtype=tg.float64)
    assert ours.dtype is tg.float64


def test_like_factories_keep_integer_dtypes():
    _same_kind(tg.zeros_like(tg.tensor([1, 2])), torch.zeros_like(torch.tensor([1, 2])))
    _same_kind(tg.full_like(tg.tensor([1, 2]), 2.5), torch.full_like(torch.tensor([1, 2]), 2.5))
    _same_kind(tg.full_like(tg.tensor([1.0, 2.0]), 7), torch.full_like(torch.tensor([1.0, 2.0]), 7))
    _same_kind(tg.randint_like(tg.zeros(2, 3), 4), torch.randint_like(torch.zeros(2, 3), 4), values=False)
    _same_kind(tg.randint_like(tg.zeros(2, dtype=tg.int32), 1, 4),
               torch.randint_like(torch.zeros(2, dtype=torch.int32), 1, 4), values=False)


def test_new_factories():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64)
    assert x.new_zeros((2, 2)).dtype is tg.float64 and x.new_zeros((2, 2)).shape == (2, 2)
    assert x.new_ones(3).tolist() == [1.0, 1.0, 1.0]
    assert x.new_full((2,), 4).tolist() == [4.0, 4.0]
    assert x.new_tensor([1, 2]).dtype is tg.float64


# --- seeding ------------------------------------------------------------------------------------------------------
def _draws():
    return [tg.randn(3).tolist(), tg.rand(2).tolist(), tg.randint(0, 100, (3,)).tolist(),
            tg.zeros(4).normal_().tolist(), tg.zeros(2).uniform_(-1, 1).tolist()]


def test_manual_seed_makes_runs_repeat():
    tg.manual_seed(123)
    first = _draws()
    tg.manual_seed(123)
    assert _draws() == first
    tg.manual_seed(124)
    assert _draws() != first
    assert tg.initial_seed() == 124


def test_rng_state_round_trip():
    tg.manual_seed(5)
    state = tg.get_rng_state()
    first = _draws()
    tg.set_rng_state(state)
    assert _draws() == first


# --- conversions -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, target", [("float32", "float64"), ("float64", "float32"), ("float32", "int64"),
                                            ("float64", "int32"), ("int64", "float32"), ("float32", "bool"),
                                            ("bool", "float32"), ("float32", "float16")])
def test_to_dtype(source, target):
    data = [[1.5, -2.7, 0.0], [3.2, 0.0, -0.5]] if not source.startswith(("int", "bool")) else [[1, -2, 0], [3, 0, 1]]
    ours = tg.tensor(data, dtype=getattr(tg, source)).to(getattr(tg, target))
    theirs = torch.tensor(data, dtype=getattr(torch, source)).to(getattr(torch, target))
    _same_kind(ours, theirs)


def test_to_variants():
    x = tg.tensor([1.5, 2.5])
    assert x.to(tg.float32) is x  # nothing to do: the same tensor, as in PyTorch
    assert x.to("float64").dtype is tg.float64
    assert x.to(tg.zeros(1, dtype=tg.float64)).dtype is tg.float64
    assert x.to("cpu", tg.float16).dtype is tg.float16
    assert x.to(dtype=tg.int64).tolist() == [1, 2]
    assert x.double().dtype is tg.float64 and x.half().dtype is tg.float16 and x.long().dtype is tg.int64
    assert x.int().dtype is tg.int32 and x.bool().dtype is tg.bool and x.double().float().dtype is tg.float32
    assert x.type_as(tg.tensor([1])).dtype is tg.int64
    assert x.cpu() is x


def test_item_tolist_numpy():
    assert tg.tensor(3).item() == 3 and isinstance(tg.tensor(3).item(), int)
    assert isinstance(tg.tensor(3.5).item(), float) and tg.tensor(3.5).item() == 3.5
    assert tg.tensor(True).item() is True
    assert tg.tensor([[2.5]]).item() == 2.5
    assert tg.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert isinstance(tg.tensor([1.0]).tolist()[0], float)
    assert tg.tensor(1.5).tolist() == 1.5
    array = tg.tensor([1.0, 2.0]).numpy()
    assert isinstance(array, np.ndarray) and array.dtype == np.float32
    assert float(tg.tensor([2.5])) == 2.5 and int(tg.tensor(3.7)) == 3
    assert tg.tensor([1.0], requires_grad=True).detach().numpy().tolist() == [1.0]


def test_shape_queries():
    x = tg.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.size() == (2, 3, 4) and x.size(-1) == 4 and x.size(1) == 3
    assert x.ndim == 3 and x.dim() == 3 and x.numel() == 24 and len(x) == 2
    assert x.element_size() == 4 and tg.zeros(1, dtype=tg.float64).element_size() == 8
    assert [row.shape for row in tg.zeros(2, 3)] == [(3,), (3,)]


def test_repr():
    assert repr(tg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(tg.tensor([1.0], dtype=tg.float64)) == "tensor([1.], dtype=tinygrad_tx.float64)"
    assert "requires_grad=True" in repr(tg.tensor([1.0], requires_grad=True))
    assert "grad_fn=<Mul>" in repr(tg.tensor([1.0], requires_grad=True) * 2)


# --- linspace, eye, randperm ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("start, end, steps, dtype", [
    (0, 1, 5, None), (-2.5, 7, 11, None), (3, -1, 4, None), (0, 1, 1, None), (0, 1, 0, None), (2, 3, 3, "int64"),
    (-1, 7, 5, "int64"), (0, 1, 6, "float64"), (-3, 0, 3, "int32"),
], ids=str)
def test_linspace(start, end, steps, dtype):
    ours = tg.linspace(start, end, steps, dtype=dtype and getattr(tg, dtype))
    theirs = torch.linspace(start, end, steps, dtype=dtype and getattr(torch, dtype))
    _same_kind(ours, theirs)
    with pytest.raises(RuntimeError, match="linspace"):
        tg.linspace(0, 1, -1)


@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2), (0,), (0, 3)], ids=str)
def test_eye(args):
    _same_kind(tg.eye(*args), torch.eye(*args))
    _same_kind(tg.eye(*args, dtype=tg.int64), torch.eye(*args, dtype=torch.int64))


def test_randperm():
    tg.manual_seed(0)
    p = tg.randperm(10)
    assert p.dtype is tg.int64 and sorted(p.tolist()) == list(range(10))
    tg.manual_seed(0)
    assert tg.randperm(10).tolist() == p.tolist()  # manual_seed repeats it
    assert tg.randperm(0).shape == (0,)
    assert tg.randperm(4, dtype=tg.int32).dtype is tg.int32


# --- from_numpy, as_tensor, is_tensor -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.int64, np.bool_])
def test_from_numpy_shares_memory(dtype):
    array = np.zeros((2, 3), dtype=dtype)
    ours, theirs = tg.from_numpy(array), torch.from_numpy(array.copy())
    _same_kind(ours, theirs)
    array[0, 1] = 1
    assert ours[0, 1].item() == 1  # a write to the array shows in the tensor...
    ours[1, 2] = 1
    assert array[1, 2] == 1  # ...and a write to the tensor in the array


def test_from_numpy_refuses_what_it_cannot_share():
    with pytest.raises(TypeError, match="from_numpy: expected a NumPy ndarray, got list"):
        tg.from_numpy([1, 2])
    with pytest.raises(TypeError, match="from_numpy: cannot share an array of dtype uint16"):
        tg.from_numpy(np.zeros(3, np.uint16))


def test_as_tensor():
    t = tg.tensor([1.0, 2.0])
    assert tg.as_tensor(t) is t  # nothing to change: the tensor itself, as PyTorch
    assert tg.as_tensor(t, dtype=tg.float64).dtype is tg.float64
    array = np.zeros(3)
    shared = tg.as_tensor(array)
    array[0] = 5
    assert shared.tolist() == [5.0, 0.0, 0.0] and shared.dtype is tg.float64
    copied = tg.as_tensor(array, dtype=tg.float32)
    array[1] = 7
    assert copied.tolist() == [5.0, 0.0, 0.0]
    for data in ([1, 2.0], 3, [[True]], np.zeros(2, np.int32)):
        _same_kind(tg.as_tensor(data), torch.as_tensor(data))
    assert tg.is_tensor(t) and not tg.is_tensor(array) and not tg.is_tensor(3)


# --- finfo, iinfo, the default dtype ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo(name):
    ours, theirs = tg.finfo(getattr(tg, name)), torch.finfo(getattr(torch, name))
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert repr(ours) == repr(theirs)


def test_bfloat16_finfo_and_the_refusal_without_ml_dtypes(monkeypatch):
    """finfo(bfloat16) answers as torch's whether or not ml_dtypes, which stores bfloat16 tensors, is installed;
    without it, making a bfloat16 tensor raises an error that says how to install it."""
    ours, theirs = tg.finfo(tg.bfloat16), torch.finfo(torch.bfloat16)
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert tg.finfo("bfloat16").eps == theirs.eps and tg.bfloat16 != tg.float16
    monkeypatch.setattr(dtypes, "ml_dtypes", None)
    assert tg.finfo(tg.bfloat16).eps == theirs.eps
    for make in (lambda: tg.zeros(2, dtype=tg.bfloat16), lambda: tg.tensor([1.0], dtype="bfloat16"),
                 lambda: tg.ones(2).to(tg.bfloat16), lambda: tg.randn(2, dtype=tg.bfloat16),
                 lambda: tg.ones(2).bfloat16()):
        with pytest.raises(ImportError, match=r"bfloat16 needs the ml_dtypes package.*tinygrad_tx\[bf16\]"):
            make()


@pytest.mark.parametrize("name", ["int32", "int64"])
def test_iinfo(name):
    ours, theirs = tg.iinfo(getattr(tg, name)), torch.iinfo(getattr(torch, name))
    for field in ("bits", "max", "min", "dtype"):
        assert getattr(ours, field) == getattr(theirs, field), field


def test_finfo_iinfo_refuse_the_other_kind():
    assert tg.finfo().dtype == "float32"
    with pytest.raises(TypeError, match="finfo"):
        tg.finfo(tg.int64)
    with pytest.raises(TypeError, match="iinfo"):
        tg.iinfo(tg.float32)
    with pytest.raises(TypeError, match="iinfo"):
        tg.iinfo(tg.bool)


@pytest.fixture
def float64_default():
    tg.set_default_dtype(tg.float64)
    torch.set_default_dtype(torch.float64)
    yield
    tg.set_default_dtype(tg.float32)
    torch.set_default_dtype(torch.float32)


def test_set_default_dtype(float64_default):
    assert tg.get_default_dtype() is tg.float64
    makers = [lambda t: t.tensor(1.5), lambda t: t.tensor([1, 2.5]), lambda t: t.zeros(2), lambda t: t.ones(2, 3),
              lambda t: t.full((2,), 1.5), lambda t: t.empty(2), lambda t: t.randn(2), lambda t: t.rand(2),
              lambda t: t.arange(0, 1, 0.5), lambda t: t.linspace(0, 1, 3), lambda t: t.eye(2),
              lambda t: t.tensor([1, 2]) * 2.5, lambda t: t.tensor([1, 2]) / 2, lambda t: t.tensor([1, 2]).exp(),
              lambda t: t.where(t.tensor([True]), 1.0, 0.0), lambda t: t.tensor([1, 2]).float(),
              lambda t: t.tensor(np.float32(1.0)), lambda t: t.zeros_like(t.zeros(2, dtype=t.int64), dtype=float)]
    for i, make in enumerate(makers):
        ours, theirs = make(tg), make(torch)
        assert _name(ours.dtype) == _name(theirs.dtype), i
    assert tg.nn.Linear(2, 2).weight.dtype is tg.float64
    assert repr(tg.tensor([1.5])) == "tensor([1.5])"  # the default dtype goes unnamed, as in PyTorch
    assert "dtype=tinygrad_tx.float32" in repr(tg.tensor([1.5], dtype=tg.float32))
    assert tg.finfo().dtype == "float64"


def test_set_default_dtype_refuses_integers():
    with pytest.raises(TypeError, match="set_default_dtype"):
        tg.set_default_dtype(tg.int64)
    assert tg.get_default_dtype() is tg.float32


# --- Size, and the small conveniences of a tensor ---------------------------------------------------------------------
def test_size():
    x = tg.zeros(2, 3, 4)
    assert isinstance(x.shape, tg.Size) and isinstance(x.size(), tg.Size) and isinstance(x.shape, tuple)
    assert x.shape == (2, 3, 4) and x.size() == torch.Size([2, 3, 4]) and x.size(-1) == 4
    assert repr(x.shape) == str(x.shape) == "tinygrad_tx.Size([2, 3, 4])"
    assert repr(tg.tensor(1.0).shape) == "tinygrad_tx.Size([])"
    assert x.shape.numel() == 24 and tg.Size([]).numel() == 1 and tg.zeros(0, 3).shape.numel() == 0
    assert isinstance(x.shape[1:], tg.Size) and x.shape[1:] == (3, 4) and x.shape[0] == 2
    assert isinstance(x.shape + (5,), tg.Size) and (1,) + x.shape == (1, 2, 3, 4)
    assert isinstance((1,) + x.shape, tg.Size)
    batch, *rest = x.shape
    assert batch == 2 and rest == [3, 4]
    assert tg.zeros(x.shape).shape == x.shape and x.reshape(x.shape[0], -1).shape == (2, 12)
    import pickle
    assert pickle.loads(pickle.dumps(x.shape)) == x.shape and type(pickle.loads(pickle.dumps(x.shape))) is tg.Size
    assert tg.numel(x) == 24


def test_format():
    loss = tg.tensor(1.23456, requires_grad=True) * 2
    assert f"{loss:.4f}" == f"{torch.tensor(1.23456) * 2:.4f}" == "2.4691"
    assert f"{tg.tensor(3)}" == f"{torch.tensor(3)}" == "3"
    assert f"{tg.tensor([1.5])}" == str(tg.tensor([1.5]))
    assert "{:>8.2f}".format(tg.tensor(2.5)) == "    2.50"
    with pytest.raises(TypeError):
        f"{torch.tensor([1.5]):.2f}"
    with pytest.raises(TypeError):
        f"{tg.tensor([1.5]):.2f}"


def test_type_new_empty_is_floating_point():
    x = tg.zeros(2)
    assert x.type() == "tinygrad_tx.FloatTensor" and tg.tensor([1]).type() == "tinygrad_tx.LongTensor"
    assert tg.tensor([True]).type() == "tinygrad_tx.BoolTensor" and x.double().type() == "tinygrad_tx.DoubleTensor"
    assert x.type(tg.float64).dtype is tg.float64 and x.type("tinygrad_tx.IntTensor").dtype is tg.int32
    assert x.type("float16").dtype is tg.float16
    with pytest.raises(ValueError, match="type: unknown tensor type"):
        x.type("tinygrad_tx.ComplexTensor")
    for size in ((3,), (2, 3)):
        empty = x.new_empty(*size)
        assert empty.shape == size and empty.dtype is tg.float32
    assert x.new_empty((2,), dtype=tg.int64).dtype is tg.int64
    assert x.is_floating_point() and not tg.tensor([1]).is_floating_point()
