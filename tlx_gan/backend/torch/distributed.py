"""Data-parallel training on torch's own engine: a ``torch.distributed`` process group (gloo on CPU, nccl on
GPU) and ``DistributedDataParallel`` over each TLX network (TLX's torch Module is a ``torch.nn.Module``)."""

from __future__ import annotations

import inspect
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from tlx_gan.errors import UserError, gpu_per_rank

NAME = "torch"
# The backend interface (tlx_gan.backend.interface.Distributed), and nothing else.
__all__ = ["NAME", "all_reduce_events", "all_reduce_mean", "averaging_optimizer", "data_parallel", "finish",
           "start"]

_device = "cpu"


def start(rank: int, world: int, endpoints: list[str], local_rank: int, local_world: int, device: str,
          timeout_s: float) -> str:
    global _device
    engine = "nccl" if device == "gpu" else "gloo"
    available = dist.is_nccl_available if engine == "nccl" else dist.is_gloo_available
    if not dist.is_available() or not available():
        raise UserError(f"this torch {torch.__version__} was built without the {engine} collective library: "
                        f"--nproc needs a build with it (the PyPI wheels have it)")
    if device == "gpu":
        gpu_per_rank(local_world, torch.cuda.device_count())
        torch.cuda.set_device(local_rank)
    dist.init_process_group(engine, init_method=f"tcp://{endpoints[0]}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=timeout_s))
    _device = device
    return f"torch.distributed ({engine}) + DistributedDataParallel"


def data_parallel(network):
    """DDP with per-replica buffers: batch-norm statistics stay each rank's own (rank 0's are saved). It
    is called once or more per backward (D sees real, fake and interpolated images): autograd sums the
    uses before DDP's hook reduces each gradient once."""
    device_ids = [torch.cuda.current_device()] if _device == "gpu" else None
    return DistributedDataParallel(network, device_ids=device_ids, **_rank_local_buffers())


def _rank_local_buffers() -> dict:
    """DDP's switch for not overwriting the ranks' buffers with rank 0's at each forward: torch 2.13 renamed
    ``broadcast_buffers`` (now warning) to ``forward_sync_buffers``; earlier releases know only the old name."""
    parameters = inspect.signature(DistributedDataParallel.__init__).parameters
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in parameters else {"broadcast_buffers": False}


def averaging_optimizer(optimizer):
    return optimizer  # DDP averaged the gradients during backward


def all_reduce_mean(values: np.ndarray) -> np.ndarray:
    tensor = torch.tensor(np.asarray(values, dtype=np.float64),
                          device="cuda" if _device == "gpu" else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy() / dist.get_world_size()


def all_reduce_events() -> tuple[list[str], str]:
    return (["gloo:all_reduce", "nccl:all_reduce"],
            "torch.profiler's gloo:all_reduce / nccl:all_reduce, each collective from its start to its end")


def finish() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
