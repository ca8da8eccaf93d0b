"""Post-processing of predicted masks with the mosaics and the known train masks.

Rules, applied in this order, each switchable (conf/postprocess/*.yaml) and each measured
on out-of-fold predictions (`measure.measure_rules`):

- ``fill_holes`` (`holes`): sediment enclosed by salt in a predicted tile becomes salt.
- ``column_gaps`` (`gaps`): between two train tiles of a mosaic column whose facing edges
  agree, the salt runs are interpolated through the predicted tiles in between.
- ``vertical_down`` / ``vertical_up`` (`vertical`): a train mask with vertical boundaries
  is copied down its column, and up it to the mosaic's terminal level.
- ``corners`` (`corners`): small missed corners completed with a C¹ cubic curve.
- ``empty_below_salt`` (`below_salt`): predicted tiles below a train tile whose bottom edge
  is all salt are emptied.

Every rule edits `TileMasks.masks` in place, never a known (train) tile, and returns how
many tiles it changed. After each rule, predicted tiles that became all salt are emptied,
as the thresholds do.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from omegaconf import DictConfig

from salt.errors import SaltError
from salt.prediction.postprocess.below_salt import empty_below_salt
from salt.prediction.postprocess.corners import complete_corners
from salt.prediction.postprocess.gaps import fill_column_gaps
from salt.prediction.postprocess.grid import NO_TILE, MosaicGrid, TileMasks
from salt.prediction.postprocess.holes import fill_holes
from salt.prediction.postprocess.vertical import copy_vertical_down, copy_vertical_up
from salt.settings import defaults_block, settings_from_block, store_schema

RULES: dict[str, Callable[..., int]] = {
    "fill_holes": fill_holes,
    "column_gaps": fill_column_gaps,
    "vertical_down": copy_vertical_down,
    "vertical_up": copy_vertical_up,
    "corners": complete_corners,
    "empty_below_salt": empty_below_salt,
}
KEEP = ("helpful", "all")


@dataclass(frozen=True)
class Rule:
    """A rule with its parameters bound: ``apply(tiles) -> tiles changed``."""

    name: str
    apply: Callable[[TileMasks], int]


@dataclass(frozen=True)
class PostprocessSettings:
    """The ``postprocess`` config block.

    rules: {name: bool}, which rules run (missing names: off).
    params: {name: {parameter: value}} keyword arguments of each rule.
    keep: "helpful": the submission gets only the rules that raised the out-of-fold score
        by more than `min_gain` (decided greedily in rule order); "all": every enabled rule.
    mosaics: an id,x,y,mosaic_id CSV, or None to assemble the data dir's mosaics with
        `assembly` (cached).
    measure_folds: how train tiles are split into held-out and known when measuring
        (a `salt.folds.FoldSettings` block; None: the random-folds preset).
    """

    rules: Mapping[str, bool] = field(default_factory=dict)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    keep: str = "helpful"
    min_gain: float = 0.0
    mosaics: str | None = None
    assembly: Mapping[str, Any] = field(default_factory=dict)
    measure_folds: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in [*self.rules, *self.params] if name not in RULES]
        if unknown:
            raise SaltError(f"postprocess: unknown rule {unknown[0]!r}; the rules are {', '.join(RULES)}")
        if self.keep not in KEEP:
            raise SaltError(f"postprocess.keep={self.keep!r}: must be one of {', '.join(KEEP)}")

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | DictConfig | None) -> PostprocessSettings:
        return settings_from_block(cls, block, "postprocess")

    def enabled(self) -> list[Rule]:
        """The switched-on rules, in the fixed order of RULES, parameters bound."""
        rules = []
        for name, rule in RULES.items():
            if not self.rules.get(name, False):
                continue
            params = self.params.get(name, {})
            try:
                inspect.signature(rule).bind(None, **params)
            except TypeError:
                accepted = [p for p in inspect.signature(rule).parameters if p != "tiles"]
                raise SaltError(
                    f"postprocess.params.{name}: {', '.join(params)} not all accepted; it takes {', '.join(accepted) or 'none'}"
                ) from None
            rules.append(Rule(name, partial(rule, **params)))
        return rules


store_schema("postprocess", defaults_block(PostprocessSettings))  # conf/postprocess/*.yaml build on it


def apply_rule(rule: Rule, tiles: TileMasks) -> int:
    """Run one rule, then empty predicted tiles it left all salt; returns tiles changed."""
    changed = rule.apply(tiles)
    editable = np.flatnonzero(~tiles.known)
    full = tiles.masks[editable].reshape(len(editable), -1).all(axis=1)
    tiles.masks[editable[full]] = False
    return changed


__all__ = [
    "KEEP",
    "NO_TILE",
    "RULES",
    "MosaicGrid",
    "PostprocessSettings",
    "Rule",
    "TileMasks",
    "apply_rule",
]
