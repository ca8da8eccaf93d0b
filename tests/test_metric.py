from fractions import Fraction

import numpy as np
import pytest
import torch

from salt.metric import THRESHOLDS, CompetitionScore, coverage_classes, score_report, tile_scores


def reference_tile_score(pred: np.ndarray, truth: np.ndarray) -> float:
    """The competition's definition, one tile at a time, with exact fractions."""
    if not truth.any() and not pred.any():
        return 1.0
    if not truth.any() or not pred.any():
        return 0.0
    iou = Fraction(int((pred & truth).sum()), int((pred | truth).sum()))
    thresholds = [Fraction(50 + 5 * k, 100) for k in range(10)]
    return sum(iou > t for t in thresholds) / len(thresholds)


def masks_with_iou(intersection: int, union: int) -> tuple[np.ndarray, np.ndarray]:
    """A (1, 101, 101) prediction and truth with exactly this intersection and union."""
    pred = np.zeros((1, 101, 101), dtype=bool)
    truth = np.zeros_like(pred)
    flat_p, flat_t = pred.reshape(-1), truth.reshape(-1)
    flat_p[:intersection] = flat_t[:intersection] = True
    extra = union - intersection
    flat_t[intersection : intersection + extra] = True  # truth-only pixels
    return pred, truth


def test_thresholds_are_the_competitions():
    assert THRESHOLDS == pytest.approx([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


def test_empty_truth_and_empty_prediction_score_one():
    empty = np.zeros((3, 101, 101), dtype=bool)
    assert tile_scores(empty, empty).tolist() == [1.0, 1.0, 1.0]


def test_exactly_one_empty_scores_zero():
    empty = np.zeros((1, 101, 101), dtype=bool)
    salt = empty.copy()
    salt[0, 10:20, 10:20] = True
    assert tile_scores(salt, empty).item() == 0.0
    assert tile_scores(empty, salt).item() == 0.0


@pytest.mark.parametrize(
    "intersection, union, expected",
    [
        (11, 20, 0.1),  # IoU 0.55 exactly: passes 0.50 only, not 0.55 (strict)
        (10, 20, 0.0),  # IoU 0.50 exactly passes nothing
        (19, 20, 0.9),  # IoU 0.95 exactly: every threshold but 0.95
        (20, 20, 1.0),
        (1301, 2000, 0.4),  # IoU 0.6505: passes 0.50 to 0.65
    ],
)
def test_threshold_boundaries_use_strict_inequality(intersection, union, expected):
    pred, truth = masks_with_iou(intersection, union)
    assert tile_scores(pred, truth).item() == pytest.approx(expected)
    assert reference_tile_score(pred[0], truth[0]) == pytest.approx(expected)


def test_vectorised_scores_equal_the_per_tile_loop_on_random_masks():
    rng = np.random.default_rng(0)
    truth = rng.random((400, 101, 101)) < rng.random((400, 1, 1)) * 0.3
    # Predictions near the truth so that every score level occurs, plus empties.
    noise = rng.random((400, 101, 101)) < rng.random((400, 1, 1)) * 0.2
    pred = truth ^ noise
    truth[:40] = False
    pred[20:60] = False
    expected = [reference_tile_score(p, t) for p, t in zip(pred, truth)]
    scores = tile_scores(pred, truth)
    assert scores.dtype == torch.float32
    assert scores.numpy() == pytest.approx(expected, abs=1e-7)
    assert len(set(expected)) > 5


def test_metric_accumulates_over_batches_as_the_mean_over_all_tiles():
    rng = np.random.default_rng(1)
    truth = torch.from_numpy(rng.random((50, 101, 101)) < 0.3)
    probabilities = torch.from_numpy(rng.random((50, 101, 101))).float()
    probabilities[truth] += 0.45
    metric = CompetitionScore(threshold=0.6)
    for start in range(0, 50, 16):  # uneven batches
        metric.update(probabilities[start : start + 16], truth[start : start + 16])
    expected = np.mean([reference_tile_score(p, t) for p, t in zip((probabilities > 0.6).numpy(), truth.numpy())])
    assert metric.compute().item() == pytest.approx(expected, abs=1e-6)
    metric.reset()
    metric.update(truth, truth)
    assert metric.compute().item() == 1.0


def test_coverage_classes_and_report():
    truth = np.zeros((4, 101, 101), dtype=bool)
    truth[1].reshape(-1)[:1] = True  # a single pixel: class 1
    truth[2].reshape(-1)[: 10201 // 2] = True  # just under half: class 5
    truth[3].reshape(-1)[:-1] = True  # all but one pixel: class 10
    assert coverage_classes(truth).tolist() == [0, 1, 5, 10]
    report = score_report(truth, truth)
    assert report["score"] == 1.0 and report["tiles"] == 4
    assert report["empty"] == {"score": 1.0, "tiles": 1}
    assert report["salt"]["tiles"] == 3
    assert report["coverage"][5] == {"score": 1.0, "tiles": 1}
    assert report["coverage"][7]["tiles"] == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_scores_on_gpu_equal_cpu():
    rng = np.random.default_rng(2)
    truth = torch.from_numpy(rng.random((64, 101, 101)) < 0.3)
    pred = torch.from_numpy(rng.random((64, 101, 101)) < 0.3) | truth
    assert torch.equal(tile_scores(pred.cuda(), truth.cuda()).cpu(), tile_scores(pred, truth))


def test_metric_survives_pickling_for_spawned_processes():
    import pickle

    metric = CompetitionScore(threshold=0.3)
    truth = torch.zeros(2, 101, 101, dtype=torch.bool)
    metric.update(truth, truth)
    restored = pickle.loads(pickle.dumps(metric))
    assert restored.threshold == 0.3 and restored.compute().item() == 1.0
