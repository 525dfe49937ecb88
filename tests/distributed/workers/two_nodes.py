"""One rank per 'machine': the two launchers' MPI worlds join into one."""
import tinygrad_tx as tg
import tinygrad_tx.distributed as dist

dist.init_process_group("gloo", timeout=60)
t = tg.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(t)
print(f"rank {dist.get_rank()} of {dist.get_world_size()}: sum {t.item()}", flush=True)
dist.destroy_process_group()
