"""Data sources: the built-in Fashion-MNIST and digits, an image folder, an npz file.

Every source yields a `Dataset`: images as float32 tensors (N, C, H, W) in [-1, 1], int64
labels, and stable string ids (the same example keeps its id across runs and machines).

Splits have one job each. `train` is the only data any model may be fitted on (generators and
raters included); `val` is for patience and early stopping; `tune` is for hyper-parameter
choices and is never seen by a training loop; `test` is for reported numbers only.
"""

from __future__ import annotations

import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from practicum.errors import DataError

SPLITS = ("train", "val", "tune", "test")
# Folders and npz files may come without a tune split (`root/{train,val,test}` is enough).
REQUIRED_SPLITS = ("train", "val", "test")

# Fixed split of scikit-learn's 1,797 digits (8x8, 16 grey levels): stratified by class with
# seed 0, 30 % test (540), then 15 % of the whole held out (270), the rest train (987); the
# held-out part is halved, stratified, into val (135) and tune (135).
DIGITS_TEST_FRACTION = 0.30
DIGITS_VAL_FRACTION = 0.15
SPLIT_SEED = 0


@dataclass(frozen=True)
class Dataset:
    images: torch.Tensor  # float32 (N, C, H, W), values in [-1, 1]
    labels: torch.Tensor  # int64 (N,)
    ids: np.ndarray  # str (N,), unique
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.images.ndim != 4 or len(self.images) != n or len(self.ids) != n:
            raise DataError(f"inconsistent dataset: {tuple(self.images.shape)} images, {n} labels, "
                            f"{len(self.ids)} ids", "images must be (N, C, H, W) with one label and id each")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index) -> "Dataset":
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return Dataset(self.images[index], self.labels[index], self.ids[index.numpy()], self.class_names)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels.numpy(), minlength=self.num_classes)


# ---------------------------------------------------------------- splitting

def split_indices(labels: np.ndarray, test_fraction: float = DIGITS_TEST_FRACTION,
                  val_fraction: float = DIGITS_VAL_FRACTION, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Stratified train/val/tune/test indices, each sorted; deterministic for a seed.

    `val_fraction` of the whole is held out and halved into val and tune (stratified where every
    class has two held-out rows, else at random), so the train and test rows never depend on it.
    """
    from sklearn.model_selection import train_test_split  # lazy: sklearn import costs ~1.5x torch's

    index = np.arange(len(labels))
    try:
        rest, test = train_test_split(index, test_size=test_fraction, stratify=labels, random_state=seed)
        val_of_rest = val_fraction / (1.0 - test_fraction)
        train, held = train_test_split(rest, test_size=val_of_rest, stratify=labels[rest], random_state=seed)
    except ValueError:  # sklearn: a class too small to stratify, or too few rows overall
        counts = np.bincount(labels) if len(labels) else np.zeros(1, dtype=int)
        raise DataError(f"{len(labels)} rows ({counts[counts > 0].min() if counts.any() else 0} in the smallest "
                        "class) are too few to split into train/val/tune/test by class",
                        "give each class at least 8 examples, or give the split yourself (split folders or "
                        "an npz `split` array)") from None
    counts = np.bincount(labels[held])
    stratify = labels[held] if len(held) >= 2 * len(counts[counts > 0]) and counts[counts > 0].min() >= 2 else None
    val, tune = train_test_split(held, test_size=0.5, stratify=stratify, random_state=seed)
    return {"train": np.sort(train), "val": np.sort(val), "tune": np.sort(tune), "test": np.sort(test)}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}", f"use one of {', '.join(SPLITS)}")


# ---------------------------------------------------------------- sources

def load_digits(split: str = "train") -> Dataset:
    """scikit-learn's bundled handwritten digits (shipped with the package, no download)."""
    from sklearn.datasets import load_digits as sk_digits  # lazy: sklearn import costs ~1.5x torch's

    _check_split(split)
    bunch = sk_digits()
    labels = bunch.target.astype(np.int64)
    index = split_indices(labels)[split]
    pixels = bunch.images[index].astype(np.float32)  # 0..16
    images = torch.from_numpy(pixels / 8.0 - 1.0).unsqueeze(1)
    ids = np.array([f"digits-{i:04d}" for i in index])
    return Dataset(images, torch.from_numpy(labels[index]), ids, tuple(str(c) for c in range(10)))


FASHION_FILE = Path(__file__).resolve().parent.parent / "assets" / "fashion-mnist.npz"
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
# Per class (7,000 rows each): 5,000 train, 500 val, 500 tune, 1,000 test; 50k / 5k / 5k / 10k in all.
FASHION_SPLIT_SIZES = {"train": 5000, "val": 500, "tune": 500, "test": 1000}
FASHION_SPLIT_SEED = 0


def _fashion_member(name: str) -> np.ndarray:
    if not FASHION_FILE.exists():
        raise DataError(f"the built-in Fashion-MNIST file {FASHION_FILE} is missing", "reinstall practicum")
    with np.load(FASHION_FILE, allow_pickle=False) as data:
        return data[name]


@lru_cache(maxsize=1)
def _fashion_labels() -> np.ndarray:
    return _fashion_member("labels").astype(np.int64)


@lru_cache(maxsize=None)
def _fashion_split_pixels(split: str) -> np.ndarray:
    """The uint8 images of one split. Kept per split, not the whole 70,000-image array: a study's
    worker processes only read val, tune and test (12 of the 55 MB), and there are several of them."""
    return _fashion_member("images")[fashion_split_indices()[split]]


@lru_cache(maxsize=1)
def fashion_split_indices() -> dict[str, np.ndarray]:
    """The fixed split of the 70,000 rows: each class's rows are permuted by one seeded generator
    (seed 0, classes in order) and cut into 5,000 / 500 / 500 / 1,000; each split sorted."""
    labels = _fashion_labels()
    rng = np.random.default_rng(FASHION_SPLIT_SEED)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in FASHION_SPLIT_SIZES}
    for c in range(len(FASHION_CLASSES)):
        rows = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for split, size in FASHION_SPLIT_SIZES.items():
            parts[split].append(rows[start:start + size])
            start += size
    return {s: np.sort(np.concatenate(p)) for s, p in parts.items()}


def load_fashion(split: str = "train") -> Dataset:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017; MIT, (c) 2017 Zalando SE), shipped with the package.

    1×28×28 grey images (white garment on black) in [-1, 1]; ids `fashion-NNNNN` are the row in
    the shipped file, so they are stable across runs, splits and machines.
    """
    _check_split(split)
    index = fashion_split_indices()[split]
    pixels = torch.from_numpy(_fashion_split_pixels(split)).unsqueeze(1).float().div_(127.5).sub_(1.0)
    ids = np.char.add("fashion-", np.char.zfill(index.astype(str), 5))
    return Dataset(pixels, torch.from_numpy(_fashion_labels()[index]), ids, FASHION_CLASSES)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_image_folder(root: str | Path, split: str = "train", size: int | None = None,
                      channels: int | None = None) -> Dataset:
    """`root/<class>/<image>` or `root/{train,val,test}/<class>/<image>`.

    Without split subfolders the folder is split like the digits (stratified, seed 0).
    Images are resized to `size`×`size` when given (else all must share one size) and
    converted to `channels` (1 or 3; default: 1 if every image is greyscale, else 3).
    Ids are the paths relative to `root`.
    """
    _check_split(split)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist", "give a folder with one subfolder per class")
    has_splits = all((root / s).is_dir() for s in REQUIRED_SPLITS)
    if has_splits and not (root / split).is_dir():
        raise DataError(f"{root} has split folders but no {split}/", f"add {root / split} with one folder per class")
    base = root / split if has_splits else root
    class_dirs = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{base} has no class subfolders", "put the images of each class in root/<class>/")
    images_of = {folder: sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
                 for folder in class_dirs}
    empty = [folder for folder in class_dirs if not images_of[folder]]
    if empty and len(empty) < len(class_dirs):  # a folder without images is not a class
        raise DataError(f"the class folder {empty[0]} holds no images",
                        "remove it or put its images in it (an empty folder would be a class never seen)")
    files, labels = [], []
    for label, folder in enumerate(class_dirs):
        files.extend(images_of[folder])
        labels.extend([label] * len(images_of[folder]))
    if not files:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders under {base}",
                        "put image files in root/<class>/")
    labels_np = np.asarray(labels, dtype=np.int64)
    if not has_splits:
        keep = split_indices(labels_np)[split]
        files = [files[i] for i in keep]
        labels_np = labels_np[keep]
    if channels is None:
        channels = 1 if all(_image_mode(f) in ("L", "1", "I;16") for f in files) else 3
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, not {channels}")
    arrays = []
    for path in files:
        with _readable_image(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
        if size is not None:
            img = img.resize((size, size), Image.BILINEAR)
        arrays.append(np.asarray(img, dtype=np.uint8))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"images under {base} have different sizes {sorted(shapes)[:3]}...",
                        "resize them: `image_size: N` in the --config of practice, study or distill, or "
                        "distill --image-size N")
    stack = np.stack(arrays)
    if stack.ndim == 3:
        stack = stack[:, None]
    else:
        stack = stack.transpose(0, 3, 1, 2)
    images = torch.from_numpy(stack.astype(np.float32) / 127.5 - 1.0)
    ids = np.array([str(p.relative_to(root)) for p in files])
    return Dataset(images, torch.from_numpy(labels_np), ids, tuple(p.name for p in class_dirs))


def _image_mode(path: Path) -> str:
    with _readable_image(path) as img:
        return img.mode


@contextmanager
def _readable_image(path: Path):
    """An opened, fully decoded image; a corrupt file or a decompression bomb (Pillow's pixel guard,
    its warning included) is one DataError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                yield img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path} is too large to decode ({exc})".splitlines()[0][:300],
                        "remove the file or shrink it below Pillow's MAX_IMAGE_PIXELS") from None
    except (OSError, ValueError, SyntaxError) as exc:  # UnidentifiedImageError is an OSError
        raise DataError(f"cannot read image {path}: {exc}", "remove or replace the file") from None


def load_npz(path: str | Path, split: str = "train") -> Dataset:
    """An .npz with `x` (N,H,W | N,C,H,W | N,H,W,C; uint8 0..255 or float in [-1, 1]) and `y`.

    Optional keys: `ids` (unique strings), `class_names`, and `split` (strings train/val/test per
    row); without `split` the rows are split like the digits. Never unpickles (allow_pickle=False).
    """
    _check_split(split)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"npz file {path} {'is a folder' if path.is_dir() else 'does not exist'}",
                        "give an .npz written by np.savez(path, x=images, y=labels)")

    if not zipfile.is_zipfile(path):  # else np.load guesses "pickled data" for any non-zip file
        raise DataError(f"{path} is not an npz archive (not a zip file)",
                        "write it with np.savez(path, x=images, y=labels)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as npz without pickles: {exc}",
                        "save string arrays as fixed-width unicode (np.str_), not objects") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path} has no array {key!r} (found {sorted(arrays)})", "save images as x and labels as y")
    x, y = arrays["x"], arrays["y"]
    if x.ndim == 0 or y.ndim != 1:
        raise DataError(f"{path}: x has shape {x.shape} and y {y.shape}", "give x as (N,...) images and y as (N,) labels")
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} images but {len(y)} labels")
    if len(y) == 0:
        raise DataError(f"{path} has zero rows", "save at least one image per class in x and y")
    if not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise DataError(f"{path}: labels y must be non-negative integers")
    if x.dtype.kind not in "uif":
        raise DataError(f"{path}: x has dtype {x.dtype}", "save images as uint8 0..255 or floats in [-1, 1]")
    for key in ("ids", "split", "class_names"):
        if key in arrays and arrays[key].ndim != 1:
            raise DataError(f"{path}: {key} has shape {arrays[key].shape}", f"save {key} as a 1-D array")
    for key in ("ids", "split"):
        if key in arrays and len(arrays[key]) != len(y):
            raise DataError(f"{path}: {len(arrays[key])} {key} for {len(y)} labels", f"give one {key} entry per row")
    if "split" in arrays:
        unknown = sorted(set(arrays["split"].astype(str).tolist()) - set(SPLITS))
        if unknown:
            raise DataError(f"{path}: unknown split name {unknown[0]!r}", f"use {', '.join(SPLITS)}")
    _check_labels(path, y, arrays.get("class_names"))
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or min(x.shape[1:]) == 0:
        raise DataError(f"{path}: x has shape {x.shape}", "use (N,H,W), (N,C,H,W) or (N,H,W,C)")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 127.5 - 1.0
    else:
        x = x.astype(np.float32)
        if not np.isfinite(x).all() or x.min() < -1.0001 or x.max() > 1.0001:
            raise DataError(f"{path}: float images must be finite and in [-1, 1]", "or save them as uint8 0..255")
    ids = arrays.get("ids")
    if ids is None:  # row numbers: unique by construction (`Path.stem` once, not per row: large pools)
        stem = path.stem
        ids = np.array([f"{stem}-{i:06d}" for i in range(len(y))])
    else:
        ids = ids.astype(str)
        if len(set(ids.tolist())) != len(ids):
            raise DataError(f"{path}: ids are not unique")
    n_classes = int(y.max()) + 1 if len(y) else 0
    names = arrays.get("class_names")
    class_names = tuple(str(c) for c in names) if names is not None else tuple(str(c) for c in range(n_classes))
    if "split" in arrays:
        keep = np.flatnonzero(arrays["split"].astype(str) == split)
    else:
        keep = split_indices(y.astype(np.int64))[split]
    return Dataset(torch.from_numpy(np.ascontiguousarray(x[keep])), torch.from_numpy(y[keep].astype(np.int64)),
                   ids[keep], class_names)


def _check_labels(path: Path, y: np.ndarray, names: np.ndarray | None) -> None:
    """Labels are class indices 0..K-1: a model gets one class embedding per index up to the largest,
    so labels 1000..1009 would silently make a 1010-class model."""
    present = np.unique(y)
    if names is not None:
        if int(present[-1]) >= len(names):
            raise DataError(f"{path}: label {int(present[-1])} but only {len(names)} class_names",
                            "labels must index class_names (0..K-1)")
        return
    if len(present) != int(present[-1]) + 1:
        missing = int(present[-1]) + 1 - len(present)  # counted, not listed: labels may be near 2**64
        raise DataError(f"{path}: labels must be 0..K-1 without gaps; found {len(present)} distinct labels "
                        f"{int(present[0])}..{int(present[-1])} ({missing} of 0..{int(present[-1])} missing)",
                        "remap them, e.g. `names, y = np.unique(y, return_inverse=True)` and save "
                        "class_names=names.astype(str)")


def load_source(spec: str, split: str = "train", **options) -> Dataset:
    """`fashion` or `digits` (built-in), `folder:PATH`, `npz:PATH`, or a bare path (folder or .npz)."""
    if spec in ("fashion", "fashion-mnist", "builtin:fashion"):
        return load_fashion(split)
    if spec in ("digits", "builtin", "builtin:digits"):
        return load_digits(split)
    kind, _, rest = spec.partition(":")
    if kind == "folder" and rest:
        return load_image_folder(rest, split, **options)
    if kind == "npz" and rest:
        return load_npz(rest, split)
    path = Path(spec)
    if path.is_dir():
        return load_image_folder(path, split, **options)
    if path.suffix == ".npz":
        return load_npz(path, split)
    raise DataError(f"unknown data source {spec!r}", "use 'fashion', 'digits', 'folder:PATH' or 'npz:PATH'")
