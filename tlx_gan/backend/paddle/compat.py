"""Shims that run TLX 0.5.8's PaddlePaddle backend on paddle 2.6 and 3.x (tested on 3.3.1)."""
