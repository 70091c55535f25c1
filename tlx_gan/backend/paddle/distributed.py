"""Data-parallel training on paddle's own engine: ``paddle.distributed`` in collective mode (gloo on CPU,
nccl on GPU), joined through the environment ``paddle.distributed.launch`` sets, and
``paddle.DataParallel`` over each TLX network (TLX's paddle Module is a ``paddle.nn.Layer``)."""

from __future__ import annotations

import os

import numpy as np
import paddle
import paddle.distributed as dist

from tlx_gan.errors import gpu_per_rank

NAME = "paddle"
# The backend interface (tlx_gan.backend.interface.Distributed), and nothing else.
__all__ = ["NAME", "all_reduce_events", "all_reduce_mean", "averaging_optimizer", "data_parallel", "finish",
           "start"]


def start(rank: int, world: int, endpoints: list[str], local_rank: int, local_world: int, device: str,
          timeout_s: float) -> str:
    engine = "nccl" if device == "gpu" else "gloo"
    trainers = endpoints[1:world + 1]
    os.environ.update({
        "PADDLE_TRAINER_ID": str(rank), "PADDLE_TRAINERS_NUM": str(world),
        "PADDLE_TRAINER_ENDPOINTS": ",".join(trainers), "PADDLE_CURRENT_ENDPOINT": trainers[rank],
        "PADDLE_MASTER": endpoints[0], "PADDLE_DISTRI_BACKEND": engine,
        "FLAGS_stop_check_timeout": str(int(timeout_s)),
    })
    if device == "gpu":
        gpu_per_rank(local_world, paddle.device.cuda.device_count())
        os.environ.update({"FLAGS_selected_gpus": str(local_rank)})  # init_parallel_env reads the GPU from it
        paddle.set_device(f"gpu:{local_rank}")
    dist.init_parallel_env()
    return f"paddle.distributed collective ({engine}) + paddle.DataParallel"


def data_parallel(network):
    """paddle.DataParallel: gradients averaged in fused buckets during backward; batch-norm statistics stay
    each rank's own. ``find_unused_parameters`` stays off: every weight of the network gets a gradient."""
    return paddle.DataParallel(network)


def averaging_optimizer(optimizer):
    return optimizer  # DataParallel averaged the gradients during backward


def all_reduce_mean(values: np.ndarray) -> np.ndarray:
    tensor = paddle.to_tensor(np.asarray(values, dtype=np.float64))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.numpy() / dist.get_world_size()


def all_reduce_events() -> tuple[list[str], str]:
    return ([], "paddle.profiler has no event of its own for paddle.DataParallel's all-reduce: the reducer runs it "
                "inside the gradient-accumulation node (Global_GradNodeAccumulation), among the other work there")


def finish() -> None:
    """Paddle's group lives until the process exits (it has no public teardown for the default group)."""
