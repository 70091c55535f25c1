"""Train on one framework, generate on another: checkpoints are portable across backends.

    python examples/train_here_generate_there.py --train-on torch --generate-on paddle

Each step is a `tlx-gan` command, so each backend runs in its own process (TL_BACKEND is fixed once
tensorlayerx is imported). The checkpoint holds canonical weights, so the paddle generator computes
the same images the torch generator would.
"""

import argparse
import subprocess
import sys
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--train-on", default="torch")
parser.add_argument("--generate-on", default="paddle")
parser.add_argument("--steps", type=int, default=300)
parser.add_argument("--out", default="runs/here-there")
args = parser.parse_args()
out = Path(args.out)


def tlx_gan(*words: str) -> None:
    command = [sys.executable, "-m", "tlx_gan", *words]
    print("$", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True)


# --overwrite: running the example again replaces its own earlier outputs
tlx_gan("--backend", args.train_on, "train", "--steps", str(args.steps), "--out", str(out / "train"),
        "--no-progress", "--overwrite")
tlx_gan("--backend", args.generate_on, "generate", "--checkpoint", str(out / "train" / "checkpoint.npz"),
        "--n", "64", "--out", str(out / f"generated-on-{args.generate_on}.png"), "--overwrite")
tlx_gan("--backend", args.generate_on, "eval", "--checkpoint", str(out / "train" / "checkpoint.npz"), "--n", "500")
