"""Where training runs: the device (CUDA, Apple's MPS or the CPU) and, under ``torchrun``, the processes of
DistributedDataParallel (one per GPU, or several CPU processes with gloo)."""

from __future__ import annotations

import os

import torch


def pick_device(name: str = "auto") -> torch.device:
    """"auto": CUDA if present, then Apple's MPS, then CPU; anything else must name an available device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device: expected auto, cpu, cuda, cuda:N or mps, got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but this machine has no CUDA GPU (or torch is a CPU build)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r} requested but Apple's MPS is not available here")
    return dev


def dist_info():
    """(is_distributed, rank, world_size)"""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return True, torch.distributed.get_rank(), torch.distributed.get_world_size()
    return False, 0, 1


def process_device(name: str, distributed: bool, rank: int) -> torch.device:
    """The device of this process: ``pick_device(name)``, and under DDP on CUDA the GPU ``LOCAL_RANK``."""
    device = pick_device(name)
    if distributed and device.type == "cuda":  # one GPU per process
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def out_of_time(train_time: float, time_budget_s: float | None, device, distributed: bool) -> bool:
    """Whether the training time has reached the budget; rank 0's clock decides for every process."""
    if time_budget_s is None:
        return False
    stop = torch.tensor([float(train_time >= time_budget_s)], device=device)
    if distributed:
        torch.distributed.broadcast(stop, 0)
    return bool(stop.item())


def mean_over_processes(values: list[float], device) -> list[float]:
    """The mean of each value over all processes."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return (t / torch.distributed.get_world_size()).tolist()


def gather(obj, distributed: bool, world: int) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` (every process must call it)."""
    if not distributed:
        return [obj]
    out = [None] * world
    torch.distributed.all_gather_object(out, obj)
    return out
