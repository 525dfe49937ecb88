"""Checkpoints: weights and optimizer tensors as safetensors, everything else as JSON. Never pickle.

OUT_DIR/ckpt/
  model.safetensors       the model's state_dict
  optimizer.safetensors   the optimizer's tensors (moments), named state.<param index>.<key>
  state.json              model config, tokenizer, optimizer scalars, RNG states, iteration, ...

A new checkpoint is written to a temporary directory and swapped in, so an interruption
at any moment leaves either the old checkpoint or the new one, never half of each.
"""
import json
import os
import shutil

from .serialization import load_safetensors, save_safetensors
from .tensor import Tensor


def save_checkpoint(directory, model, optimizer, extra):
    """extra: a JSON-serializable dict (config, tokenizer, iteration, RNG states, ...)."""
    final = os.path.join(directory, "ckpt")
    staging = final + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    save_safetensors(model.state_dict(), os.path.join(staging, "model.safetensors"))
    tensors, optimizer_json = _split_optimizer_state(optimizer.state_dict())
    save_safetensors(tensors, os.path.join(staging, "optimizer.safetensors"))
    with open(os.path.join(staging, "state.json"), "w") as f:
        json.dump({**extra, "optimizer": optimizer_json}, f)
    previous = final + ".old"
    shutil.rmtree(previous, ignore_errors=True)
    if os.path.exists(final):
        os.replace(final, previous)
    os.replace(staging, final)
    shutil.rmtree(previous, ignore_errors=True)


def load_checkpoint(directory, device="cpu"):
    """-> (model weights {name: Tensor}, state dict with 'optimizer' ready for Optimizer.load_state_dict)."""
    path = os.path.join(directory, "ckpt")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"load_checkpoint: no checkpoint in {directory} (expected {path}/)")
    weights = load_safetensors(os.path.join(path, "model.safetensors"), device=device)
    with open(os.path.join(path, "state.json")) as f:
        state = json.load(f)
    tensors = load_safetensors(os.path.join(path, "optimizer.safetensors"), device=device)
    state["optimizer"] = _join_optimizer_state(state["optimizer"], tensors)
    return weights, state


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
