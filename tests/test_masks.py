"""The one rule from probabilities to tile masks (`salt.masks`), the same on arrays and
tensors, and the same in validation and prediction."""

import numpy as np
import pytest
import torch

from salt.geometry import TILE_SIZE, TileGeometry
from salt.masks import all_salt, tile_masks
from salt.models import SegmentationOutput
from salt.training.module import tile_predictions


def probabilities() -> tuple[np.ndarray, np.ndarray]:
    probability = np.full((5, TILE_SIZE, TILE_SIZE), 0.3, np.float32)
    probability[:, :50] = 0.9
    probability[3] = 0.9  # salt everywhere
    probability[4] = 0.1  # nothing above the threshold
    return probability, np.array([0.9, 0.2, np.nan, 0.9, 0.1], np.float32)


def test_thresholds_head_and_all_salt_rule_by_hand():
    probability, salt = probabilities()
    masks, by_head, full = tile_masks(probability, salt, mask_threshold=0.4, empty_threshold=0.5)
    assert masks[0, :50].all() and not masks[0, 50:].any()
    assert not masks[1].any() and masks[2, :50].all()  # below the empty threshold; NaN: never emptied
    assert not masks[3].any() and not masks[4].any()
    # Counted where the rule removed salt pixels: tile 4 was low but had none to remove.
    assert by_head.tolist() == [False, True, False, False, False]
    assert full.tolist() == [False, False, False, True, False]


def test_arrays_and_tensors_give_the_same_masks():
    rng = np.random.default_rng(0)
    probability = rng.uniform(0, 1, (40, TILE_SIZE, TILE_SIZE)).astype(np.float32)
    probability[::7] = 0.95
    salt = rng.uniform(0, 1, 40).astype(np.float32)
    salt[::5] = np.nan
    for head in (salt, None):
        on_arrays = tile_masks(probability, head, mask_threshold=0.5, empty_threshold=0.4)
        on_tensors = tile_masks(torch.from_numpy(probability), None if head is None else torch.from_numpy(head), mask_threshold=0.5, empty_threshold=0.4)
        for array, tensor in zip(on_arrays, on_tensors):
            assert isinstance(tensor, torch.Tensor) and np.array_equal(array, tensor.numpy())
    assert all_salt(np.ones((2, 3, 3), bool)).tolist() == [True, True]


@pytest.mark.parametrize("with_head", [True, False])
def test_validation_binarises_by_the_same_rule_as_prediction(with_head):
    geometry = TileGeometry(148, 128)
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 1, 128, 128, generator=generator)
    logits[0] = 5.0  # an all-salt tile after uncropping
    empty_logit = torch.randn(6, generator=generator) if with_head else None
    _, masks = tile_predictions(SegmentationOutput(logits, empty_logit), geometry, mask_threshold=0.5, empty_threshold=0.5)
    probability = geometry.uncrop(torch.sigmoid(logits)[:, 0]).numpy()
    salt = None if empty_logit is None else torch.sigmoid(empty_logit).numpy()
    expected = tile_masks(probability, salt, mask_threshold=0.5, empty_threshold=0.5).masks
    assert np.array_equal(masks.numpy(), expected) and not expected[0].any()
