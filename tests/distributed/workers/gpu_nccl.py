"""What one GPU can check of the NCCL path (benchmarks/gpu_check.sh runs this under the launcher, world size 1):
NcclCollectives on CuPy's real NCCL in float32, float16 and bfloat16; DDP's buckets on the GPU train as the
plain model does; the MPI backend moves GPU tensors through the host. Two ranks on two GPUs remain unchecked."""
import numpy as np

import tinygrad_tx as tg
import tinygrad_tx.distributed as dist
from tinygrad_tx.nn.parallel import DistributedDataParallel as DDP
from models.gpt2 import GPT2, GPT2Config

dist.init_process_group("nccl", timeout=60)
assert dist.get_world_size() == 1
for dtype in (tg.float32, tg.float16, tg.bfloat16):
    values = tg.tensor([[1.5, -2.0, 3.25]], device="cuda").to(dtype)
    t = values.clone()
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    assert t.dtype is dtype and t.device == "cuda:0" and t.cpu().float().tolist() == values.cpu().float().tolist()
    dist.broadcast(t, src=0)
    gathered = [tg.zeros(1, 3, dtype=dtype, device="cuda")]
    dist.all_gather(gathered, values)
    assert gathered[0].cpu().float().tolist() == values.cpu().float().tolist()
    out = tg.zeros(1, 3, dtype=dtype, device="cuda")
    dist.reduce_scatter(out, [values], op=dist.ReduceOp.MAX)
    assert out.cpu().float().tolist() == values.cpu().float().tolist()
try:
    dist.all_reduce(tg.ones(2))
    raise AssertionError("nccl took a CPU tensor")
except RuntimeError as error:
    assert "nccl" in str(error)
print("NCCL collectives on the GPU: float32, float16, bfloat16 pass")


def train(wrap):
    tg.manual_seed(0)
    model = GPT2(GPT2Config(block_size=16, vocab_size=65, n_layer=2, n_head=2, n_embd=32)).to("cuda")
    optimizer = model.configure_optimizers(0.1, 3e-3, (0.9, 0.99))
    trained = wrap(model)
    generator = np.random.default_rng(0)
    for _ in range(5):
        ids = tg.tensor(generator.integers(0, 65, size=(4, 17)), device="cuda")
        optimizer.zero_grad(set_to_none=True)
        trained(ids[:, :-1], ids[:, 1:])[1].backward()
        optimizer.step()
    return [p.detach().cpu().numpy() for p in model.parameters()], trained


plain, _ = train(lambda model: model)
bucketed, ddp = train(lambda model: DDP(model, bucket_cap_mb=0.02))
assert len(ddp.reducer.bucket_positions) > 2 and ddp.reducer.launches[0][1]
difference = max(float(np.abs(a - b).max()) for a, b in zip(plain, bucketed))
assert difference < 1e-5, difference
print(f"DDP on the GPU, {len(ddp.reducer.bucket_positions)} buckets over NCCL: equals the plain model "
      f"(largest difference {difference:.1e})")
dist.destroy_process_group()

dist.init_process_group("gloo", timeout=60)  # MPI carries GPU tensors through host copies
t = tg.tensor([1.0, 2.0], device="cuda").to(tg.bfloat16)
dist.all_reduce(t, op=dist.ReduceOp.SUM)
assert t.device == "cuda:0" and t.dtype is tg.bfloat16 and t.cpu().float().tolist() == [1.0, 2.0]
print("the MPI backend with GPU tensors passes")
dist.destroy_process_group()
