"""GPUs of its own for every job of a local multirun.

`python train.py -m ...` hands its jobs to Hydra's joblib launcher (conf/hydra/launcher/gpus.yaml)
with one worker process per GPU, or per `trainer.devices` GPUs when a job trains on several. Each
worker claims its GPUs before its first job by locking one file per GPU, and keeps them for the
rest of its life: CUDA reads CUDA_VISIBLE_DEVICES once, when a process first touches a GPU, and
joblib reuses a worker for job after job, so a worker cannot move to another GPU between jobs.
The operating system drops a worker's locks when it exits, so a crashed worker frees its GPUs,
and two sweeps on one machine share its GPUs without ever putting two jobs on one.

The GPU list is CUDA_VISIBLE_DEVICES when it is set (`CUDA_VISIBLE_DEVICES=2,3 python train.py -m
...` keeps a sweep to two GPUs), else every GPU `nvidia-smi` lists. Without GPUs there is one
worker and the jobs run one after another.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)


def nvidia_smi_gpus() -> list[str]:
    """Indices of the machine's GPUs in PCI bus order, as `nvidia-smi` numbers them; [] without
    a driver. Asked without CUDA: a process that initialised CUDA could not be pinned any more."""
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def visible_gpus(environ: Mapping[str, str] | None = None, query: Callable[[], list[str]] = nvidia_smi_gpus) -> list[str]:
    """The GPUs a sweep may use, as CUDA_VISIBLE_DEVICES names them ("0", "GPU-8f3a...").

    CUDA_VISIBLE_DEVICES wins when set; empty or "-1" means no GPU. Otherwise `query()` lists them.
    """
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return query()
    devices = [device.strip() for device in listed.split(",") if device.strip()]
    # CUDA stops at the first invalid entry; -1 is the usual way to hide every GPU.
    return [] if not devices or devices[0] == "-1" else devices


def gpus_per_job(trainer_devices: Any, available: int) -> int:
    """GPUs one job takes, read as Lightning reads `trainer.devices`: n > 0 is n, -1 or "auto" is
    every GPU, a list is its length. Never more than `available` (a job asking for more fails in
    Lightning with its own message), never less than one."""
    if isinstance(trainer_devices, str) and trainer_devices.strip().lstrip("-").isdigit():
        trainer_devices = int(trainer_devices)
    if isinstance(trainer_devices, int) and trainer_devices > 0:
        wanted = trainer_devices
    elif isinstance(trainer_devices, Sequence) and not isinstance(trainer_devices, str):
        wanted = len(trainer_devices)
    else:  # -1, "auto", "-1"
        wanted = available
    return max(1, min(wanted, available)) if available else 1


def worker_count(available: int, per_job: int) -> int:
    """Jobs that run at once: as many as the GPUs hold, one after another without GPUs."""
    return max(1, available // max(1, per_job))


def default_lock_dir() -> Path:
    """One lock dir per machine, so that every sweep on it sees the others' claims."""
    return Path(tempfile.gettempdir()) / "salt-gpu-locks"


@dataclass
class GpuClaim:
    """GPUs locked by this process; the locks hold while their files stay open."""

    devices: list[str]
    handles: list[int] = field(repr=False)

    def release(self) -> None:
        for handle in self.handles:
            os.close(handle)
        self.handles = []


def _lock_path(lock_dir: Path, device: str) -> Path:
    return lock_dir / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', device)}.lock"


def _open_lock_dir(lock_dir: Path) -> None:
    lock_dir.mkdir(parents=True, exist_ok=True)
    try:  # shared by every user of the machine, like /tmp itself
        os.chmod(lock_dir, 0o1777)
    except PermissionError:
        pass  # someone else's dir: they made it shared


def try_claim(devices: Sequence[str], count: int, lock_dir: Path) -> GpuClaim | None:
    """Lock the first `count` of `devices` that no process holds, or nothing if fewer are free."""
    _open_lock_dir(lock_dir)
    claim = GpuClaim(devices=[], handles=[])
    for device in devices:
        # Read-only is enough for flock, and opens a file another user created.
        handle = os.open(_lock_path(lock_dir, device), os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            continue
        claim.devices.append(device)
        claim.handles.append(handle)
        if len(claim.devices) == count:
            return claim
    claim.release()  # a partial set would block a job that needs all of them
    return None


def claim_gpus(
    devices: Sequence[str],
    count: int,
    lock_dir: Path,
    *,
    poll_s: float = 10.0,
    timeout_s: float | None = None,
) -> GpuClaim:
    """Lock `count` free GPUs of `devices`, waiting while other processes hold too many.

    Raises TimeoutError after `timeout_s` seconds (None: wait as long as it takes).
    """
    if not 0 < count <= len(devices):
        raise ValueError(f"cannot claim {count} of {len(devices)} GPU(s)")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waiting = False
    while (claim := try_claim(devices, count, lock_dir)) is None:
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"no {count} of GPUs {','.join(devices)} free within {timeout_s:g} s (locks in {lock_dir})")
        if not waiting:
            log.info("waiting for %d of GPUs %s: other processes hold them (locks in %s)", count, ",".join(devices), lock_dir)
            waiting = True
        time.sleep(poll_s)
    return claim


# The GPUs this process holds: claimed before its first job, kept until it exits.
_process_claim: GpuClaim | None = None


def pin_process(
    devices: Sequence[str],
    count: int,
    lock_dir: Path,
    environ: MutableMapping[str, str] | None = None,
    *,
    poll_s: float = 10.0,
) -> list[str]:
    """Give this process `count` GPUs of its own (once) and show CUDA only those; returns them."""
    global _process_claim
    if _process_claim is None:
        _process_claim = claim_gpus(devices, count, lock_dir, poll_s=poll_s)
    elif len(_process_claim.devices) != count:
        log.warning("this worker keeps its %d GPU(s) %s for a job that asks for %d: CUDA cannot move a process to other GPUs",
                    len(_process_claim.devices), ",".join(_process_claim.devices), count)
    environ = os.environ if environ is None else environ
    environ["CUDA_VISIBLE_DEVICES"] = ",".join(_process_claim.devices)
    return list(_process_claim.devices)


class GpuPerJob(Callback):
    """Hydra callback of the `gpus` launcher: sizes the worker pool and pins every job's worker.

    `on_multirun_start` runs in the launching process before the launcher exists: it finds the
    GPUs and, when `hydra.launcher.n_jobs` is 0, sets it to the number of jobs they hold at once.
    `on_job_start` runs in the worker just before the job, before anything has touched CUDA.
    """

    def __init__(self, lock_dir: str | None = None, poll_s: float = 10.0) -> None:
        self.lock_dir = Path(lock_dir) if lock_dir else default_lock_dir()
        self.poll_s = poll_s
        self.devices: list[str] = []  # set in the launching process, pickled to the workers

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if "CUDA_VISIBLE_DEVICES" not in os.environ:
            # nvidia-smi numbers GPUs in PCI bus order; make CUDA read the indices the same way.
            os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        self.devices = visible_gpus()
        per_job = gpus_per_job(OmegaConf.select(config, "trainer.devices", default=1), len(self.devices))
        workers = worker_count(len(self.devices), per_job)
        if config.hydra.launcher.get("n_jobs") == 0:
            with read_write(config.hydra.launcher), open_dict(config.hydra.launcher):
                config.hydra.launcher.n_jobs = workers
        log.info(
            "%s: %d job(s) at a time, %d GPU(s) each",
            f"GPUs {','.join(self.devices)}" if self.devices else "no GPUs",
            config.hydra.launcher.n_jobs,
            per_job if self.devices else 0,
        )

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or not self.devices:
            return  # a single run sees the GPUs its command was given
        per_job = gpus_per_job(OmegaConf.select(config, "trainer.devices", default=1), len(self.devices))
        try:
            pinned = pin_process(self.devices, per_job, self.lock_dir, poll_s=self.poll_s)
        except Exception as error:  # Hydra only warns about a failing callback: fail safe instead
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
            log.error("job %s gets no GPU (could not claim one: %s); a GPU job will stop", config.hydra.job.num, error)
            return
        log.info("job %s on GPU %s (worker %d)", config.hydra.job.num, ",".join(pinned), os.getpid())
