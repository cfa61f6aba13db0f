"""lecturelib.data: the offline digits split and the torchvision loaders on small files written here."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from lecturelib import data


def test_digits_shapes_and_normalisation():
    d = data.load_dataset("digits")
    assert d.x_train.shape == (1437, 1, 8, 8) and d.x_test.shape == (360, 1, 8, 8)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.input_shape == (1, 8, 8) and d.num_classes == 10
    assert abs(d.x_train.mean().item()) < 1e-5 and abs(d.x_train.std().item() - 1) < 1e-3
    assert len(d.y_val) == 0


def test_digits_raw_pixels_without_standardisation():
    raw, standard = data.load_dataset("digits", standardize=False), data.load_dataset("digits")
    assert raw.x_train.min() == 0 and raw.x_train.max() == 1   # intensities in [0, 1], 0 = unlit
    assert torch.equal(raw.y_test, standard.y_test)             # the same split
    scale = raw.x_train.std().item()
    assert torch.allclose((raw.x_test - raw.x_train.mean()) / scale, standard.x_test, atol=1e-3)
    with pytest.raises(TypeError, match="standardize"):
        data.load_dataset("digits", standardize="no")


def test_digits_split_is_seeded_and_stratified():
    a, b, c = data.load_dataset("digits", seed=0), data.load_dataset("digits", seed=0), data.load_dataset("digits", seed=1)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_test, c.y_test)
    counts = torch.bincount(a.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 10 classes of ~180 images, 20 % each


def test_validation_and_small_training_set():
    d = data.load_dataset("digits", val_fraction=0.25, n_train=400)
    assert len(d.y_train) + len(d.y_val) == 400 and len(d.y_val) == 100
    assert set(d.y_train.tolist()) == set(range(10))


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "imagenet"}, "unknown dataset name 'imagenet'; allowed: 'digits', 'mnist1d', 'mnist'"),
    ({"val_fraction": 1.5}, r"val_fraction must be in \[0, 1\), got 1.5"),
    ({"test_fraction": 0.0}, r"test_fraction must be in \(0, 1\) for digits"),
    ({"n_train": 0}, "n_train must be > 0"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load_dataset(**kwargs)


def _write_idx(path, array):
    """Write ``array`` (uint8) in the IDX format MNIST's files use."""
    array = np.asarray(array, dtype=np.uint8)
    type_code = 0x08
    header = struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def _write_fake_mnist(root, folder, n_train=50, n_test=20):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_from_files_on_disk(tmp_path, name, folder):
    pytest.importorskip("torchvision")
    _write_fake_mnist(tmp_path, folder)
    d = data.load_dataset(name, root=tmp_path, download=False, val_fraction=0.2)
    assert d.x_train.shape == (40, 1, 28, 28) and d.x_val.shape == (10, 1, 28, 28) and d.x_test.shape == (20, 1, 28, 28)
    assert d.num_classes == 10 and d.x_train.dtype == torch.float32


def test_cifar10_from_files_on_disk(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {"data": rng.integers(0, 256, (10, 3 * 32 * 32), dtype=np.uint8), "labels": list(range(10))}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)
    # torchvision checks the real files' MD5 sums; these files are ours, so skip that check only.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    d = data.load_dataset("cifar10", root=tmp_path, download=False)
    assert d.x_train.shape == (50, 3, 32, 32) and d.x_test.shape == (10, 3, 32, 32)
    assert torch.allclose(d.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)  # per-channel standardised


def test_missing_torchvision_dataset_offline_says_what_to_do(tmp_path):
    pytest.importorskip("torchvision")
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.load_dataset("mnist", root=tmp_path, download=False)
    message = str(info.value)
    assert "'mnist' is not in" in message and "download=True" in message and "name='digits'" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no deep chained traceback


def test_label_noise_makes_exactly_that_fraction_of_training_labels_wrong():
    clean = data.load_dataset("digits")
    noisy = data.with_label_noise(clean, 0.3, seed=1)
    wrong = noisy.y_train != clean.y_train
    assert int(wrong.sum()) == round(0.3 * len(clean.y_train))
    assert torch.equal(noisy.y_test, clean.y_test) and torch.equal(noisy.x_train, clean.x_train)
    assert int(noisy.y_train.min()) >= 0 and int(noisy.y_train.max()) < clean.num_classes
    assert torch.equal(data.with_label_noise(clean, 0.3, seed=1).y_train, noisy.y_train), "seeded"
    assert not torch.equal(data.with_label_noise(clean, 0.3, seed=2).y_train, noisy.y_train)
    assert torch.equal(data.with_label_noise(clean, 0.0).y_train, clean.y_train)
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\), got 1.5"):
        data.with_label_noise(clean, 1.5)


def test_mnist1d_is_generated_offline_with_its_official_split_and_leaves_global_rngs_alone():
    import random

    np.random.seed(3)
    random.seed(3)
    expected = (np.random.rand(), random.random())
    np.random.seed(3)
    random.seed(3)
    d = data.load_dataset("mnist1d", val_fraction=0.1)
    assert (np.random.rand(), random.random()) == expected   # mnist1d reseeds globally; we restore
    assert d.x_train.shape == (3600, 1, 40) and d.x_val.shape == (400, 1, 40)
    assert d.x_test.shape == (1000, 1, 40) and d.input_shape == (1, 40)
    assert d.num_classes == 10 and set(d.y_test.tolist()) == set(range(10))
    assert abs(float(d.x_train.mean())) < 0.05 and abs(float(d.x_train.std()) - 1) < 0.05
    again = data.load_dataset("mnist1d", val_fraction=0.1)
    assert torch.equal(again.x_test, d.x_test) and torch.equal(again.y_train, d.y_train)
