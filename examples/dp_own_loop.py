"""Deliberate Practice in your own PyTorch training loop, on Fashion-MNIST with practicum's built-in generator.

    python examples/dp_own_loop.py                 # 2-3 CPU minutes (estimated); add --out runs/own --track tensorboard

Your model, optimiser and loop stay yours. practicum supplies the training set: it starts as
`--initial-size` synthetic images from the built-in Fashion-MNIST diffusion model, and each time
validation accuracy stops improving (patience), `dp.step` adds `--add-size` images that your
current model finds hard (entropy guidance). The real data is used only to validate and test.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader

from practicum.data import load_source
from practicum.practice import DeliberatePractice, GrowingSampler


class SmallCNN(nn.Module):
    """Any classifier of 1x28x28 images in [-1, 1] works; this is the one you wrote."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(32 * 7 * 7, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images).flatten(1))


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in zip(images.split(500), labels.split(500)))
    model.train()
    return correct / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps")
    parser.add_argument("--eval-every", type=int, default=40, help="steps between validations")
    parser.add_argument("--initial-size", type=int, default=200, help="synthetic images to start with (N)")
    parser.add_argument("--add-size", type=int, default=100, help="images per guided round (P)")
    parser.add_argument("--max-rounds", type=int, default=3, help="guided rounds at most")
    parser.add_argument("--out", default=None, help="a folder for metrics.jsonl and the pool (optional)")
    parser.add_argument("--track", default=None, help="mlflow or tensorboard (needs --out)")
    args = parser.parse_args()

    torch.manual_seed(0)
    val = load_source("fashion", "val").subset(range(1000))  # patience only
    test = load_source("fashion", "test").subset(range(2000))  # reported only
    model = SmallCNN()
    dp = DeliberatePractice(model, "builtin:fashion", num_classes=10, image_shape=(1, 28, 28),
                            initial_size=args.initial_size, add_size=args.add_size, max_rounds=args.max_rounds,
                            stop_step=int(0.8 * args.steps),  # nothing is added in the last 20 % of training
                            out=args.out, track=args.track)
    loader = DataLoader(dp.pool, batch_size=64, sampler=GrowingSampler(dp.pool, num_samples=64 * args.steps))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)

    for step, (images, labels) in enumerate(loader, start=1):
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.eval_every == 0:
            val_accuracy = accuracy(model, val.images, val.labels)
            added = dp.step(val_accuracy, step=step)
            note = f"; round {added['round']}: pool now {added['pool_size']}" if added else ""
            print(f"step {step:4d}  loss {loss.item():.3f}  val {val_accuracy:.3f}{note}", flush=True)
    dp.close()
    print(f"test accuracy {accuracy(model, test.images, test.labels):.3f} after {dp.rounds} guided rounds, "
          f"trained on {len(dp.pool)} synthetic images")


if __name__ == "__main__":
    main()
