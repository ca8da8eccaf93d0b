"""Lightning's CSV logger, made to keep a resumed run's history and never leave a torn file."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytorch_lightning as pl
from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.core.saving import save_hparams_to_yaml
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from salt.files import atomic_file


class AtomicExperimentWriter(ExperimentWriter):
    """Lightning's metrics writer, but each save rewrites metrics.csv whole through a
    temporary file: a kill mid-write leaves the previous file, never a torn last line
    (Lightning appends in place). The file is small: one row per logging call.

    history: (fieldnames, rows) written first, the rows a resumed run keeps.
    """

    def __init__(self, log_dir: str, history: tuple[list[str], list[dict]] | None = None) -> None:
        super().__init__(log_dir=log_dir)
        fieldnames, rows = history or ([], [])
        self.metrics_keys = sorted(fieldnames)
        self.rows: list[dict] = list(rows)

    def _check_log_dir_exists(self) -> None:
        # Lightning deletes an existing metrics.csv here; the first save replaces it whole
        # instead, so a run that fails before then (a full disk) keeps its old record.
        pass

    def save(self) -> None:
        if not self.metrics:
            return
        self._record_new_keys()
        self.rows.extend(self.metrics)
        self.metrics = []
        self._write()

    def log_hparams(self, params: dict) -> None:
        self.hparams.update(params)
        with atomic_file(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE)) as tmp:
            save_hparams_to_yaml(tmp, self.hparams)

    def _write(self) -> None:
        with atomic_file(self.metrics_file_path) as tmp:
            with open(tmp, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(self.rows)


class CSVLogger(pl.loggers.CSVLogger):
    """`pytorch_lightning.loggers.CSVLogger` whose metrics.csv survives a resume and is
    written atomically (`AtomicExperimentWriter`).

    A run resumed from a checkpoint keeps the curves of the epochs before it:
    `keep_history` reads the rows logged before the checkpoint's step, and the writer
    starts from them (a fresh run's first save replaces an old metrics.csv whole).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._history: tuple[list[str], list[dict]] | None = None

    def keep_history(self, before_step: int) -> None:
        """Keep the rows of the existing metrics.csv whose step is below `before_step`
        (the resumed checkpoint's global step); later rows belong to the interrupted epoch."""
        path = Path(self.log_dir) / "metrics.csv"
        if not path.is_file():
            return
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            rows = [row for row in reader if row.get("step") and int(float(row["step"])) < before_step]
            self._history = (list(reader.fieldnames or []), rows)

    @property
    @rank_zero_experiment  # other ranks of a multi-GPU run get a no-op writer, as in Lightning
    def experiment(self) -> AtomicExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AtomicExperimentWriter(log_dir=self.log_dir, history=self._history)
            self._history = None
        return self._experiment
