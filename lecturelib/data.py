"""Datasets as in-memory tensors (digits from Chapter 1, notebooks/01_weighted_sum.ipynb, on; MNIST-1D in
chapters 9 and 10): scikit-learn's bundled digits (offline, the default), MNIST-1D
(generated offline by the ``mnist1d`` package) and MNIST / Fashion-MNIST / CIFAR-10 through
torchvision (downloaded when the network is there).

Every loader returns a :class:`Dataset` of normalised float inputs — images of shape
``(N, C, H, W)``, or sequences of shape ``(N, C, L)`` for MNIST-1D — and integer labels of shape
``(N,)``; models flatten the inputs themselves.
"""

from __future__ import annotations

import functools
import os
import random
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ._checks import check_choice, check_fraction, check_positive_int

DATASETS = ("digits", "mnist1d", "mnist", "fashion_mnist", "cifar10")

_TORCHVISION = {  # name -> (torchvision class name, folder torchvision stores it in)
    "mnist": ("MNIST", "MNIST"),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py"),
}


class DatasetUnavailableError(RuntimeError):
    """Raised when a torchvision dataset is neither on disk nor downloadable."""


@dataclass
class Dataset:
    """Train / validation / test tensors of one dataset.

    Inputs are float32 tensors of shape ``(N, C, H, W)`` (images) or ``(N, C, L)`` (MNIST-1D's
    sequences), standardised with the training set's
    mean and standard deviation (per channel); labels are int64 tensors of shape ``(N,)``.
    The validation split is empty (``N = 0``) unless ``val_fraction > 0`` was asked for.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` of one image, or ``(C, L)`` of one sequence."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: train {len(self.y_train)}, val {len(self.y_val)}, "
            f"test {len(self.y_test)}, image {self.input_shape}, {self.num_classes} classes)"
        )


def default_root() -> Path:
    """Folder for downloaded datasets: ``$LECTURELIB_DATA`` or ``~/.cache/lecturelib/data``."""
    return Path(os.environ.get("LECTURELIB_DATA", Path.home() / ".cache" / "lecturelib" / "data"))


def load_dataset(
    name: str = "digits",
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    n_train: int | None = None,
    standardize: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """Return the dataset ``name`` as normalised tensors.

    Args:
        name: one of ``"digits"`` (1,797 8x8 images, bundled with scikit-learn, offline),
            ``"mnist1d"`` (Greydanus 2020: 4,000 train / 1,000 test sequences of 40 values, 10
            classes, generated offline in about a second and much harder than digits for a small
            network), ``"mnist"``, ``"fashion_mnist"`` (28x28) or ``"cifar10"`` (3x32x32).
        seed: seed of the splits; the same seed gives the same split.
        test_fraction: digits only — fraction held out as the test set (stratified).
            MNIST-1D and the torchvision datasets use their official test set.
        val_fraction: fraction of the training set held out for validation (stratified).
        n_train: keep only this many training images (a stratified subset), e.g. to make a
            small training set where a dense network overfits.
        standardize: subtract the training set's mean and divide by its standard deviation (per
            channel), the default; ``False`` keeps the raw values — for digits, pixel
            intensities in [0, 1] with 0 for an unlit pixel.
        root: where torchvision datasets are stored (default :func:`default_root`).
        download: whether torchvision may download a missing dataset.

    Raises:
        ValueError: unknown ``name`` or a fraction outside [0, 1).
        TypeError: ``standardize`` is not a bool.
        DatasetUnavailableError: a torchvision dataset is missing and cannot be downloaded.
    """
    check_choice("dataset name", name, DATASETS)
    test_fraction = check_fraction("test_fraction", test_fraction)
    val_fraction = check_fraction("val_fraction", val_fraction)
    if n_train is not None:
        n_train = check_positive_int("n_train", n_train)
    if not isinstance(standardize, bool):
        raise TypeError(f"standardize must be True or False, got {standardize!r} of type {type(standardize).__name__}")

    if name == "digits":
        x, y = _digits_arrays()
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1) for digits, got {test_fraction!r}")
        x_train, y_train, x_test, y_test = _stratified_split(x, y, test_fraction, seed)
    elif name == "mnist1d":
        x_train, y_train, x_test, y_test = _mnist1d_arrays()
    else:
        x_train, y_train, x_test, y_test = _torchvision_arrays(name, root, download)

    if n_train is not None and n_train < len(y_train):
        x_train, y_train, _, _ = _stratified_split(x_train, y_train, 1 - n_train / len(y_train), seed + 1)
    if val_fraction > 0:
        x_train, y_train, x_val, y_val = _stratified_split(x_train, y_train, val_fraction, seed + 2)
    else:
        x_val, y_val = x_train[:0], y_train[:0]

    per_channel = (0, *range(2, x_train.ndim))   # every axis but the channel's
    mean = x_train.mean(axis=per_channel, keepdims=True) if standardize else 0.0
    std = x_train.std(axis=per_channel, keepdims=True) + 1e-8 if standardize else 1.0

    def tensor(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((images - mean) / std).astype(np.float32))

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y.astype(np.int64))

    return Dataset(
        name=name,
        x_train=tensor(x_train), y_train=labels(y_train),
        x_val=tensor(x_val), y_val=labels(y_val),
        x_test=tensor(x_test), y_test=labels(y_test),
        num_classes=int(max(y_train.max(), y_test.max()) + 1),
    )


def with_label_noise(data: Dataset, fraction: float, *, seed: int = 0) -> Dataset:
    """Return a copy of ``data`` in which ``round(fraction * N)`` training labels are wrong.

    The chosen images get a label drawn uniformly from the *other* classes, so exactly that many
    training labels are wrong; the validation and test labels stay clean. Noisy labels make the
    data harder: a network can only fit them by memorising, and how it memorises depends on the
    SGD noise — chapter 10 uses this to make training unstable at initialisation.

    Examples:
        >>> data = load_dataset("digits")
        >>> noisy = with_label_noise(data, 0.3)
        >>> round(float((noisy.y_train != data.y_train).float().mean()), 3), bool((noisy.y_test == data.y_test).all())
        (0.3, True)
    """
    fraction = check_fraction("fraction", fraction)
    generator = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    flipped = torch.randperm(n, generator=generator)[: round(fraction * n)]
    shift = torch.randint(1, data.num_classes, (len(flipped),), generator=generator)   # never 0: always another class
    labels = data.y_train.clone()
    labels[flipped] = (labels[flipped] + shift) % data.num_classes
    return replace(data, name=f"{data.name} ({fraction:.0%} noisy labels)", y_train=labels)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float64)[:, None, :, :] / 16.0  # (1797, 1, 8, 8) in [0, 1]
    return images, digits.target


_GLOBAL_GENERATORS = threading.Lock()


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-1D's standard data set (the package's default arguments, seed 42) as ``(N, 1, 40)`` arrays."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:
        raise DatasetUnavailableError(
            "dataset 'mnist1d' needs the mnist1d package: pip install mnist1d (it generates the data offline)"
        ) from error
    # make_dataset reseeds the global random generators: keep the caller's streams untouched, and let one
    # thread at a time draw from them (machine.side_by_side may load the data in several threads)
    with _GLOBAL_GENERATORS:
        numpy_state, python_state = np.random.get_state(), random.getstate()
        try:
            raw = make_dataset(get_dataset_args())
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)
    def sequences(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)[:, None, :]
    return sequences(raw["x"]), np.asarray(raw["y"]), sequences(raw["x_test"]), np.asarray(raw["y_test"])


def _stratified_split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Split off ``fraction`` of the rows, stratified by label: returns ``(x_keep, y_keep, x_out, y_out)``."""
    from sklearn.model_selection import train_test_split

    x_keep, x_out, y_keep, y_out = train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y)
    return x_keep, y_keep, x_out, y_out


def _torchvision_arrays(name: str, root, download: bool):
    try:
        import torchvision
    except ImportError as error:
        raise DatasetUnavailableError(
            f"dataset {name!r} needs torchvision: pip install torchvision (or use name='digits', which is offline)"
        ) from error
    cls_name, folder = _TORCHVISION[name]
    cls = getattr(torchvision.datasets, cls_name)
    root = Path(root) if root is not None else default_root()
    splits = []
    for train in (True, False):
        try:
            ds = cls(root=str(root), train=train, download=download)
        except Exception as error:  # torchvision raises RuntimeError, URLError, OSError... when offline
            raise DatasetUnavailableError(_unavailable_message(name, root / folder, download, error)) from None
        images = np.asarray(ds.data, dtype=np.float64) / 255.0
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)  # -> (N, C, H, W)
        splits += [images, np.asarray(ds.targets, dtype=np.int64)]
    return tuple(splits)


def _unavailable_message(name: str, folder: Path, download: bool, error: Exception) -> str:
    """One line saying what happened (download not allowed / tried and failed) and what to do."""
    detail = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no details'}"
    if not download:
        what = f"dataset {name!r} is not in {folder} and no download was tried (download=False) ({detail})."
        do = f"Allow it with load_dataset({name!r}, download=True) (experiments: download=True, the default)"
    else:
        what = (f"dataset {name!r} is not in {folder}; torchvision tried to download it and failed ({detail}) — "
                f"is this machine offline?")
        do = "Connect to the internet and run again"
    return (f"{what} {do}, copy the files torchvision expects into {folder.parent} (or set $LECTURELIB_DATA to "
            f"the folder that holds them), or use name='digits' or 'mnist1d', which need no download.")
