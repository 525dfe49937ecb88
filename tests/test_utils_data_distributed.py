"""DistributedSampler against torch.utils.data.distributed.DistributedSampler: the same shares, lengths and
padding in order; shuffled, a permutation of its own, the same on every rank for one seed and epoch."""
import pytest
import torch.utils.data.distributed as torch_distributed

from tinygrad_tx.utils.data import DistributedSampler


@pytest.mark.parametrize("size, replicas", [(10, 2), (10, 3), (7, 4), (3, 5), (12, 4)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shares_match_torch_in_order(size, replicas, drop_last):
    dataset = list(range(size))
    for rank in range(replicas):
        ours = DistributedSampler(dataset, replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch_distributed.DistributedSampler(dataset, replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffled_shares_cover_the_dataset_and_follow_the_epoch(drop_last):
    dataset = list(range(11))
    samplers = [DistributedSampler(dataset, 3, rank, seed=7, drop_last=drop_last) for rank in range(3)]
    shares = [list(sampler) for sampler in samplers]
    assert len({len(share) for share in shares}) == 1  # every rank takes the same number of steps
    everything = sorted(sum(shares, []))
    if drop_last:
        assert len(everything) == 9 and len(set(everything)) == 9  # disjoint, the tail dropped
    else:
        assert set(everything) == set(dataset) and len(everything) == 12  # one index repeated as padding
    assert [list(s) for s in samplers] == shares  # the same order again within the epoch
    for sampler in samplers:
        sampler.set_epoch(1)
    assert [list(s) for s in samplers] != shares
    assert [list(s) for s in (DistributedSampler(dataset, 3, r, seed=7, drop_last=drop_last) for r in range(3))] \
        == shares  # another process with the same seed draws the same order


def test_refuses_a_rank_outside_the_group_and_needs_a_group_for_defaults():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(list(range(4)), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(list(range(4)))
