"""For each paddle shim: a snippet that fails without the shim and passes with it (see test_compat.py)."""

PROBES: dict[str, str] = {
    # import tensorlayerx itself is the probe: the preamble fails without the substitute
    "paddle_fluid_alias_tree": """
import paddle
import paddle.fluid as fluid
x = paddle.to_tensor([[1.0, 2.0], [3.0, 4.0]])
assert fluid.layers.reduce_sum(x, dim=-1).numpy().tolist() == [3.0, 7.0]
assert fluid.layers.reduce_mean(x, dim=0, keep_dim=True).shape == [1, 2]
assert issubclass(tlx.nn.Module, paddle.nn.Layer)
# losses/paddle_cost.py goes through fluid.layers.reduce_sum(dim=...) and reduce_mean
out, target = tlx.convert_to_tensor([[3.0, 4.0]]), tlx.convert_to_tensor([[0.0, 0.0]])
assert abs(float(tlx.losses.normalized_mean_square_error(target, out)) - 1.0) < 1e-6
assert abs(float(tlx.losses.absolute_difference_error(out, target)) - 3.5) < 1e-6
""",
    "paddle_fan_initializers_via_paddle_initializers": """
init = tlx.nn.initializers
expected = {  # Linear weights are [in, out] = [300, 200] on paddle
    "XavierUniform": (init.XavierUniform(), (2 / 500) ** 0.5), "XavierNormal": (init.XavierNormal(), (2 / 500) ** 0.5),
    "HeNormal": (init.HeNormal(), (2 / 300) ** 0.5), "he_normal": ("he_normal", (2 / 300) ** 0.5),
}
for name, (w_init, std) in expected.items():
    w = tlx.convert_to_numpy(tlx.nn.Linear(out_features=200, in_features=300, W_init=w_init).weights)
    assert abs(w.std() / std - 1) < 0.03 and abs(w.mean()) < 0.01, (name, w.std(), std)
w = tlx.convert_to_numpy(tlx.nn.Linear(out_features=200, in_features=300, W_init=init.XavierUniform()).weights)
assert np.abs(w).max() <= (6 / 500) ** 0.5 + 1e-6
conv = tlx.nn.Conv2d(out_channels=8, kernel_size=(3, 3), in_channels=4, W_init=init.HeNormal())
assert abs(tlx.convert_to_numpy(conv.filters).std() / (2 / 36) ** 0.5 - 1) < 0.2
""",
    "paddle_truncated_normal_two_stddev_bounds": """
# every Linear/Conv default W_init is TruncatedNormal(stddev=0.02): values stay within 2 stddev
w = tlx.convert_to_numpy(tlx.nn.Linear(out_features=200, in_features=300).weights)
assert np.abs(w).max() <= 0.04 + 1e-6 and 0.015 < w.std() < 0.02, (np.abs(w).max(), w.std())
w = tlx.convert_to_numpy(
    tlx.nn.Linear(out_features=200, in_features=300, W_init=tlx.nn.initializers.TruncatedNormal(1.0, 0.5)).weights
)
assert 0.0 - 1e-6 <= w.min() and w.max() <= 2.0 + 1e-6 and abs(w.mean() - 1.0) < 0.01, (w.min(), w.max())
""",
    "paddle_conv_transpose_same_output_size": """
deconv = tlx.nn.ConvTranspose2d(out_channels=1, in_channels=1, kernel_size=(4, 4), stride=(2, 2), padding="SAME",
                                b_init=None, W_init=tlx.nn.initializers.Ones())
out = tlx.convert_to_numpy(deconv(tlx.convert_to_tensor(np.ones((1, 7, 7, 1), np.float32))))
assert out.shape == (1, 14, 14, 1), out.shape
assert np.allclose(out[0, 2:-2, 2:-2, 0], 4.0), out[0, :, :, 0]
""",
}
