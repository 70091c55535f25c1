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
