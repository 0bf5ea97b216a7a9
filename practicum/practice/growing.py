"""A training set that grows while a model trains on it, for training loops practicum does not own.

`GrowingPool` is a `torch.utils.data.Dataset` that `DeliberatePractice` adds rounds of generated
examples to; `GrowingSampler` draws each index uniformly from the pool as it is at that moment,
so a round added mid-epoch is trained on from the next batch (the DP loop's uniform minibatches
over old and new samples alike). A DataLoader with `shuffle=True` works too, but sees new
examples only from the next epoch. Use `num_workers=0`: worker processes hold their own copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Dataset, Sampler

from practicum.errors import DataError


class GrowingPool(Dataset):
    """Images (N, C, H, W) in [-1, 1] with class labels; `add` appends a round.

    Items are `(image, label)`, or `{keys[0]: image, keys[1]: label}` when `keys` is given
    (the Hugging Face `Trainer` wants `("pixel_values", "labels")`). `transform` is applied to
    each image as it is read (augmentation)."""

    def __init__(self, images: torch.Tensor | None = None, labels: torch.Tensor | None = None, *,
                 image_shape: tuple[int, int, int] | None = None, keys: tuple[str, str] | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        if images is None and image_shape is None:
            raise DataError("an empty GrowingPool needs its image_shape", "pass image_shape=(C, H, W) or images")
        shape = tuple(images.shape[1:]) if images is not None else tuple(image_shape)
        self.images = torch.empty((0, *shape))
        self.labels = torch.empty(0, dtype=torch.long)
        self.rounds = torch.empty(0, dtype=torch.long)  # which round added each example (0 = the start)
        self.keys, self.transform = keys, transform
        if images is not None:
            self.add(images, labels, round_index=0)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def add(self, images: torch.Tensor, labels: torch.Tensor, round_index: int) -> None:
        images = torch.as_tensor(images).detach().float().cpu()
        labels = torch.as_tensor(labels, dtype=torch.long).cpu().reshape(-1)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape or len(images) != len(labels):
            raise DataError(f"cannot add {tuple(images.shape)} images with {len(labels)} labels to a pool of "
                            f"{self.image_shape} images", "give (N, C, H, W) images with one label each")
        self.images = torch.cat([self.images, images])
        self.labels = torch.cat([self.labels, labels])
        self.rounds = torch.cat([self.rounds, torch.full((len(labels),), int(round_index), dtype=torch.long)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image, label = self.images[index], self.labels[index]
        if self.transform is not None:
            image = self.transform(image)
        return (image, label) if self.keys is None else {self.keys[0]: image, self.keys[1]: label}


class GrowingSampler(Sampler[int]):
    """`num_samples` indices per epoch, each uniform over the pool's size when it is drawn."""

    def __init__(self, pool: GrowingPool, num_samples: int, seed: int = 0):
        if num_samples < 1:
            raise DataError(f"a GrowingSampler needs num_samples >= 1, not {num_samples}")
        self.pool, self.num_samples = pool, int(num_samples)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        for _ in range(self.num_samples):
            if len(self.pool) == 0:
                raise DataError("the pool is empty", "start DeliberatePractice with initial_size > 0 or add data")
            yield int(torch.randint(len(self.pool), (1,), generator=self.generator))
