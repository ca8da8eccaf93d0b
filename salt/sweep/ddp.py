"""Lightning's DDP, started the way that is safe where the run was started (conf/trainer/ddp.yaml).

Lightning's plain `ddp` starts the processes of ranks 1..N-1 by running the command line again
(`python train.py <same arguments>`). For a single run that is the fastest and most robust way.
Inside a multirun the command line is the whole sweep: every extra process would run the sweep
once more, writing duplicate run dirs and fighting over GPUs. There the processes are spawned
from the job instead (Lightning's `ddp_spawn`: the job's model and data are pickled to them).
Where a cluster manager already started one process per GPU (SLURM tasks, torchrun), Lightning
starts nothing and joins them, which works from a sweep too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from pytorch_lightning.strategies import DDPStrategy

log = logging.getLogger(__name__)


def processes_started_outside(environ: Mapping[str, str]) -> bool:
    """True when torchrun or SLURM (more than one task) started one process per device."""
    if "TORCHELASTIC_RUN_ID" in environ:
        return True
    try:
        return int(environ.get("SLURM_NTASKS", "1")) > 1
    except ValueError:
        return False


def start_method(in_multirun: bool, environ: Mapping[str, str]) -> str:
    """DDPStrategy's start_method: "popen" (run the command again) unless that would rerun a sweep."""
    if in_multirun and not processes_started_outside(environ):
        return "spawn"
    return "popen"


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def strategy(**kwargs: Any) -> DDPStrategy:
    """A `DDPStrategy(**kwargs)` whose start method fits how this run was launched."""
    method = start_method(in_multirun(), os.environ)
    if method == "spawn":
        log.info("DDP inside a multirun: spawning the processes of the other ranks from this job")
    return DDPStrategy(start_method=method, **kwargs)
