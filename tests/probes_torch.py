"""For each torch shim: a snippet that fails without the shim and passes with it (see test_compat.py)."""

PROBES = {
    # import tensorlayerx itself is the probe: the preamble fails without the substitute
    "torch_vision_ops_without_torchvision": """
from tensorlayerx.vision.ops import box_iou, nms
import torch
boxes = torch.tensor([[0., 0., 2., 2.], [1., 1., 3., 3.], [0., 0., 2., 2.1]])
assert abs(float(box_iou(boxes[:1], boxes[1:2])[0, 0]) - 1 / 7) < 1e-6
assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 1]
""",
    "torch_named_members_remove_duplicate": """
layer = tlx.nn.Linear(out_features=3, in_features=2, name="probe_linear")
names = [name for name, _ in layer.named_parameters()]
assert names == ["probe_linear/weights", "probe_linear/biases"], names
assert len(layer.trainable_weights) == 2 and len(layer.state_dict()) == 2
""",
    "torch_optimizers_step_via_torch_optim": """
import torch
for make in (lambda: tlx.optimizers.Adam(lr=0.1), lambda: tlx.optimizers.SGD(lr=0.1),
             lambda: tlx.optimizers.Momentum(lr=0.1, momentum=0.9), lambda: tlx.optimizers.RMSprop(lr=0.1),
             lambda: tlx.optimizers.Adagrad(lr=0.1), lambda: tlx.optimizers.Adamax(lr=0.1),
             lambda: tlx.optimizers.Adadelta(lr=0.1)):
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = make()
    grads = opt.gradient((w * w).sum(), [w])
    opt.apply_gradients(zip(grads, [w]))
    assert bool((w.detach().abs() < torch.tensor([1.0, 2.0])).all()), (type(opt).__name__, w)
""",
    "torch_conv_transpose_same_padding": """
import torch
deconv = tlx.nn.ConvTranspose2d(out_channels=1, in_channels=1, kernel_size=(4, 4), stride=(2, 2), padding="SAME",
                                b_init=None, W_init=tlx.nn.initializers.Ones())
out = tlx.convert_to_numpy(deconv(tlx.convert_to_tensor(np.ones((1, 7, 7, 1), np.float32))))
assert out.shape == (1, 14, 14, 1), out.shape
# interior pixels of a stride-2, kernel-4 all-ones transposed conv each receive 4 taps
assert np.allclose(out[0, 2:-2, 2:-2, 0], 4.0), out[0, :, :, 0]
""",
}
