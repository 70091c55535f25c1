"""Shims that run TLX 0.5.8's PaddlePaddle backend on paddle 2.6 and 3.x (tested on 3.3.1)."""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Iterator

from tlx_gan.compat import module_exists, new_module, patch_after, substitute

# Old ``paddle.fluid.<sub>`` module -> the module that holds the same API today.
_FLUID_MODULE_ALIASES = {
    "framework": "paddle.base.framework",
    "core": "paddle.base.core",
    "unique_name": "paddle.base.unique_name",
    "data_feeder": "paddle.base.data_feeder",
    "initializer": "paddle.nn.initializer",
    "dygraph.parallel_helper": "paddle.distributed.parallel_helper",
    "layers.utils": "paddle.utils.layers_utils",
}


def _fluid_missing() -> bool:
    return not module_exists("paddle.fluid")


# Adapters with fluid.layers' old signatures (``dim``/``keep_dim``) over today's paddle API.
def _reduce_sum(input, dim=None, keep_dim=False, name=None):  # noqa: A002 - fluid's argument name
    import paddle

    return paddle.sum(input, axis=dim, keepdim=keep_dim, name=name)


def _reduce_mean(input, dim=None, keep_dim=False, name=None):  # noqa: A002
    import paddle

    return paddle.mean(input, axis=dim, keepdim=keep_dim, name=name)


def _fill_constant_batch_size_like(input, shape, dtype, value, input_dim_idx=0, output_dim_idx=0,  # noqa: A002
                                   force_cpu=False):
    import paddle

    shape = list(shape)
    shape[output_dim_idx] = input.shape[input_dim_idx]
    return paddle.full(shape, value, dtype)


@contextlib.contextmanager
def _no_program_desc_tracing(enable: bool) -> Iterator[None]:
    # Eager mode records no ProgramDesc, so there is nothing left to switch off.
    yield


@substitute("paddle.fluid", backend="paddle", needed=_fluid_missing)
def paddle_fluid_alias_tree(name: str) -> types.ModuleType:
    """tensorlayerx/backend/ops/paddle_nn.py, paddle_backend.py, nn/core/core_paddle.py,
    nn/initializers/paddle_initializers.py and losses/paddle_cost.py import ``paddle.fluid``, which
    paddle 2.5 removed, so ``import tensorlayerx`` fails. Rebuilds the names TLX uses: fluid.framework,
    .core, .unique_name, .data_feeder -> paddle.base.*; fluid.initializer -> paddle.nn.initializer (its
    *Initializer classes keep their signatures); fluid.dygraph.Layer/LayerList -> paddle.nn;
    fluid.dygraph.base.param_guard -> paddle.base.dygraph.base (program_desc_tracing_guard, gone with
    the old tracer, becomes a no-op); fluid.dygraph.parallel_helper -> paddle.distributed;
    fluid.layers.utils -> paddle.utils.layers_utils; fluid.layers.reduce_sum/reduce_mean (old
    ``dim``/``keep_dim`` arguments), square_error_cost and fill_constant_batch_size_like as adapters;
    fluid.program_guard/default_main_program/default_startup_program -> paddle.base."""
    import paddle
    import paddle.base
    import paddle.base.dygraph.base as dygraph_base

    fluid = new_module(name, "paddle.fluid rebuilt from paddle.base and friends (tlx_gan compat)")
    fluid.__path__ = []
    for attr in ("program_guard", "default_main_program", "default_startup_program"):
        setattr(fluid, attr, getattr(paddle.base, attr))

    dygraph = new_module(f"{name}.dygraph", "paddle.fluid.dygraph (tlx_gan compat)", __path__=[],
                         Layer=paddle.nn.Layer, LayerList=paddle.nn.LayerList)
    dygraph.base = new_module(
        f"{name}.dygraph.base", "paddle.fluid.dygraph.base (tlx_gan compat)",
        param_guard=dygraph_base.param_guard,
        program_desc_tracing_guard=getattr(dygraph_base, "program_desc_tracing_guard",
                                           _no_program_desc_tracing),
    )
    layers = new_module(
        f"{name}.layers", "paddle.fluid.layers (tlx_gan compat)", __path__=[],
        reduce_sum=_reduce_sum, reduce_mean=_reduce_mean,
        square_error_cost=paddle.nn.functional.square_error_cost,
        fill_constant_batch_size_like=_fill_constant_batch_size_like,
    )
    fluid.dygraph, fluid.layers = dygraph, layers

    for old, new in _FLUID_MODULE_ALIASES.items():
        module = importlib.import_module(new)
        sys.modules[f"{name}.{old}"] = module
        parent, _, leaf = f"{name}.{old}".rpartition(".")
        setattr(sys.modules[parent], leaf, module)
    return fluid
