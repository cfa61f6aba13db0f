"""Every public function that takes a model and data works when the model sits on an accelerator
and the data on the CPU — the situation of a Colab notebook with a GPU, where ``train`` picks CUDA
by default while the notebook's tensors stay on the CPU.

The rule the library follows: ``train`` trains on the best device and hands the model back on
the device it came from; functions that run a model move its inputs to the model's device.
These tests run on CUDA (or Apple's MPS) when the machine has one and are skipped otherwise:
CI has no GPU, so run them on a GPU machine (or in Colab) after changing device handling.
"""

from __future__ import annotations

import pytest
import torch

from lecturelib import data, dropout, lottery, models, pruning, stability, structured, training


def _accelerator() -> torch.device | None:
    device = training.default_device()
    return None if device.type == "cpu" else device


ACCELERATOR = _accelerator()
pytestmark = pytest.mark.skipif(ACCELERATOR is None, reason="no CUDA or MPS device on this machine")


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits", n_train=300)


def _on_accelerator(model: torch.nn.Module) -> torch.nn.Module:
    return model.to(ACCELERATOR)


def test_train_trains_on_the_accelerator_and_hands_the_model_back(digits):
    model = models.mlp(digits.input_shape, seed=0)
    history = training.train(model, digits, iterations=20)   # default device: the accelerator
    assert next(model.parameters()).device.type == "cpu"
    assert model(digits.x_test).shape == (len(digits.y_test), 10)   # CPU tensors, no device mismatch
    assert history.test_acc and all(s["fc1.weight"].device.type == "cpu" for s in history.snapshots.values())


def test_evaluate_moves_the_data_to_the_model(digits):
    model = _on_accelerator(models.mlp(digits.input_shape, seed=0))
    loss, acc = training.evaluate(model, digits.x_test, digits.y_test)
    assert loss > 0 and 0 <= acc <= 1


def test_mc_dropout_and_determinism_with_cpu_inputs(digits):
    model = _on_accelerator(dropout.mlp_dropout(digits.input_shape, p=0.5, seed=0))
    probs = dropout.mc_dropout_probabilities(model, digits.x_test[:50], samples=4)
    assert probs.shape[-1] == 10 and torch.isfinite(probs).all()
    model.eval()
    assert dropout.is_deterministic(model, digits.x_test[:50])


def test_masked_training_and_pruning_on_the_accelerator(digits):
    model = _on_accelerator(models.mlp(digits.input_shape, seed=0))
    mask = pruning.layerwise_magnitude_mask(model, 0.8)
    training.train(model, digits, iterations=20, mask=mask, device=ACCELERATOR)
    for name, keep in mask.items():
        assert (dict(model.named_parameters())[name].detach().cpu()[~keep.cpu().bool()] == 0).all()


def test_interpolation_path_with_the_model_on_the_accelerator(digits):
    model = models.mlp(digits.input_shape, seed=0)
    a = {k: v.clone() for k, v in model.state_dict().items()}
    training.train(model, digits, iterations=20)
    b = model.state_dict()
    alphas, errors, losses = stability.path_metrics(_on_accelerator(model), a, b, digits, alphas=3)
    assert len(errors) == len(losses) == 3


def test_imp_on_the_accelerator(digits):
    [run] = lottery.iterative_magnitude_pruning([models.mlp(digits.input_shape, seed=0)], digits, rounds=1,
                                                train_kwargs={"iterations": 20})
    assert len(run.levels) == 2


def test_channel_surgery_on_the_accelerator(digits):
    model = _on_accelerator(models.cnn(digits.input_shape, seed=0)).eval()
    keep = {name: torch.arange(conv.out_channels // 2) for name, conv in structured.conv_layers(model).items()}
    small = structured.prune_channels(model, keep)
    assert next(small.parameters()).device.type == ACCELERATOR.type
    loss, acc = training.evaluate(small, digits.x_test, digits.y_test)
    assert 0 <= acc <= 1
