"""Prediction: runs and checkpoints, TTA and crops, ensembles, thresholds, the whole command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict
from torch import nn

from salt import rle
from salt.errors import SaltError
from salt.folds import FoldSettings, folds_for
from salt.geometry import TILE_SIZE
from salt.models import SegmentationOutput
from salt.prediction import (
    CheckpointError,
    EnsembleMean,
    InferenceSettings,
    find_runs,
    input_padding,
    load_network,
    predict,
    predict_config,
    predict_runs,
    predict_tiles,
    search_thresholds,
)
from salt.data.prepared import PaddingSettings, prepare_tiles
from salt.masks import tile_masks
from salt.prediction.inference import _MirroredPairs
from salt.prediction.thresholds import threshold_grid
from salt.submission import decode_rles, read_rles, validate_submission
from salt.training.run import train

from conftest import FAST_TRAINING, REPO

# Tiny networks, one short epoch on a few batches: runs that exist, not runs that are good.
QUICK_RUN = [
    *FAST_TRAINING,
    "model.decoder_channels=[8,8,8,8,8]",
    "model.hypercolumn_channels=4",
    "folds.k=2",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=2",
    "callbacks.validation_tiles=null",
    "callbacks.training_curves=null",
    "callbacks.progress_bar=null",
    "trainer.num_sanity_val_steps=0",
]
OTHER_ENCODER = ["encoder.name=test_efficientnet", "encoder.drop_first_maxpool=false", "model=linknet", "model.final_channels=8"]


def compose(config: str, *overrides: str, run_dir: Path | None = None):
    """Compose conf/<config>.yaml as its command would; with `run_dir`, set Hydra's runtime
    so `train(cfg)` writes there."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = hydra_compose(config, overrides=list(overrides), return_hydra_config=run_dir is not None)
    if run_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_dir) -> dict[str, Path]:
    """Three trained runs on the small synthetic dataset: a tiny U-Net on both of 2 random
    folds, and a LinkNet on an EfficientNet test encoder on fold 0."""
    from hydra.core.hydra_config import HydraConfig

    root = tmp_path_factory.mktemp("runs")
    base = ["data=synthetic", f"data.dir={synthetic_dir}", f"paths.output_dir={root}", f"paths.cache_dir={root / 'cache'}"]
    linknet = [o for o in QUICK_RUN if not o.startswith("model.decoder_channels")]  # LinkNet has none
    specs = {
        "unet/tiny/fold_0": [*QUICK_RUN, "fold=0"],
        "unet/tiny/fold_1": [*QUICK_RUN, "fold=1"],
        "linknet/effnet/fold_0": [*linknet, "fold=0", *OTHER_ENCODER],
    }
    dirs = {}
    try:
        for name, extra in specs.items():
            dirs[name] = root / name
            train(compose("train", *base, *extra, run_dir=dirs[name]))
    finally:
        HydraConfig.instance().cfg = None
    dirs["cache"] = root / "cache"
    return dirs


def config_for(runs: dict[str, Path], out: Path, *names: str, **options: str):
    overrides = [f"runs=[{','.join(str(runs[name]) for name in names)}]", f"out={out}", f"paths.cache_dir={runs['cache']}"]
    overrides += [f"{key.replace('__', '.')}={value}" for key, value in options.items()]
    return compose("predict", *overrides)


def synthetic_truth_csv(synthetic_tiles, ids, path: Path) -> Path:
    """An id,rle_mask table of the true masks of `ids` (the generator knows the test masks too)."""
    masks = {tile.id: tile.mask for tile in synthetic_tiles}
    path.write_text("id,rle_mask\n" + "".join(f"{i},{rle.encode(masks[i])}\n" for i in ids))
    return path


# --- the whole command ------------------------------------------------------------------------


@pytest.mark.slow
def test_train_predict_submission_and_score_end_to_end(runs, synthetic_dir, synthetic_tiles, tmp_path):
    out = tmp_path / "predict"
    command = [
        sys.executable,
        "predict.py",
        f"runs={runs['unet/tiny/fold_0'].parent}",  # one directory (no list), above both folds
        f"out={out}",
        f"paths.cache_dir={runs['cache']}",
        f"postprocess.mosaics={synthetic_dir / 'layout.csv'}",
        "postprocess.keep=all",
        "pictures.largest=1",
        "batch_size=64",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 run(s)" in result.stdout and "tiles/s" in result.stdout
    test_ids = list(read_rles(synthetic_dir / "sample_submission.csv"))
    validate_submission(out / "submission.csv", test_ids)
    report = OmegaConf.to_container(OmegaConf.load(out / "report.json"))
    assert report["oof"]["tiles"] == report["oof"]["train_tiles"] == len(read_rles(synthetic_dir / "train.csv"))
    assert [rule["name"] for rule in report["postprocess"]["rules"]] == [
        "fill_holes", "column_gaps", "vertical_down", "vertical_up", "corners", "empty_below_salt",
    ]
    assert (out / "report.md").read_text().startswith("# Prediction report")
    assert len(list((out / "pictures").glob("mosaic_*.png"))) == 1

    # The out-of-fold masks score as the report says, with the competition's scorer.
    scored = subprocess.run(
        [sys.executable, "-m", "salt.score", str(synthetic_dir / "train.csv"), str(out / "oof.csv")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert scored.returncode == 0, scored.stderr
    assert scored.stdout.strip().splitlines()[-1] == f"score: {report['oof']['score']:.4f}"
    # And the submission scores against the synthetic test truth.
    truth = synthetic_truth_csv(synthetic_tiles, test_ids, tmp_path / "test_truth.csv")
    scored = subprocess.run([sys.executable, "-m", "salt.score", str(truth), str(out / "submission.csv")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert scored.returncode == 0 and scored.stdout.strip().splitlines()[-1].startswith("score: ")


def test_ensemble_of_different_encoders_is_the_mean_of_their_probabilities(runs, tmp_path):
    names = ("unet/tiny/fold_0", "linknet/effnet/fold_0")
    found = find_runs([runs[name] for name in names])
    assert [run.encoder for run in found] == ["test_resnet", "test_efficientnet"]
    settings = InferenceSettings(hflip=False)
    tiles = prepare_tiles(found[0].data_dir, runs["cache"], splits=["test"], padding=found[0].padding, log=lambda line: None)["test"]
    mask_mean, salt_mean = 0, 0
    for run in found:
        batches = list(predict_tiles(load_network(run), tiles, np.arange(len(tiles)), run.channels, settings))
        mask_mean = mask_mean + np.concatenate([b.mask_probability for b in batches]) / 2
        salt_mean = salt_mean + np.concatenate([b.salt_probability for b in batches]) / 2
    # Untrained networks sit near 0.5: threshold at the median so that both classes occur.
    threshold = float(np.median(mask_mean))
    cfg = config_for(
        runs, tmp_path / "out", *names,
        oof__enabled="false", postprocess="none", pictures__largest="0", tta__hflip="false",
        thresholds__mask=str(threshold), thresholds__empty="0.0",
    )
    result = predict(cfg, log=lambda line: None)
    assert [run["encoder"] for run in result.report["runs"]] == ["test_resnet", "test_efficientnet"]
    assert result.oof_score is None and result.oof_submission is None
    expected = tile_masks(mask_mean, salt_mean, mask_threshold=threshold, empty_threshold=0.0).masks
    written = decode_rles(read_rles(result.submission), tiles.ids.tolist())
    # Sums taken in another order may put a pixel on the other side of the threshold.
    assert expected.any() and (written == expected).mean() > 0.9999


def test_out_of_fold_tiles_are_the_ids_the_run_recorded(runs, synthetic_dir, tmp_path):
    from salt.rundir import VALIDATION_IDS, read_validation_ids

    run = tmp_path / "unet" / "tiny" / "fold_0"
    shutil.copytree(runs["unet/tiny/fold_0"], run)
    recorded = read_validation_ids(run)
    table = folds_for(synthetic_dir, runs["cache"], FoldSettings.from_config(OmegaConf.load(run / "config.yaml").folds))
    assert sorted(recorded.tolist()) == sorted(table.id[table.fold == 0].tolist())

    def oof_tiles(log=lambda line: None) -> int:
        cfg = compose("predict", f"runs=[{run}]", f"out={tmp_path / 'out'}", f"paths.cache_dir={runs['cache']}",
                      "test=false", "postprocess=none", "pictures.largest=0", "tta.hflip=false")
        return predict(cfg, log=log).report["oof"]["tiles"]

    # Prediction takes the recorded ids, not the fold the fold code makes today.
    header = [line for line in (run / VALIDATION_IDS).read_text().splitlines() if line.startswith("#")]
    (run / VALIDATION_IDS).write_text("\n".join([*header, *recorded[:5].tolist()]) + "\n")
    assert oof_tiles() == 5
    # A run without the record: its fold recomputed, and a warning that says so.
    (run / VALIDATION_IDS).unlink()
    lines = []
    assert oof_tiles(lines.append) == len(recorded)
    assert any("records no validation ids" in line for line in lines)
    # Ids the data dir does not hold: one line naming the run.
    (run / VALIDATION_IDS).write_text("# fold 0\nnot_a_tile\n" + "\n".join(recorded.tolist()) + "\n")
    with pytest.raises(SaltError, match=r"1 of its \d+ validation tiles are not training tiles of this data dir \(first: not_a_tile\)"):
        oof_tiles()


def test_best_val_score_equals_the_out_of_fold_score_of_predict(synthetic_dir, tmp_path):
    """Checkpoints are chosen by the rule the report scores with: same tiles, same crop, same
    binarisation (flip TTA and post-processing off, the run's thresholds).

    The network is the random initial one (learning rate 0): it gives every pixel of every
    tile P(salt) ≈ 0.55, above the threshold 0.5, so every tile is predicted all salt, which
    the all-salt rule must empty in validation as it does in prediction (validation that
    kept them would score about 0 where prediction scores the empty tiles' share)."""
    from hydra.core.hydra_config import HydraConfig

    from salt.rundir import read_validation_ids
    from salt.rundir import read_metrics_csv

    run = tmp_path / "run"
    base = ["data=synthetic", f"data.dir={synthetic_dir}", f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}"]
    whole_validation = [o for o in QUICK_RUN if "limit_val_batches" not in o]
    try:
        train(compose("train", *base, *whole_validation, "fold=0", "optimizer.lr=0.0", run_dir=run))
    finally:
        HydraConfig.instance().cfg = None
    trained = OmegaConf.load(run / "config.yaml")
    best = read_metrics_csv(run / "metrics" / "metrics.csv")["val/score_best"][-1][1]
    cfg = compose(
        "predict", f"runs=[{run}]", f"out={tmp_path / 'out'}", f"paths.cache_dir={tmp_path / 'cache'}",
        "postprocess=none", "pictures.largest=0", "tta.hflip=false", "precision=32", "channels_last=false",
        f"thresholds.mask={trained.thresholds.mask}", f"thresholds.empty={trained.thresholds.empty}",
    )
    result = predict(cfg, log=lambda line: None)
    assert result.report["test"]["emptied_all_salt"] == result.report["test"]["tiles"]  # the premise above
    assert result.report["oof"]["tiles"] == len(read_validation_ids(run))
    assert result.oof_score_before == pytest.approx(best, abs=1e-6)


def test_with_weight_averaging_checkpoints_and_prediction_hold_the_averaged_weights_validation_scored(synthetic_dir, tmp_path):
    """callbacks.ema: val/score is the averaged network's, each checkpoint stores it as the
    network (the raw weights beside it, for resuming), and predict scores exactly that one."""
    from hydra.core.hydra_config import HydraConfig

    from salt.rundir import read_metrics_csv
    from salt.training.checkpoints import network_state, read_checkpoint

    run = tmp_path / "run"
    base = ["data=synthetic", f"data.dir={synthetic_dir}", f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}"]
    whole_validation = [o for o in QUICK_RUN if "limit_val_batches" not in o]
    ema = "callbacks.ema={_target_: pytorch_lightning.callbacks.EMAWeightAveraging, decay: 0.5}"
    try:
        train(compose("train", *base, *whole_validation, "fold=0", "trainer.max_epochs=3", ema, run_dir=run))
    finally:
        HydraConfig.instance().cfg = None
    # The last epoch's: after more than one step the average differs from the raw weights.
    checkpoint = read_checkpoint(run / "checkpoints" / "last.ckpt")
    averaged, raw = network_state(run / "checkpoints" / "last.ckpt"), checkpoint["current_model_state"]
    assert any(not torch.equal(averaged[name], raw[f"net.{name}"]) for name in averaged if averaged[name].is_floating_point())
    last = read_metrics_csv(run / "metrics" / "metrics.csv")["val/score"][-1][1]
    trained = OmegaConf.load(run / "config.yaml")
    cfg = compose(
        "predict", f"runs=[{run}]", "checkpoint=last", f"out={tmp_path / 'out'}", f"paths.cache_dir={tmp_path / 'cache'}", "test=false",
        "postprocess=none", "pictures.largest=0", "tta.hflip=false", "precision=32", "channels_last=false",
        f"thresholds.mask={trained.thresholds.mask}", f"thresholds.empty={trained.thresholds.empty}",
    )
    assert predict(cfg, log=lambda line: None).oof_score_before == pytest.approx(last, abs=1e-6)


def test_out_of_fold_uses_only_the_models_that_did_not_train_on_a_tile(runs, tmp_path):
    result = predict_runs(
        [runs["unet/tiny/fold_0"]],
        f"out={tmp_path / 'out'}", f"paths.cache_dir={runs['cache']}", "test=false", "postprocess=none", "pictures.largest=0",
        log=lambda line: None,
    )
    table = folds_for(find_runs([runs["unet/tiny/fold_0"]])[0].data_dir, runs["cache"], FoldSettings.preset("random", k=2))
    in_fold_0 = set(table.id[table.fold == 0])
    assert set(read_rles(result.oof_submission)) == in_fold_0
    assert result.report["oof"]["tiles"] == len(in_fold_0) < result.report["oof"]["train_tiles"]
    assert result.submission is None and "search" in result.report["oof"]


# --- runs and checkpoints -----------------------------------------------------------------------


def test_find_runs_from_dirs_globs_parents_and_checkpoint_files(runs):
    parent = runs["unet/tiny/fold_0"].parent
    assert [run.fold for run in find_runs([parent])] == [0, 1]
    assert len(find_runs([str(parent.parents[1] / "*" / "*" / "fold_0")])) == 2
    assert find_runs([parent], checkpoint="last")[0].checkpoint.name == "last.ckpt"
    ckpt = runs["unet/tiny/fold_1"] / "checkpoints" / "best.ckpt"
    (run,) = find_runs([ckpt, runs["unet/tiny/fold_1"]])  # the same run once
    assert run.fold == 1 and run.name == "unet/tiny/fold_1" and run.encoder == "test_resnet"
    with pytest.raises(SaltError, match="nowhere matches no trained run .*config.yaml and checkpoints/best.ckpt"):
        find_runs(["nowhere"])
    with pytest.raises(SaltError, match="checkpoint='worst'"):
        find_runs([parent], checkpoint="worst")
    with pytest.raises(SaltError, match="runs: empty"):
        find_runs([])


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def test_checkpoint_of_another_config_is_refused_with_a_clear_error(runs, tmp_path):
    wider = copy_run(runs["unet/tiny/fold_0"], tmp_path / "wider" / "tiny" / "fold_0")
    config = OmegaConf.load(wider / "config.yaml")
    config.model.decoder_channels = [16, 16, 16, 16, 16]
    OmegaConf.save(config, wider / "config.yaml")
    with pytest.raises(CheckpointError, match=r"checkpoint .*best.ckpt: does not fit the network of .*config.yaml \(salt.models.Unet, encoder test_resnet\): \d+ weight\(s\) of another shape \(e.g. .*: checkpoint \[.*\], config \[.*\]\)"):
        load_network(find_runs([wider])[0])

    other = copy_run(runs["unet/tiny/fold_0"], tmp_path / "other" / "tiny" / "fold_0")
    config = OmegaConf.load(other / "config.yaml")
    config.model.encoder.name = "test_efficientnet"
    config.model.encoder.drop_first_maxpool = False
    OmegaConf.save(config, other / "config.yaml")
    with pytest.raises(CheckpointError, match=r"encoder test_efficientnet\).*weight\(s\) missing .*unexpected weight\(s\)"):
        load_network(find_runs([other])[0])

    # As a user sees it: one line, exit status 1.
    result = subprocess.run(
        [sys.executable, "predict.py", f"runs=[{wider}]", f"out={tmp_path / 'out'}", f"paths.cache_dir={runs['cache']}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: checkpoint {wider / 'checkpoints' / 'best.ckpt'}: does not fit")
    assert not (tmp_path / "out" / "submission.csv").exists()


def test_unreadable_or_foreign_checkpoints_are_refused(runs, tmp_path):
    broken = copy_run(runs["unet/tiny/fold_0"], tmp_path / "broken" / "tiny" / "fold_0")
    (broken / "checkpoints" / "best.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="best.ckpt: cannot be read"):
        load_network(find_runs([broken])[0])
    torch.save({"weights": {}}, broken / "checkpoints" / "best.ckpt")
    with pytest.raises(CheckpointError, match="holds no state_dict; not a checkpoint written by train.py"):
        load_network(find_runs([broken])[0])


def test_checkpoint_trained_on_other_inputs_is_refused(runs, tmp_path):
    # Same channel count and network, other padding: the weights would load, the inputs
    # would be wrong. The checkpoint's record of its inputs catches it.
    repadded = copy_run(runs["unet/tiny/fold_0"], tmp_path / "repadded" / "tiny" / "fold_0")
    config = OmegaConf.load(repadded / "config.yaml")
    config.data.padding.mode = "reflect"
    config.data.channels = ["image", "depth_ramp", "coord_x"][: len(config.data.channels)]
    OmegaConf.save(config, repadded / "config.yaml")
    with pytest.raises(CheckpointError, match=r"best.ckpt: trained on other inputs than .*config.yaml prepares \(.*padding.mode biharmonic in the checkpoint, reflect in the config"):
        load_network(find_runs([repadded])[0])


def test_checkpoint_with_non_finite_weights_is_refused(runs, tmp_path):
    diverged = copy_run(runs["unet/tiny/fold_0"], tmp_path / "diverged" / "tiny" / "fold_0")
    path = diverged / "checkpoints" / "best.ckpt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    name = next(key for key, value in checkpoint["state_dict"].items() if key.startswith("net.") and value.is_floating_point())
    checkpoint["state_dict"][name][..., 0] = float("inf")
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=rf"best.ckpt: weight {name[4:]} holds \d+ non-finite value\(s\) \(NaN or inf\); the run diverged"):
        load_network(find_runs([diverged])[0])


def test_partial_test_folder_names_the_missing_tiles_and_writes_nothing(runs, tmp_path, synthetic_dir):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    images = sorted((data / "test" / "images").glob("*.png"))
    for image in images[:2]:
        image.unlink()
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "predict.py", f"runs=[{runs['unet/tiny/fold_0']}]", f"data_dir={data}", f"out={out}", f"paths.cache_dir={tmp_path / 'cache'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {data / 'test' / 'images'}: 2 of {len(images)} tiles listed in sample_submission.csv have no image: ")
    assert all(image.stem in line for image in images[:2])
    for name in ("submission.csv", "oof.csv", "report.json", "report.md", "pictures"):
        assert not (out / name).exists(), name


def test_runs_on_different_data_dirs_need_a_choice(runs, tmp_path):
    moved = copy_run(runs["unet/tiny/fold_1"], tmp_path / "moved" / "tiny" / "fold_1")
    config = OmegaConf.load(moved / "config.yaml")
    config.data.dir = str(tmp_path / "elsewhere")
    OmegaConf.save(config, moved / "config.yaml")
    cfg = config_for({**runs, "moved": moved}, tmp_path / "out", "unet/tiny/fold_0", "moved")
    with pytest.raises(SaltError, match="different data dirs .*choose one with data_dir=PATH"):
        predict(cfg, log=lambda line: None)


# --- inference: TTA and crops ------------------------------------------------------------------


class LopsidedNet(nn.Module):
    """A fixed random convolution: its output is not mirror-symmetric, so TTA shows."""

    size_multiple = 32

    def __init__(self, channels: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(channels, 1, 5, padding=2)

    def forward(self, x: torch.Tensor) -> SegmentationOutput:
        logits = self.conv(x)
        return SegmentationOutput(logits, logits[:, 0, :, : x.shape[-1] // 2].mean(dim=(1, 2)))


@pytest.fixture(scope="module")
def padded_test_tiles(synthetic_dir, tmp_path_factory):
    return prepare_tiles(synthetic_dir, tmp_path_factory.mktemp("cache"), splits=["test"], log=lambda line: None)["test"]


def test_flip_tta_is_the_mean_of_the_tile_and_its_mirror(padded_test_tiles):
    tiles, channels = padded_test_tiles, ["image", "depth_ramp"]
    net = LopsidedNet(len(channels)).eval()
    indices = np.arange(5)
    (plain,) = predict_tiles(net, tiles, indices, channels, InferenceSettings(hflip=False, batch_size=8))
    (both,) = predict_tiles(net, tiles, indices, channels, InferenceSettings(hflip=True, batch_size=8))
    geometry = tiles.geometry
    mirrored = np.ascontiguousarray(geometry.crop(np.asarray(tiles.images[indices]))[..., ::-1])
    inputs = torch.from_numpy(np.stack([np.stack([m, np.repeat(np.linspace(0, 1, m.shape[0], dtype=np.float32)[:, None], m.shape[1], 1)]) for m in mirrored]))
    with torch.no_grad():
        out = net(inputs)
    flipped_back = geometry.uncrop(torch.sigmoid(out.mask_logits)[:, 0].flip(-1)).numpy()
    assert np.allclose(both.mask_probability, (plain.mask_probability + flipped_back) / 2, atol=1e-6)
    assert np.allclose(both.salt_probability, (plain.salt_probability + torch.sigmoid(out.empty_logit).numpy()) / 2, atol=1e-6)
    assert not np.allclose(both.mask_probability, plain.mask_probability, atol=1e-3)
    assert both.mask_probability.shape == (5, TILE_SIZE, TILE_SIZE) and both.indices.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("crop", ["center", "full"])
def test_flip_tta_of_a_mirror_symmetric_network_changes_nothing(synthetic_dir, tmp_path, crop):
    # The tile is not centred in its padded square (47 pixels of padding: 23 before, 24
    # after), so a TTA that mirrored at the wrong moment would shift its output a pixel.
    net = LopsidedNet(1).eval()
    with torch.no_grad():
        net.conv.weight.copy_((net.conv.weight + net.conv.weight.flip(-1)) / 2)  # mirror-symmetric kernel
    padding = input_padding(PaddingSettings(size=148, crop_size=128), crop)
    tiles = prepare_tiles(synthetic_dir, tmp_path / "cache", splits=["test"], padding=padding, log=lambda line: None)["test"]
    assert tiles.geometry.pad_before != tiles.geometry.pad_after
    (plain,) = predict_tiles(net, tiles, np.arange(4), ["image"], InferenceSettings(hflip=False, crop=crop))
    (both,) = predict_tiles(net, tiles, np.arange(4), ["image"], InferenceSettings(hflip=True, crop=crop))
    assert np.allclose(both.mask_probability, plain.mask_probability, atol=1e-5)


def test_mirrored_inputs_flip_the_tile_not_the_column_channel(padded_test_tiles):
    pairs = _MirroredPairs(padded_test_tiles, np.array([3]), padded_test_tiles.geometry, ["image", "coord_x"], hflip=True)
    sample = pairs[0]
    assert torch.equal(sample["mirrored"][0], sample["image"][0].flip(-1))
    assert torch.equal(sample["mirrored"][1], sample["image"][1])  # 0 at the left column in both


def test_full_crop_pads_to_the_next_multiple_of_32_and_comes_back_to_101(synthetic_dir, tmp_path):
    padding = input_padding(PaddingSettings(size=148, crop_size=128), "full")
    assert (padding.size, padding.crop_size, padding.mode) == (160, 160, "biharmonic")
    assert input_padding(PaddingSettings(size=148, crop_size=128), "center") == PaddingSettings(size=148, crop_size=128)
    tiles = prepare_tiles(synthetic_dir, tmp_path / "cache", splits=["test"], padding=padding, log=lambda line: None)["test"]
    (batch,) = predict_tiles(LopsidedNet(1).eval(), tiles, np.arange(3), ["image"], InferenceSettings(hflip=True))
    assert batch.mask_probability.shape == (3, TILE_SIZE, TILE_SIZE)
    with pytest.raises(SaltError, match="crop='middle'"):
        InferenceSettings(crop="middle")


# --- ensembles and thresholds -------------------------------------------------------------------


def test_ensemble_mean_counts_each_tile_and_divides_in_place():
    from salt.prediction.inference import TileBatch

    mean = EnsembleMean(4)
    ones = np.ones((2, TILE_SIZE, TILE_SIZE), np.float32)
    mean.add(TileBatch(np.array([0, 1]), 0.2 * ones, np.array([0.1, 0.3], np.float32)))
    mean.add(TileBatch(np.array([1, 2]), 0.6 * ones, None))  # a network without an empty-tile head
    mask, salt = mean.means()
    assert mask is mean.mask_sum  # no second N×101×101 array
    assert np.allclose(mask[:, 0, 0], [0.2, 0.4, 0.6, 0.0])
    assert np.allclose(salt[:2], [0.1, 0.3]) and np.isnan(salt[2:]).all()
    assert mean.covered.tolist() == [True, True, True, False]
    with pytest.raises(RuntimeError, match="after means"):
        mean.add(TileBatch(np.array([3]), ones[:1], None))


def test_threshold_search_matches_scoring_every_pair():
    from salt.metric import tile_scores

    rng = np.random.default_rng(1)
    truth = np.zeros((12, TILE_SIZE, TILE_SIZE), dtype=bool)
    for n in range(8):
        truth[n, : rng.integers(10, 90)] = True
    probability = np.clip(truth * 0.6 + rng.uniform(0, 0.5, truth.shape), 0, 1).astype(np.float32)
    salt = rng.uniform(0, 1, 12).astype(np.float32)
    masks_grid, empty_grid = threshold_grid(0.3, 0.7, 0.1), threshold_grid(0.1, 0.9, 0.2)
    search = search_thresholds(probability, salt, truth, masks_grid, empty_grid)
    for i, m in enumerate(masks_grid):
        for j, e in enumerate(empty_grid):
            masks = tile_masks(probability, salt, mask_threshold=m, empty_threshold=e).masks
            assert search.scores[i, j] == pytest.approx(float(tile_scores(masks, truth).mean()))
    mask, empty, score = search.best
    assert score == search.scores.max() and mask in masks_grid and empty in empty_grid
    assert threshold_grid(0.2, 0.8, 0.05).tolist()[:3] == [0.2, 0.25, 0.3] and len(threshold_grid(0.2, 0.8, 0.05)) == 13


def test_predict_config_composes_inside_another_hydra_app():
    from hydra import initialize_config_dir

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):  # as under @hydra.main (salt.demo)
        cfg = predict_config("crop=full", "postprocess=none")
    assert cfg.crop == "full" and not any(cfg.postprocess.rules.values())
    assert predict_config().thresholds == {"mask": 0.4, "empty": 0.5}
