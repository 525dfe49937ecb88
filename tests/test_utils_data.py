"""tinygrad_tx.utils.data against torch.utils.data: the same datasets through both DataLoaders must give the
same batches wherever the result is deterministic; shuffling is checked for its semantics (PyTorch's random
orders are not reproduced)."""
import collections
import os
import pickle
import time
import warnings
from multiprocessing.reduction import ForkingPickler
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.utils.data as torch_data

import tinygrad_tx as tg
import tinygrad_tx.utils.data as tg_data

Point = collections.namedtuple("Point", ["x", "label"])


# --- comparing batches -------------------------------------------------------------------------------------------
def plain(value):
    """A batch from either library as nested Python values: tensors as (dtype, shape, values), containers tagged."""
    if isinstance(value, (tg.Tensor, torch.Tensor)):
        return ("tensor", str(value.dtype).split(".")[-1], tuple(value.shape), value.tolist())
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.name, value.shape, value.tolist())
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return (type(value).__name__,) + tuple(plain(v) for v in value)
    if isinstance(value, dict):
        return ("dict",) + tuple((k, plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(plain(v) for v in value)
    return value


def assert_same_batches(ours, theirs):
    ours, theirs = [plain(b) for b in ours], [plain(b) for b in theirs]
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"batch {i}: {a} != {b}"


# --- datasets both libraries read (module level, so a worker started by spawn can unpickle them) -----------------
class Samples:
    """A map-style dataset of one kind of sample, made from its index."""

    def __init__(self, kind, n=11):
        self.kind, self.n = kind, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = np.arange(3, dtype=np.float32) + i
        return {"tuple": lambda: (x, i, float(i) / 2, i % 2 == 0, f"s{i}"),
                "dict": lambda: {"x": x, "label": np.int64(i), "name": f"s{i}", "pair": [i, np.float64(i)]},
                "namedtuple": lambda: Point(x.astype(np.float64), i),
                "numpy": lambda: x.reshape(1, 3) * np.float32(i % 3),
                "scalar": lambda: np.float32(i) / 4,
                "int": lambda: i}[self.kind]()


def first_elements(batch):
    return [sample[1] for sample in batch]


def sum_labels(batch):
    return sum(sample[1] for sample in batch)


class StreamMixin:
    """0..n-1; in a worker, every num_workers-th item starting at the worker's id."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = self.worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self):
        return self.n


class OurStream(StreamMixin, tg_data.IterableDataset):
    worker_info = staticmethod(tg_data.get_worker_info)


class TheirStream(StreamMixin, torch_data.IterableDataset):
    worker_info = staticmethod(torch_data.get_worker_info)


def both_loaders(dataset, **kwargs):
    return tg_data.DataLoader(dataset, **kwargs), torch_data.DataLoader(dataset, **kwargs)


LOADER_CASES = [
    ("tuple", {}),
    ("tuple", {"batch_size": 4}),
    ("tuple", {"batch_size": 4, "drop_last": True}),
    ("tuple", {"batch_size": 11}),
    ("tuple", {"batch_size": 20, "drop_last": True}),
    ("tuple", {"batch_size": None}),
    ("tuple", {"batch_size": 3, "collate_fn": first_elements}),
    ("tuple", {"batch_size": 3, "collate_fn": sum_labels}),
    ("tuple", {"sampler": [10, 0, 3, 3]}),
    ("tuple", {"batch_sampler": [[1, 2], [7], [0, 10, 5]]}),
    ("dict", {"batch_size": 5}),
    ("dict", {"batch_size": None}),
    ("namedtuple", {"batch_size": 3}),
    ("namedtuple", {"batch_size": None}),
    ("numpy", {"batch_size": 4}),
    ("numpy", {"batch_size": None}),
    ("scalar", {"batch_size": 6}),
    ("int", {"batch_size": 6, "drop_last": True}),
]


@pytest.mark.parametrize("kind, kwargs", LOADER_CASES, ids=[f"{k}-{kw}" for k, kw in LOADER_CASES])
def test_same_batches_as_torch(kind, kwargs):
    ours, theirs = both_loaders(Samples(kind), **kwargs)
    assert_same_batches(ours, theirs)
    assert len(ours) == len(theirs)


def test_same_batches_as_torch_with_two_workers():
    """Worker processes hand out batches in the sampler's order, whatever order they finish in."""
    for kind, kwargs in [("tuple", {"batch_size": 2}), ("dict", {"batch_size": 4, "drop_last": True})]:
        ours = tg_data.DataLoader(Samples(kind), num_workers=2, **kwargs)
        assert_same_batches(ours, torch_data.DataLoader(Samples(kind), **kwargs))


def test_tensor_dataset_batches_as_torch():
    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    y = np.arange(8)
    ours = tg_data.DataLoader(tg_data.TensorDataset(tg.tensor(x), tg.tensor(y)), batch_size=3)
    theirs = torch_data.DataLoader(torch_data.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=3)
    assert_same_batches(ours, theirs)
    with pytest.raises(AssertionError, match="Size mismatch"):
        tg_data.TensorDataset(tg.zeros(3), tg.zeros(4))


@pytest.mark.parametrize("kwargs", [{"batch_size": 2}, {"batch_size": 2, "drop_last": True}, {"batch_size": None},
                                    {"batch_size": 2, "num_workers": 2}, {"batch_size": 3, "num_workers": 2}])
def test_iterable_dataset_as_torch(kwargs):
    """With workers each one iterates its own copy; torch takes worker 0's batch, then worker 1's, and so on."""
    ours = tg_data.DataLoader(OurStream(7), **kwargs)
    theirs = torch_data.DataLoader(TheirStream(7), **kwargs)
    assert_same_batches(ours, theirs)
    assert len(ours) == len(theirs)


def test_persistent_workers_repeat_epochs():
    loader = tg_data.DataLoader(OurStream(5), batch_size=2, num_workers=2, persistent_workers=True)
    first = [b.tolist() for b in loader]
    workers = loader._iterator._workers
    for _ in range(2):
        assert [b.tolist() for b in loader] == first == [[0, 2], [1, 3], [4]]
    assert loader._iterator._workers is workers and all(w.is_alive() for w in workers)
    # an epoch left early: the next one starts clean
    mapped = tg_data.DataLoader(Samples("int"), batch_size=2, num_workers=2, persistent_workers=True)
    next(iter(mapped))
    assert [b.tolist() for b in mapped] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10]]
    del loader, mapped
    for w in workers:
        w.join(timeout=10)
        assert not w.is_alive()


# --- default_collate ---------------------------------------------------------------------------------------------
COLLATE_CASES = {
    "python floats are float64": [1.5, 2.0],
    "python ints are int64": [1, 2],
    "python bools are bool": [True, False],
    "numpy float32 scalars": [np.float32(1), np.float32(2)],
    "numpy float64 scalars": [np.float64(1), np.float64(2)],
    "numpy int32 scalars": [np.int32(1), np.int32(2)],
    "numpy bool scalars": [np.bool_(True), np.bool_(False)],
    "numpy arrays": [np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)],
    "numpy int64 arrays": [np.arange(3), np.arange(3)],
    "0-d numpy arrays": [np.array(1.5), np.array(2.5)],
    "strings stay": ["a", "b"],
    "tuple becomes list": [(1, 2.5, "x"), (3, 4.5, "y")],
    "list of lists": [[1, 2], [3, 4]],
    "dict": [{"a": 1, "b": np.float32(2)}, {"a": 3, "b": np.float32(4)}],
    "ordered dict": [collections.OrderedDict(b=1.0, a=[2]), collections.OrderedDict(b=3.0, a=[4])],
    "namedtuple": [Point(1.0, 2), Point(3.0, 4)],
    "nested": [{"p": Point([1, 2], {"q": np.ones(2)})}, {"p": Point([3, 4], {"q": np.zeros(2)})}],
}


@pytest.mark.parametrize("batch", COLLATE_CASES.values(), ids=COLLATE_CASES.keys())
def test_default_collate_as_torch(batch):
    assert plain(tg_data.default_collate(batch)) == plain(torch_data.default_collate(batch))
    assert plain(tg_data.default_convert(batch)) == plain(torch_data.default_convert(batch))


def test_default_collate_tensors():
    samples = [np.arange(6, dtype=np.float32).reshape(2, 3) * i for i in range(3)]
    ours = tg_data.default_collate([tg.tensor(s) for s in samples])
    assert plain(ours) == plain(torch_data.default_collate([torch.tensor(s) for s in samples]))
    for sample in [{"t": tg.tensor([1, 2])}, (tg.tensor(1.5), 2)]:
        theirs = torch_data.default_collate([{"t": torch.tensor([1, 2])}] * 2 if isinstance(sample, dict)
                                            else [(torch.tensor(1.5), 2)] * 2)
        assert plain(tg_data.default_collate([sample, sample])) == plain(theirs)


def test_default_collate_errors_as_torch():
    for batch in ([np.array(["a"]), np.array(["b"])], [object(), object()], [[1, 2], [1]],
                  [np.zeros(2), np.zeros(3)]):
        with pytest.raises(Exception) as theirs:
            torch_data.default_collate(batch)
        with pytest.raises(type(theirs.value)):
            tg_data.default_collate(batch)
    with pytest.raises(RuntimeError):
        tg_data.default_collate([tg.zeros(2), tg.zeros(3)])


# --- samplers ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False),
                                                      (2, 5, True), (0, 2, False), (7, 1, False)])
def test_batch_sampler_as_torch(n, batch_size, drop_last):
    ours = tg_data.BatchSampler(range(n), batch_size, drop_last)
    theirs = torch_data.BatchSampler(range(n), batch_size, drop_last)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)
    ours = tg_data.BatchSampler(tg_data.SequentialSampler(range(n)), batch_size, drop_last)
    assert list(ours) == list(theirs)


def test_sampler_argument_checks_as_torch():
    for ours, theirs in [(lambda: tg_data.BatchSampler(range(3), 0, False), lambda: torch_data.BatchSampler(range(3), 0, False)),
                         (lambda: tg_data.BatchSampler(range(3), True, False), lambda: torch_data.BatchSampler(range(3), True, False)),
                         (lambda: tg_data.BatchSampler(range(3), 2, 1), lambda: torch_data.BatchSampler(range(3), 2, 1)),
                         (lambda: tg_data.RandomSampler(range(3), replacement=1), lambda: torch_data.RandomSampler(range(3), replacement=1)),
                         (lambda: tg_data.RandomSampler(range(3), num_samples=0), lambda: torch_data.RandomSampler(range(3), num_samples=0))]:
        with pytest.raises(Exception) as expected:
            theirs()
        with pytest.raises(type(expected.value), match=str(expected.value).split(",")[0]):
            ours()


def test_random_sampler_semantics():
    data = range(10)
    generator = tg.Generator().manual_seed(5)
    sampler = tg_data.RandomSampler(data, generator=generator)
    epochs = [list(sampler) for _ in range(3)]
    assert all(sorted(e) == list(range(10)) for e in epochs)  # each index once per epoch
    assert epochs[0] != epochs[1] != epochs[2]  # a new order each epoch
    generator.manual_seed(5)
    assert [list(sampler) for _ in range(3)] == epochs  # the same seed repeats them

    more = list(tg_data.RandomSampler(data, num_samples=25, generator=generator))
    counts = collections.Counter(more)
    assert len(more) == 25 and sorted(counts) == list(range(10)) and set(counts.values()) == {2, 3}
    fewer = list(tg_data.RandomSampler(data, num_samples=4, generator=generator))
    assert len(set(fewer)) == 4
    drawn = list(tg_data.RandomSampler(data, replacement=True, num_samples=100, generator=generator))
    assert len(drawn) == 100 and set(drawn) <= set(data) and len(set(drawn)) < 100
    for kwargs in [{}, {"num_samples": 25}, {"replacement": True, "num_samples": 7}]:
        assert len(tg_data.RandomSampler(data, **kwargs)) == len(torch_data.RandomSampler(data, **kwargs))

    subset = [3, 30, 300]
    assert sorted(tg_data.SubsetRandomSampler(subset, generator)) == subset
    weighted = list(tg_data.WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 50, generator=generator))
    assert set(weighted) == {1, 3} and len(weighted) == 50
    assert sorted(tg_data.WeightedRandomSampler([1, 1, 0, 1], 3, replacement=False, generator=generator)) == [0, 1, 3]


def test_global_seed_makes_shuffling_repeat():
    def two_epochs(**kwargs):
        loader = tg_data.DataLoader(Samples("int", 12), batch_size=5, shuffle=True, **kwargs)
        return [[b.tolist() for b in loader] for _ in range(2)]

    tg.manual_seed(0)
    first = two_epochs()
    tg.manual_seed(0)
    assert two_epochs() == first
    assert first[0] != first[1]
    assert sorted(sum(first[0], [])) == list(range(12))
    tg.manual_seed(1)
    assert two_epochs() != first
    # the order depends only on the seed, not on where the batches were fetched
    tg.manual_seed(0)
    assert two_epochs(num_workers=2) == first


def test_loader_generator_makes_shuffling_repeat():
    loader = tg_data.DataLoader(Samples("int", 9), batch_size=4, shuffle=True,
                                generator=tg.Generator().manual_seed(3))
    epoch = [b.tolist() for b in loader]
    tg.manual_seed(123)  # the global generator plays no part
    again = tg_data.DataLoader(Samples("int", 9), batch_size=4, shuffle=True, generator=tg.Generator().manual_seed(3))
    assert [b.tolist() for b in again] == epoch
    assert [len(b) for b in epoch] == [4, 4, 1]


# --- datasets and random_split -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n, lengths", [(10, [3, 7]), (10, [0.3, 0.7]), (10, [0.5, 0.25, 0.25]), (11, [0.5, 0.5]),
                                        (7, [0.1] * 10), (103, [0.8, 0.1, 0.1]), (5, [1.0]), (3, [0.5, 0.3, 0.2])])
def test_random_split_sizes_as_torch(n, lengths):
    with warnings.catch_warnings(record=True) as our_warnings:
        warnings.simplefilter("always")
        ours = tg_data.random_split(range(n), lengths, generator=tg.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as their_warnings:
        warnings.simplefilter("always")
        theirs = torch_data.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert [str(w.message) for w in our_warnings] == [str(w.message) for w in their_warnings]
    assert sorted(i for s in ours for i in s) == list(range(n))  # every sample in exactly one split


def test_random_split_repeats_with_its_generator_and_checks_lengths():
    def split(seed):
        return [list(s) for s in tg_data.random_split(range(20), [0.5, 0.5], generator=tg.Generator().manual_seed(seed))]
    assert split(1) == split(1) != split(2)
    for lengths in ([3, 3], [0.5, 0.6], [1.2, -0.2]):
        with pytest.raises(ValueError) as theirs:
            torch_data.random_split(range(10), lengths)
        with pytest.raises(ValueError, match=str(theirs.value)):
            tg_data.random_split(range(10), lengths)


def test_concat_subset_and_chain_as_torch():
    parts = [list(range(3)), list(range(10, 15)), list(range(20, 22))]
    ours, theirs = tg_data.ConcatDataset(parts), torch_data.ConcatDataset(parts)
    assert len(ours) == len(theirs) == 10 and ours.cumulative_sizes == theirs.cumulative_sizes
    assert [ours[i] for i in range(-10, 10)] == [theirs[i] for i in range(-10, 10)]
    with pytest.raises(ValueError):
        ours[-11]
    with pytest.raises(AssertionError):
        tg_data.ConcatDataset([])
    with pytest.raises(AssertionError):
        tg_data.ConcatDataset([OurStream(2)])

    subset = tg_data.Subset(ours, [9, 0, 4])
    assert [subset[i] for i in range(3)] == [21, 0, 11] and len(subset) == 3
    assert_same_batches(tg_data.DataLoader(subset, batch_size=2),
                        torch_data.DataLoader(torch_data.Subset(theirs, [9, 0, 4]), batch_size=2))

    class Squares(tg_data.Dataset):
        def __getitem__(self, i):
            return i * i

        def __len__(self):
            return 4
    added = Squares() + Squares()
    assert isinstance(added, tg_data.ConcatDataset) and [added[i] for i in range(8)] == [0, 1, 4, 9] * 2
    chained = OurStream(2) + OurStream(3)
    assert isinstance(chained, tg_data.ChainDataset) and list(chained) == [0, 1, 0, 1, 2] and len(chained) == 5
    with pytest.raises(NotImplementedError):
        tg_data.Dataset()[0]


# --- DataLoader arguments, len() and workers ---------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    {"batch_size": 3}, {"batch_size": 3, "drop_last": True}, {"batch_size": None}, {"batch_size": 4, "shuffle": True},
    {"batch_sampler": [[0], [1, 2]]}, {"sampler": [1, 2, 3], "batch_size": 2}])
def test_len_as_torch(kwargs):
    ours, theirs = both_loaders(Samples("int", 10), **kwargs)
    assert len(ours) == len(theirs)
    if "batch_sampler" not in kwargs:
        streams = (tg_data.DataLoader(OurStream(10), batch_size=kwargs.get("batch_size", 3),
                                      drop_last=kwargs.get("drop_last", False)),
                   torch_data.DataLoader(TheirStream(10), batch_size=kwargs.get("batch_size", 3),
                                         drop_last=kwargs.get("drop_last", False)))
        assert len(streams[0]) == len(streams[1])


@pytest.mark.parametrize("kwargs", [
    {"num_workers": -1}, {"timeout": -1}, {"prefetch_factor": 2}, {"persistent_workers": True},
    {"shuffle": True, "sampler": [0, 1]}, {"batch_sampler": [[0]], "batch_size": 2},
    {"batch_sampler": [[0]], "drop_last": True}, {"batch_size": None, "drop_last": True}])
def test_argument_errors_as_torch(kwargs):
    with pytest.raises(ValueError) as theirs:
        torch_data.DataLoader(Samples("int"), **kwargs)
    with pytest.raises(ValueError, match=str(theirs.value)[:30]):
        tg_data.DataLoader(Samples("int"), **kwargs)


def test_iterable_dataset_refuses_shuffle_and_samplers():
    for kwargs in [{"shuffle": True}, {"sampler": [0]}, {"batch_sampler": [[0]]}]:
        with pytest.raises(ValueError, match="IterableDataset"):
            tg_data.DataLoader(OurStream(3), **kwargs)
    loader = tg_data.DataLoader(Samples("int"))
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 2


class WorkerReport:
    """Each sample says which worker read it and what worker_init_fn left there."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = tg_data.get_worker_info() or SimpleNamespace(id=-1, num_workers=0, seed=0, dataset=self)
        if i == 7 and getattr(info.dataset, "fail", False):
            raise KeyError("no sample 7")
        return {"index": i, "worker": info.id, "workers": info.num_workers, "seed": info.seed,
                "initialized": getattr(info.dataset, "initialized_by", -1),
                "tensor": tg.tensor([float(i)], requires_grad=getattr(info.dataset, "grad", False)),
                "draw": float(np.random.rand())}


def mark_initialized(worker_id):
    tg_data.get_worker_info().dataset.initialized_by = worker_id


def test_workers_info_init_fn_and_seeds():
    assert tg_data.get_worker_info() is None  # in the main process
    loader = tg_data.DataLoader(WorkerReport(), batch_size=2, num_workers=2, worker_init_fn=mark_initialized,
                                generator=tg.Generator().manual_seed(0))
    batches = list(loader)
    assert [b["index"].tolist() for b in batches] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert [b["worker"].tolist() for b in batches] == [[0, 0], [1, 1], [0, 0], [1, 1]]  # round-robin
    assert all(b["initialized"].tolist() == b["worker"].tolist() for b in batches)
    assert all(b["workers"].tolist() == [2, 2] for b in batches)
    seeds = {tuple(b["worker"].tolist()): b["seed"].tolist()[0] for b in batches}
    assert seeds[(1, 1)] == seeds[(0, 0)] + 1  # base seed + worker id, as PyTorch
    draws = [d for b in batches for d in b["draw"].tolist()]
    assert len(set(draws)) == len(draws)  # the workers' NumPy generators differ
    assert batches[0]["tensor"].dtype == tg.float32 and batches[0]["tensor"].tolist() == [[0.0], [1.0]]


def test_worker_errors_reach_the_main_process():
    dataset = WorkerReport()
    dataset.fail = True
    iterator = iter(tg_data.DataLoader(dataset, batch_size=2, num_workers=2))
    assert next(iterator)["index"].tolist() == [0, 1]
    with pytest.raises(KeyError, match="in DataLoader worker process 1") as error:
        list(iterator)
    assert "no sample 7" in str(error.value)
    with pytest.raises(KeyError, match="no sample 7"):
        list(tg_data.DataLoader(dataset, batch_size=2))  # and the same error without workers
    # a batch that can't cross to the main process (stacking made it part of a graph) is an error, not a hang
    dataset = WorkerReport()
    dataset.grad = True
    with pytest.raises(RuntimeError, match="in DataLoader worker process 0(.|\n)*detach"):
        next(iter(tg_data.DataLoader(dataset, batch_size=2, num_workers=1)))


def test_tensors_pickle_for_worker_processes():
    for tensor in [tg.arange(6).reshape(2, 3), tg.tensor([1.5, 2.5], requires_grad=True), tg.nn.Parameter(tg.ones(2))]:
        copy = pickle.loads(ForkingPickler.dumps(tensor))
        assert type(copy) is type(tensor) and copy.dtype == tensor.dtype and copy.tolist() == tensor.tolist()
        assert copy.requires_grad == tensor.requires_grad
    with pytest.raises(RuntimeError, match="detach"):
        ForkingPickler.dumps(tg.tensor([1.0], requires_grad=True) * 2)


def test_pin_memory():
    loader = tg_data.DataLoader(Samples("numpy"), batch_size=4, pin_memory=True)
    if tg.cuda.is_available():
        batches = list(loader)
    else:  # nothing to pin for: PyTorch's warning, and the batches as without pinning
        with pytest.warns(UserWarning, match="no accelerator is found"):
            batches = list(loader)
    assert_same_batches(batches, torch_data.DataLoader(Samples("numpy"), batch_size=4))


# --- Generator ---------------------------------------------------------------------------------------------------
def test_generator():
    generator = tg.Generator()
    assert generator.initial_seed() == torch.Generator().initial_seed()
    assert generator.manual_seed(7) is generator and generator.initial_seed() == 7
    state = generator.get_state()
    first = list(tg_data.RandomSampler(range(20), generator=generator))
    assert list(tg_data.RandomSampler(range(20), generator=generator)) != first
    generator.set_state(state)
    assert list(tg_data.RandomSampler(range(20), generator=generator)) == first
    seed = generator.seed()
    assert isinstance(seed, int) and generator.initial_seed() == seed
    with pytest.raises(ValueError, match="cpu"):
        tg.Generator(device="cuda")


def test_submodule_paths_as_torch():
    from tinygrad_tx.utils.data.dataloader import DataLoader, default_collate, get_worker_info  # noqa: F401
    from tinygrad_tx.utils.data.dataset import Dataset, Subset, random_split  # noqa: F401
    from tinygrad_tx.utils.data.sampler import BatchSampler, RandomSampler  # noqa: F401
    assert tg.utils.data.DataLoader is DataLoader
    assert all(hasattr(tg_data, name) for name in tg_data.__all__)


class Troublesome:
    """Sample 3 is slow (sleep) or kills its worker (exit), as asked."""

    def __init__(self, trouble):
        self.trouble = trouble

    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 3 and self.trouble == "sleep":
            time.sleep(0.4)
        if i == 3 and self.trouble == "exit":
            os._exit(1)
        return i


def test_timeout_dead_workers_and_out_of_order():
    with pytest.raises(RuntimeError, match="timed out after 0.1 seconds"):
        list(tg_data.DataLoader(Troublesome("sleep"), batch_size=2, num_workers=2, timeout=0.1))
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"):
        list(tg_data.DataLoader(Troublesome("exit"), batch_size=2, num_workers=2))
    # in_order=False hands batches out as they arrive: the slow one comes last
    batches = [b.tolist() for b in tg_data.DataLoader(Troublesome("sleep"), batch_size=2, num_workers=2,
                                                      in_order=False)]
    assert sorted(batches) == [[0, 1], [2, 3], [4, 5]] and batches[-1] == [2, 3]
