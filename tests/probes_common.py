"""For each backend-independent (numpy) shim: a snippet that fails without it and passes with it."""

PROBES = {
    "numpy_float_alias_in_sampler": """
from tensorlayerx.dataflow import WeightedRandomSampler
indices = list(WeightedRandomSampler([0.0, 1.0, 0.0], num_samples=5, replacement=True))
assert indices == [1] * 5, indices
""",
    "numpy_int_alias_in_vision_transforms": """
from tensorlayerx.vision.transforms import functional
image = np.full((2, 2, 1), 255, dtype=np.uint8)
out = tlx.convert_to_numpy(functional.to_tensor(image, data_format="HWC"))
assert out.shape == (2, 2, 1)
""",
}
