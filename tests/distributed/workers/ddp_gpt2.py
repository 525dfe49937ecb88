"""On 2 ranks, each with half of every batch: DDP GPT-2 training equals one process training on the whole batch,
with and without no_sync accumulation; the first gradient bucket leaves before backward ends; unused parameters
are refused by name, or averaged with find_unused_parameters=True."""
import numpy as np

import tinygrad_tx as tg
import tinygrad_tx.distributed as dist
from tinygrad_tx.autograd import engine
from tinygrad_tx.nn.parallel import DistributedDataParallel as DDP
from models.gpt2 import GPT2, GPT2Config

STEPS, BATCH, BLOCK = 20, 8, 16
CONFIG = GPT2Config(block_size=BLOCK, vocab_size=65, n_layer=2, n_head=2, n_embd=32)


def make_model(seed):
    tg.manual_seed(seed)
    model = GPT2(CONFIG)
    return model, model.configure_optimizers(0.1, 3e-3, (0.9, 0.99))


def batches():
    generator = np.random.default_rng(0)
    for _ in range(STEPS):
        ids = generator.integers(0, CONFIG.vocab_size, size=(BATCH, BLOCK + 1))
        yield tg.tensor(ids[:, :-1]), tg.tensor(ids[:, 1:])


def train(model, optimizer, step):
    for x, y in batches():
        optimizer.zero_grad(set_to_none=True)
        step(model, x, y)
        optimizer.step()
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters()}


def whole_batch(model, x, y):
    model(x, y)[1].backward()


def my_half(model, x, y):
    rows = slice(rank * BATCH // 2, (rank + 1) * BATCH // 2)
    model(x[rows], y[rows])[1].backward()


def my_half_in_two_micro_batches(model, x, y):
    half = BATCH // 2
    first, second = slice(rank * half, rank * half + half // 2), slice(rank * half + half // 2, (rank + 1) * half)
    with model.no_sync():
        (model(x[first], y[first])[1] / 2).backward()
    (model(x[second], y[second])[1] / 2).backward()


def largest_difference(a, b):
    return max(float(np.abs(a[name] - b[name]).max()) for name in a)


dist.init_process_group("gloo", timeout=60)
rank = dist.get_rank()
reference = train(*make_model(1337), whole_batch)

model, optimizer = make_model(1337 + rank)  # rank 1 starts elsewhere: DDP must copy rank 0's weights
ddp = DDP(model, bucket_cap_mb=0.02)  # several buckets on this small model
assert len(ddp.reducer.bucket_positions) > 2, ddp.reducer.bucket_positions
nodes_run, first_launch_at = [], []
engine.backward_observers.append(lambda *_: nodes_run.append(1))
launch = ddp.reducer._launch
ddp.reducer._launch = lambda *a: (first_launch_at.append(len(nodes_run)), launch(*a))
trained = train(ddp, optimizer, my_half)
first_backward_nodes = None
engine.backward_observers.clear()
difference = largest_difference(reference, {n[len("module."):] if n.startswith("module.") else n: v
                                            for n, v in trained.items()})
print(f"rank {rank}: DDP against one process on the whole batch, largest weight difference {difference:.2e}")
assert difference < 2e-5, difference
launches = ddp.reducer.launches
assert launches[0][1], launches  # the first bucket left during backward
nodes_per_backward = len(nodes_run) // STEPS
assert first_launch_at[0] < nodes_per_backward // 2, (first_launch_at[0], nodes_per_backward)
print(f"rank {rank}: {len(launches)} buckets, {sum(running for _, running in launches)} launched while backward "
      f"ran; the first after {first_launch_at[0]} of {nodes_per_backward} backward nodes")

model, optimizer = make_model(1337)
ddp = DDP(model)
accumulated = train(ddp, optimizer, my_half_in_two_micro_batches)
difference = largest_difference(reference, {n[len("module."):]: v for n, v in accumulated.items()})
print(f"rank {rank}: no_sync accumulation against one process, largest weight difference {difference:.2e}")
assert difference < 2e-5, difference


class WithUnused(tg.nn.Module):
    def __init__(self):
        super().__init__()
        self.used, self.unused = tg.nn.Linear(3, 1), tg.nn.Linear(3, 1)

    def forward(self, x):
        return self.used(x).sum()


tg.manual_seed(0)
strict = DDP(WithUnused())
try:
    strict(tg.ones(2, 3)).backward()
    raise AssertionError("an unused parameter was not reported")
except RuntimeError as error:
    assert "unused.weight, unused.bias" in str(error) and "find_unused_parameters=True" in str(error), error
    print(f"rank {rank}: unused parameters refused: {str(error)[:100]}...")
lenient = DDP(WithUnused(), find_unused_parameters=True)
lenient(tg.ones(2, 3) * (rank + 1)).backward()
assert lenient.module.unused.weight.grad is None
assert np.allclose(lenient.module.used.weight.grad.numpy(), [[3.0, 3.0, 3.0]]), lenient.module.used.weight.grad
dist.destroy_process_group()
