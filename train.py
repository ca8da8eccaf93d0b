"""Train one fold: python train.py [experiment=argus_stage1] [encoder=se_resnext50] [fold=3] ...

A thin Hydra entry point; the work is `salt.training.run.train`. Returns val/score_best so
Hydra sweepers can optimise it.
"""

import hydra
from omegaconf import DictConfig

from salt.errors import exit_on_error
from salt.training.run import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    with exit_on_error():
        return train(cfg).get("val/score_best")


if __name__ == "__main__":
    main()
