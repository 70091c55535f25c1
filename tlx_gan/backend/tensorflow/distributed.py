"""Data-parallel training on TensorFlow's own engine: ``tf.distribute.MultiWorkerMirroredStrategy``, one
worker per rank from a localhost ``TF_CONFIG`` (ring collectives on CPU, NCCL on GPU).

TLX's TF layers keep plain ``tf.Variable`` (created outside the strategy's scope, identical on every rank
from the same initial weights), and TLX's ``TrainOneStep`` applies the tape's gradients itself; so the
strategy's own all-reduce runs where Keras' optimizer would run it under the strategy, between the gradients
and the update: in a replica context of ``strategy.run``, compiled once per network."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from tlx_gan.errors import gpu_per_rank

NAME = "tensorflow"
# The backend interface (tlx_gan.backend.interface.Distributed), and nothing else.
__all__ = ["NAME", "all_reduce_events", "all_reduce_mean", "averaging_optimizer", "data_parallel", "finish",
           "start"]

_strategy: tf.distribute.Strategy | None = None


def start(rank: int, world: int, endpoints: list[str], local_rank: int, local_world: int, device: str,
          timeout_s: float) -> str:
    global _strategy
    workers = endpoints[1:world + 1]
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": rank}})
    if device == "gpu":  # one GPU per worker: left alone, each worker would mirror over every GPU it sees
        gpus = tf.config.list_physical_devices("GPU")
        gpu_per_rank(local_world, len(gpus))
        tf.config.set_visible_devices(gpus[local_rank], "GPU")
    implementation = (tf.distribute.experimental.CommunicationImplementation.NCCL if device == "gpu"
                      else tf.distribute.experimental.CommunicationImplementation.RING)
    _strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=implementation, timeout_seconds=timeout_s))
    return f"tf.distribute.MultiWorkerMirroredStrategy ({implementation.name.lower()} collectives)"


def _local(value):
    return _strategy.experimental_local_results(value)[0]


def _replica_mean(values):
    # Placed on the worker's device first: traced in a tf.function, a tensor has no device yet, and the
    # strategy's all-reduce sends each result to its input's device ("destinations can not be empty").
    with tf.device(_strategy.extended.worker_devices[0]):
        values = [tf.identity(value) for value in values]
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, values)


@tf.function
def _mean_over_ranks(tensors):
    return tf.nest.map_structure(_local, _strategy.run(_replica_mean, args=(tensors,)))


def data_parallel(network):
    return network  # the averaging happens in the optimizer (averaging_optimizer)


class _AveragingOptimizer:
    """A TLX optimizer whose ``apply_gradients`` first averages the gradients over the ranks."""

    def __init__(self, optimizer):
        self._optimizer = optimizer

    def __getattr__(self, name):
        return getattr(self._optimizer, name)

    def apply_gradients(self, grads_and_vars):
        grads, variables = zip(*grads_and_vars)
        return self._optimizer.apply_gradients(zip(_mean_over_ranks(list(grads)), variables))


def averaging_optimizer(optimizer):
    return _AveragingOptimizer(optimizer)


def all_reduce_mean(values: np.ndarray) -> np.ndarray:
    return _mean_over_ranks([tf.constant(np.asarray(values, dtype=np.float64))])[0].numpy()


def all_reduce_events() -> tuple[list[str], str]:
    return (["CollectiveReduceV2"], "TensorFlow's profiler's CollectiveReduceV2 ops, the strategy's all-reduce")


def finish() -> None:
    """The strategy's servers live until the process exits (TensorFlow has no teardown for them)."""
