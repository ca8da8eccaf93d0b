"""Lightning's CSV logger, made to keep a resumed run's history."""

from __future__ import annotations

import csv
from pathlib import Path

import pytorch_lightning as pl


class CSVLogger(pl.loggers.CSVLogger):
    """`pytorch_lightning.loggers.CSVLogger` whose metrics.csv survives a resume.

    Lightning's writer deletes an existing metrics.csv when it starts; a run resumed from
    a checkpoint would lose the curves of the epochs before it. `keep_history` reads the
    rows logged before the checkpoint's step and writes them back once the writer exists.
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
            self._history = (sorted(reader.fieldnames or []), rows)

    @property
    def experiment(self):
        first = self._experiment is None
        writer = super().experiment
        if first and self._history is not None:
            fieldnames, rows = self._history
            with open(writer.metrics_file_path, "w", newline="") as handle:
                out = csv.DictWriter(handle, fieldnames=fieldnames)
                out.writeheader()
                out.writerows(rows)
            writer.metrics_keys = list(fieldnames)
            self._history = None
        return writer
