import math

import numpy as np
import pytest
import torch

from salt.errors import SaltError
from salt.losses import CompositeLoss, empty_tile_bce, lovasz_hinge, pixel_bce, soft_iou_loss


def reference_lovasz(logits: np.ndarray, truth: np.ndarray, elu_hinge: bool) -> float:
    """Per-tile Lovász hinge from its definition, one tile at a time, with explicit sets.

    The Jaccard loss of a set S of mispredicted pixels is |S| / |P ∪ S| (P = salt pixels);
    its Lovász extension weights the i-th largest hinge error by Δ(S_i) - Δ(S_{i-1}).
    """
    losses = []
    for tile_logits, tile_truth in zip(logits.reshape(len(logits), -1), truth.reshape(len(truth), -1)):
        errors = 1 - tile_logits * (2 * tile_truth - 1)
        order = sorted(range(len(errors)), key=lambda i: -errors[i])
        positives = set(np.flatnonzero(tile_truth).tolist())
        total, previous, chosen = 0.0, 0.0, set()
        for i in order:
            chosen.add(i)
            delta = len(chosen) / len(positives | chosen)
            e = errors[i]
            hinge = (e if e > 0 else math.exp(e) - 1) + 1 if elu_hinge else max(e, 0.0)
            total += hinge * (delta - previous)
            previous = delta
        losses.append(total)
    return float(np.mean(losses))


def test_lovasz_hand_computed():
    logits = torch.tensor([[2.0, -1.0]])
    truth = torch.tensor([[1, 0]])
    # errors 1 - s·x = [-1, 0]; sorted [0, -1]; Jaccard steps 1/2, 1/2
    assert lovasz_hinge(logits, truth, elu_hinge=False).item() == pytest.approx(0.0)
    assert lovasz_hinge(logits, truth).item() == pytest.approx(0.5 * 1 + 0.5 * math.exp(-1))


@pytest.mark.parametrize("elu_hinge", [True, False])
def test_lovasz_equals_the_set_definition_on_random_tiles(elu_hinge):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(6, 1, 7, 5))
    truth = rng.random((6, 1, 7, 5)) < 0.4
    truth[0] = False  # an empty tile
    truth[1] = True
    got = lovasz_hinge(torch.from_numpy(logits), torch.from_numpy(truth), elu_hinge=elu_hinge).item()
    assert got == pytest.approx(reference_lovasz(logits, truth, elu_hinge), rel=1e-5)


def test_lovasz_is_per_tile_not_per_batch():
    rng = np.random.default_rng(1)
    logits = torch.from_numpy(rng.normal(size=(2, 1, 8, 8)))
    truth = torch.from_numpy(rng.random((2, 1, 8, 8)) < 0.5)
    each = [lovasz_hinge(logits[i : i + 1], truth[i : i + 1]).item() for i in range(2)]
    assert lovasz_hinge(logits, truth).item() == pytest.approx(np.mean(each))


def test_lovasz_gradient_on_an_empty_tile_pushes_false_positives_down():
    logits = torch.tensor([[3.0, -2.0, 0.5]], requires_grad=True)
    lovasz_hinge(logits, torch.zeros(1, 3)).backward()
    assert logits.grad[0, 0] > 0 and logits.grad[0, 1] == 0


def test_soft_iou_does_not_vanish_on_empty_tiles():
    empty = torch.zeros(1, 1, 4, 4)
    confident_empty = torch.full((1, 1, 4, 4), -10.0, requires_grad=True)
    unsure = torch.zeros(1, 1, 4, 4, requires_grad=True)
    assert soft_iou_loss(confident_empty, empty).item() < 1e-3
    loss = soft_iou_loss(unsure, empty)  # p = 0.5 everywhere: I = 0, U = 8
    assert loss.item() == pytest.approx(1 - 1 / 9)
    loss.backward()
    assert (unsure.grad > 0).all()
    # hand-computed on a tile with salt: p = 0.5 on 4 pixels, truth 2 of them
    truth = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert soft_iou_loss(torch.zeros(1, 4), truth).item() == pytest.approx(1 - (1 + 1) / (3 + 1))


def test_bce_terms_hand_computed():
    assert pixel_bce(torch.zeros(2, 3), torch.ones(2, 3)).item() == pytest.approx(math.log(2))
    truth = torch.zeros(2, 1, 3, 3)
    truth[1, 0, 1, 1] = 1  # tile 1 has salt, tile 0 has none
    empty_logit = torch.tensor([-2.0, 1.0])
    expected = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.0))) / 2
    assert empty_tile_bce(empty_logit, truth).item() == pytest.approx(expected)


def test_composite_is_the_weighted_sum_of_its_terms():
    rng = np.random.default_rng(2)
    logits = torch.from_numpy(rng.normal(size=(3, 1, 6, 6))).float()
    truth = torch.from_numpy(rng.random((3, 1, 6, 6)) < 0.3)
    empty_logit = torch.tensor([0.3, -1.0, 2.0])
    total, parts = CompositeLoss({"lovasz": 0.75, "empty_bce": 0.25, "bce": 0.0})(logits, empty_logit, truth)
    assert set(parts) == {"lovasz", "empty_bce"}
    expected = 0.75 * lovasz_hinge(logits, truth) + 0.25 * empty_tile_bce(empty_logit, truth)
    assert total.item() == pytest.approx(expected.item())


def test_composite_refuses_bad_configs():
    with pytest.raises(SaltError, match="unknown term\\(s\\) dice; choose from lovasz"):
        CompositeLoss({"dice": 1.0})
    with pytest.raises(SaltError, match="every weight is zero"):
        CompositeLoss({"lovasz": 0})
    loss = CompositeLoss({"lovasz": 0.5, "empty_bce": 0.5})
    with pytest.raises(SaltError, match="needs the empty-tile head"):
        loss(torch.zeros(1, 1, 2, 2), None, torch.zeros(1, 1, 2, 2))
