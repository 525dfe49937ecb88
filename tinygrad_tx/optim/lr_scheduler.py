"""Learning-rate schedules: nanoGPT's warmup + cosine decay, and LambdaLR, as torch.optim.lr_scheduler.

A scheduler sets each group's "lr" for the current iteration: construction applies iteration 0,
and each step() (called after optimizer.step()) moves to the next one.
"""
import math


def cosine_with_warmup(it, max_lr, warmup_iters, decay_iters, min_lr):
    """nanoGPT's get_lr: linear warmup to max_lr, cosine decay to min_lr at decay_iters, then min_lr.

    Warmup starts at max_lr / (warmup_iters + 1) so the first iteration does not use lr 0.
    """
    if it < warmup_iters:
        return max_lr * (it + 1) / (warmup_iters + 1)
    if it > decay_iters or decay_iters <= warmup_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))  # 1 -> 0
    return min_lr + coeff * (max_lr - min_lr)


class LRScheduler:
    """Base: subclasses define get_lr() from self.last_epoch and self.base_lrs (each group's starting lr)."""

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for number, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: param 'initial_lr' is not specified in "
                                   f"param_groups[{number}] when resuming (last_epoch != -1)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self):
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rates the last step() set, one per group."""
        return list(self._last_lr)

    def step(self):
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """Everything but the optimizer (and functions, which do not serialize): plain numbers and lists."""
        return {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "lr_lambdas")}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr


class LambdaLR(LRScheduler):
    """lr = initial lr * lr_lambda(iteration), with one function for all groups or one per group."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != groups:
                raise ValueError(f"LambdaLR: expected {groups} lr_lambdas (one per parameter group), got "
                                 f"{len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base_lr * lr_lambda(self.last_epoch) for lr_lambda, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class CosineWithWarmup(LRScheduler):
    """cosine_with_warmup() per iteration, max_lr being each group's initial lr.

    min_lr: one value for all groups or one per group.
    """

    def __init__(self, optimizer, warmup_iters, decay_iters, min_lr=0.0, last_epoch=-1):
        groups = len(optimizer.param_groups)
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * groups
        if len(min_lrs) != groups:
            raise ValueError(f"CosineWithWarmup: expected {groups} min_lr values (one per parameter group), got "
                             f"{len(min_lrs)}")
        if warmup_iters < 0 or decay_iters < 0:
            raise ValueError(f"CosineWithWarmup: warmup_iters ({warmup_iters}) and decay_iters ({decay_iters}) "
                             "must be non-negative")
        self.warmup_iters, self.decay_iters, self.min_lrs = warmup_iters, decay_iters, min_lrs
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [cosine_with_warmup(self.last_epoch, base_lr, self.warmup_iters, self.decay_iters, min_lr)
                for base_lr, min_lr in zip(self.base_lrs, self.min_lrs)]
