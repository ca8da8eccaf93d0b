"""Predict with trained runs: python predict.py runs=[outputs/argus_stage2/se_resnext50] [key=value ...]

A thin Hydra entry point; the work is `salt.prediction.predict`. Writes the submission,
the out-of-fold masks, the report and mosaic pictures under `out`; returns the
out-of-fold score (None without out-of-fold tiles) so sweepers can read it.
"""

import hydra
from omegaconf import DictConfig

from salt.errors import exit_on_error
from salt.prediction import predict


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> float | None:
    with exit_on_error():
        return predict(cfg).oof_score


if __name__ == "__main__":
    main()
