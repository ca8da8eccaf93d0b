"""Prediction: trained runs → test submission, out-of-fold report, mosaic post-processing.

    python predict.py runs=[outputs/argus_stage2/se_resnext50,outputs/argus_mosaic/se_resnext50]

`predict(cfg)` (conf/predict.yaml) runs everything; `predict_runs(runs, *overrides)` composes
the config first (for callers such as the demo). The parts, one module each:

- `runs`: find run directories and checkpoints from globs, rebuild each network from its
  config.yaml and refuse a checkpoint that does not fit it (`CheckpointError`).
- `inference`: one network over tiles, in batches, with horizontal-flip TTA, on the
  centred crop or the whole padded tile, cropped back to 101×101.
- `ensemble`: running means over models, memory independent of their number.
- `thresholds`: mask and empty-tile thresholds, all-salt tiles emptied, the search for the
  best pair on out-of-fold tiles.
- `postprocess`: rules that use the mosaics and the known train masks, each measured on
  out-of-fold predictions.
- `pictures`, `report`: mosaic pictures (truth, prediction, edits) and report.md/json.
"""

from salt.prediction.ensemble import EnsembleMean
from salt.prediction.inference import InferenceSettings, TileBatch, input_padding, predict_tiles
from salt.prediction.pipeline import PredictionResult, predict, predict_config, predict_runs
from salt.prediction.runs import CheckpointError, Run, find_runs, load_network
from salt.prediction.thresholds import ThresholdSearch, search_thresholds

__all__ = [
    "CheckpointError",
    "EnsembleMean",
    "InferenceSettings",
    "PredictionResult",
    "Run",
    "ThresholdSearch",
    "TileBatch",
    "find_runs",
    "input_padding",
    "load_network",
    "predict",
    "predict_config",
    "predict_runs",
    "predict_tiles",
    "search_thresholds",
]
