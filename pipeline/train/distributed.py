"""DistributedDataParallel under torchrun: gloo on CPU, nccl on CUDA. Single-process runs skip all of it."""

from __future__ import annotations

import os

import torch
import torch.distributed as td
from torch import nn
from torch.utils.data import Dataset, DistributedSampler


class TrainForward(nn.Module):
    """Makes `forward` the training form, which is what DDP calls."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model.forward_train(x)


def setup() -> tuple[int, int]:
    """Join the process group torchrun describes in the environment; returns (rank, world_size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not td.is_initialized():
        td.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return td.get_rank(), td.get_world_size()


def device_for_rank(device: torch.device, rank: int) -> torch.device:
    if device.type == "cuda" and td.is_initialized():
        index = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    net = TrainForward(model)
    if td.is_initialized() and td.get_world_size() > 1:
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(net, device_ids=ids, find_unused_parameters=False)
    return net


def sampler(dataset: Dataset, seed: int) -> DistributedSampler:
    return DistributedSampler(dataset, shuffle=True, seed=seed, drop_last=False)


def barrier() -> None:
    if td.is_initialized():
        td.barrier()


def cleanup() -> None:
    if td.is_initialized():
        td.destroy_process_group()
