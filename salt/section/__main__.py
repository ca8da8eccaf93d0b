"""Predict salt on a whole section: python -m salt.section 'runs=[RUN,...]' input=PATH out=DIR [key=value ...]

A thin Hydra entry point (conf/section.yaml); the work is `salt.section.pipeline.section`.
Writes probability.npy (float16), mask.png, overlay.png and summary.json/.md into `out`.
"""

import hydra
from omegaconf import DictConfig

from salt.errors import exit_on_error
from salt.section.pipeline import section


@hydra.main(version_base="1.3", config_path="../conf", config_name="section")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        section(cfg)


if __name__ == "__main__":
    main()
