"""Modules: which module ran each op, and which modules a picture folds into single nodes.

Every op remembers its chain of running modules, outermost first (Function.module_stack), e.g.
(GPT2, Block h.3, CausalSelfAttention h.3.attn, Linear h.3.attn.c_attn). Containers such as
ModuleList never run forward, so they never appear: a chain's levels are the levels of the
picture. `depth=N` keeps the first N levels as clusters and folds each module at level N into one
node; `roll_repeats` folds a run of identical consecutive sibling modules (h.0 ... h.11) into one
node marked xN (at a level that is still drawn in full, the first of the run stays in full and
the rest become one node).
"""
from dataclasses import dataclass


@dataclass(eq=False)
class ModuleGroup:
    """One node standing for one module, or for a run of identical ones."""
    id: str
    modules: list             # the modules folded in (several for a rolled run)
    level: int                # position in the op chains where these modules sit
    clusters: tuple           # the enclosing modules (chain prefix), outermost first
    drawn_in_full: object = None  # for a run whose first member is still drawn in full: that member


class ModuleNames:
    """Paths of modules inside a model; modules outside it get their class name in angle brackets."""

    def __init__(self, model):
        self.model = model
        self.paths = {id(m): path for path, m in model.named_modules()} if model is not None else {}
        self.parent_of = {}   # id(module) -> (parent module, index among the parent's children)
        if model is not None:
            for _, module in model.named_modules():
                for index, child in enumerate(c for c in module._modules.values() if c is not None):
                    self.parent_of.setdefault(id(child), (module, index))

    def path(self, module):
        return self.paths.get(id(module), f"<{type(module).__name__} outside the model>")


@dataclass(eq=False)
class _Run:
    level: int
    members: list             # the modules folded into one node
    first: object             # the run's first module when it stays drawn in full, else None


def group_ops(ops, names, depth=None, roll_repeats=False):
    """-> {op id: ModuleGroup} for the ops that are folded; ops not in it are drawn as themselves."""
    runs = _rolled_runs(ops, names, depth) if roll_repeats else {}
    groups, folded = {}, {}
    for op in ops:
        for level, module in enumerate(op.modules):
            run = runs.get(id(module))
            if run is not None and run.level == level:
                key, members, first = ("run", id(run)), run.members, run.first
            elif depth is not None and level == depth:
                key, members, first = ("module", id(module)), [module], None
            else:
                continue
            if key not in groups:
                groups[key] = ModuleGroup(f"g{len(groups)}", members, level, op.modules[:level], first)
            folded[op.id] = groups[key]
            break
    return folded


def _rolled_runs(ops, names, depth):
    """id(module) -> _Run, for every module folded into a rolled run."""
    members_at = {}  # (level, enclosing chain, parent) -> {index among the parent's children: module}
    ops_under = {}   # id(module) -> the ops it ran
    for op in ops:
        for level, module in enumerate(op.modules):
            if depth is not None and level > depth:
                break
            parent = names.parent_of.get(id(module))
            if parent is None:
                continue
            key = (level, tuple(id(m) for m in op.modules[:level]), id(parent[0]))
            members_at.setdefault(key, {})[parent[1]] = module
            ops_under.setdefault(id(module), []).append(op)
    runs = {}
    for (level, _, _), by_index in members_at.items():
        for members in _consecutive_identical(by_index, ops_under, level):
            drawn_in_full = depth is None or level < depth
            run = _Run(level, members[1:], members[0]) if drawn_in_full else _Run(level, members, None)
            for module in run.members:
                runs[id(module)] = run
    return runs


def _consecutive_identical(by_index, ops_under, level):
    """Maximal runs (length >= 2) of siblings with consecutive indices and the same structure."""
    runs, current, previous_index, previous_signature = [], [], None, None
    for index in sorted(by_index):
        module = by_index[index]
        signature = _structure(module, ops_under[id(module)], level)
        if current and index == previous_index + 1 and signature == previous_signature:
            current.append(module)
        else:
            if len(current) >= 2:
                runs.append(current)
            current = [module]
        previous_index, previous_signature = index, signature
    if len(current) >= 2:
        runs.append(current)
    return runs


def _structure(module, ops, level):
    """What two modules must share to be drawn as one: class, parameter shapes, and the ops they ran
    (name, inner module classes, input shapes) in order."""
    parameters = tuple((name, tuple(p.shape)) for name, p in module.named_parameters())
    ran = tuple((op.name, tuple(type(m).__name__ for m in op.modules[level + 1:]),
                 tuple(meta[0] if meta is not None else None for meta in op.function._input_meta)) for op in ops)
    return type(module).__name__, parameters, ran
