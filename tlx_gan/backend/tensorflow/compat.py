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
