"""Checkpoints: weights and optimizer tensors as safetensors, everything else as JSON. Never pickle.

OUT_DIR/ckpt/
  model.safetensors       the model's state_dict
  optimizer.safetensors   the optimizer's tensors (moments), named state.<param index>.<key>
  state.json              model config, tokenizer, optimizer scalars, RNG states, iteration, ...

A new checkpoint is written to ckpt.tmp/, then swapped in with two renames: ckpt -> ckpt.old,
ckpt.tmp -> ckpt. A process killed between the two leaves no ckpt/ but two complete checkpoints,
the new one in ckpt.tmp/ and the previous one in ckpt.old/: loading takes the new one, and the
next save puts it back in place before cleaning up. At no moment is there no complete checkpoint.
"""
import json
import os
import shutil

from .serialization import load_safetensors, open_for_atomic_write, save_safetensors
from .tensor import Tensor

_FILES = ("model.safetensors", "optimizer.safetensors", "state.json")


def save_checkpoint(directory, model, optimizer, extra):
    """extra: a JSON-serializable dict (config, tokenizer, iteration, RNG states, ...)."""
    final = os.path.join(directory, "ckpt")
    staging, previous = final + ".tmp", final + ".old"
    _finish_interrupted_save(final)
    shutil.rmtree(staging, ignore_errors=True)  # from a save killed while writing: never complete, never read
    os.makedirs(staging)
    save_safetensors(model.state_dict(), os.path.join(staging, "model.safetensors"))
    tensors, optimizer_json = _split_optimizer_state(optimizer.state_dict())
    save_safetensors(tensors, os.path.join(staging, "optimizer.safetensors"))
    with open_for_atomic_write(os.path.join(staging, "state.json"), "w") as f:  # last: it marks staging complete
        json.dump({**extra, "optimizer": optimizer_json}, f)
    shutil.rmtree(previous, ignore_errors=True)
    if os.path.exists(final):
        os.replace(final, previous)
    # killed here: no ckpt/, but ckpt.old/ and ckpt.tmp/ are both complete (_find_complete_checkpoint)
    os.replace(staging, final)
    shutil.rmtree(previous, ignore_errors=True)


def load_checkpoint(directory, device="cpu"):
    """-> (model weights {name: Tensor}, state dict with 'optimizer' ready for Optimizer.load_state_dict)."""
    final = os.path.join(directory, "ckpt")
    path = _find_complete_checkpoint(final)
    if path is None:
        raise FileNotFoundError(f"load_checkpoint: no checkpoint in {directory} "
                                f"(expected {final}/ holding {', '.join(_FILES)})")
    weights = load_safetensors(os.path.join(path, "model.safetensors"), device=device)
    with open(os.path.join(path, "state.json")) as f:
        state = json.load(f)
    tensors = load_safetensors(os.path.join(path, "optimizer.safetensors"), device=device)
    state["optimizer"] = _join_optimizer_state(state["optimizer"], tensors)
    return weights, state


def _find_complete_checkpoint(final):
    """ckpt/ if it is complete, else the newer checkpoint an interrupted save left behind, else None."""
    for path in (final, final + ".tmp", final + ".old"):
        if all(os.path.isfile(os.path.join(path, name)) for name in _FILES):  # each file is written atomically
            return path
    return None


def _finish_interrupted_save(final):
    """Rename the checkpoint an interrupted save left behind back to ckpt/; the leftovers are then safe to delete."""
    path = _find_complete_checkpoint(final)
    if path is not None and path != final:
        shutil.rmtree(final, ignore_errors=True)  # an incomplete ckpt/ that os.replace would refuse to replace
        os.replace(path, final)


def _split_optimizer_state(state_dict):
    tensors, scalars = {}, {}
    for index, entry in state_dict["state"].items():
        scalars[str(index)] = {}
        for key, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"state.{index}.{key}"] = value
            else:
                scalars[str(index)][key] = value
    return tensors, {"state": scalars, "param_groups": state_dict["param_groups"]}


def _join_optimizer_state(optimizer_json, tensors):
    state = {int(index): dict(entry) for index, entry in optimizer_json["state"].items()}
    for name, tensor in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = tensor
    return {"state": state, "param_groups": optimizer_json["param_groups"]}
