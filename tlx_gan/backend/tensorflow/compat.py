"""Shims that run TLX 0.5.8's TensorFlow backend on TF 2.16-2.21 with Keras 3 (tested on 2.21)."""
