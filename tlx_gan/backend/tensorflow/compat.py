"""Shims that run TLX 0.5.8's TensorFlow backend on TF 2.16-2.21 with Keras 3 (tested on 2.21)."""

from __future__ import annotations

from tlx_gan.backend.shims import patch_after

# TLX's TensorFlow metrics that wrap a Keras metric, and the attribute holding it.
_TLX_KERAS_METRICS = {"Accuracy": "accuary", "Precision": "precision", "Recall": "recall"}


def _keras_metrics_lack_reset_states() -> bool:
    import tensorflow as tf

    return not hasattr(tf.keras.metrics.Metric, "reset_states")


@patch_after("tensorlayerx.metrics.tensorflow_metric", backend="tensorflow", needed=_keras_metrics_lack_reset_states)
def keras_metric_reset_state() -> None:
    """tensorlayerx/metrics/tensorflow_metric.py resets its Accuracy, Precision and Recall through the
    wrapped Keras metric's ``reset_states()``, which Keras 3 (TF 2.16's default) renamed ``reset_state()``:
    every ``tlx.model.Model.train`` with a metric dies after its first epoch with AttributeError. Resets
    through ``reset_state()``."""
    from tensorlayerx.metrics import tensorflow_metric

    def resetter(attribute: str):
        def reset(self) -> None:
            getattr(self, attribute).reset_state()

        return reset

    for name, attribute in _TLX_KERAS_METRICS.items():
        getattr(tensorflow_metric, name).reset = resetter(attribute)


def _keras_variable_names_are_short() -> bool:
    import keras

    return int(keras.__version__.split(".")[0]) >= 3


@patch_after("tensorlayerx.nn.core.core_tensorflow", backend="tensorflow", needed=_keras_variable_names_are_short)
def keras_variable_path_in_train_weights_check() -> None:
    """tensorlayerx/nn/core/core_tensorflow.py's ``Module.train_weights_check`` refuses two trainable weights
    with the same ``name``; Keras 3 (TF 2.16's default) names a layer's variables by their short name
    (``kernel``, ``bias``) and keeps the unique one in ``path``, so a TLX module holding two Keras layers
    (``tlx.nn.Lambda`` around a Keras model) raises "parameter name [kernel] have be been used". Checks the
    Keras path where a variable has one, TLX's name otherwise."""
    from tensorlayerx.nn.core import core_tensorflow

    def train_weights_check(self) -> None:
        seen = set()
        for weight in self.trainable_weights:
            name = getattr(weight, "path", None) or weight.name
            if name in seen:
                raise Exception(f"parameter name [{name}] have be been used. In training, the name of layer can't "
                                "be same.Please check the layers name")
            seen.add(name)

    core_tensorflow.Module.train_weights_check = train_weights_check


def _batchnorm_rebinds_moving_averages_in_graphs() -> bool:
    # read from TLX's source, not by running it: no TF op may run before the thread pools are set
    import inspect

    from tensorlayerx.backend.ops import tensorflow_nn

    return "self.moving_mean = moving_averages" in inspect.getsource(tensorflow_nn.BatchNorm.__call__)


@patch_after("tensorlayerx.backend.ops.tensorflow_nn", backend="tensorflow",
             needed=_batchnorm_rebinds_moving_averages_in_graphs)
def batchnorm_moving_averages_in_graphs() -> None:
    """tensorlayerx/backend/ops/tensorflow_nn.py's ``BatchNorm.__call__`` rebinds ``moving_mean`` and
    ``moving_var`` to what ``assign_moving_average`` returns: in eager mode the variable itself, but inside a
    ``tf.function`` (any TF 2 release) an object of that graph, which the next graph traced on the layer captures
    and then unbinds: with two graphs on one layer, called in turn (the D and G losses traced separately:
    ``--precision bf16`` on a model with batch norm), the fourth call dies with "Called a function referencing
    variables which have been deleted". Updates the moving averages in place, keeping the variables."""
    import tensorflow as tf
    from tensorflow.python.training import moving_averages
    from tensorlayerx.backend.ops import tensorflow_nn

    def call(self, inputs):
        self._check_input_shape(inputs)
        self.channel_axis = len(inputs.shape) - 1 if self.data_format == "channels_last" else 1
        if self.axes is None:
            self.axes = [i for i in range(len(inputs.shape)) if i != self.channel_axis]
        mean, var = tf.nn.moments(inputs, self.axes, keepdims=False)
        if not self.is_train:
            mean, var = self.moving_mean, self.moving_var
        else:
            moving_averages.assign_moving_average(self.moving_mean, mean, self.decay, zero_debias=False)
            moving_averages.assign_moving_average(self.moving_var, var, self.decay, zero_debias=False)
        return tensorflow_nn.batch_normalization(inputs, mean, var, self.beta, self.gamma, self.epsilon,
                                                 self.data_format)

    tensorflow_nn.BatchNorm.__call__ = call
