"""Config blocks read into settings objects by one strict rule.

Each settings class (padding, folds, mosaic assembly, post-processing) takes its block of
the composed config through `config_block`: an unknown key (a typo, a key of another
version) or a missing required key stops with one line naming it and the keys allowed,
never a bare KeyError and never a silently ignored setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from salt.errors import SaltError


def config_block(block: Mapping[str, Any] | DictConfig | None, section: str, *, allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
    """`block` as a plain dict (interpolations resolved); one line for unknown or missing keys."""
    if block is None:
        block = {}
    elif isinstance(block, DictConfig):
        block = OmegaConf.to_container(block, resolve=True)
    if not isinstance(block, Mapping):
        raise SaltError(f"{section}: must be a mapping of settings, got {block!r}")
    block = dict(block)
    allowed = sorted(set(allowed))
    unknown = sorted(set(block) - set(allowed), key=str)
    if unknown:
        raise SaltError(f"{section}: unknown key(s) {', '.join(map(str, unknown))}; expected {', '.join(allowed)}")
    missing = [key for key in required if key not in block]
    if missing:
        raise SaltError(f"{section}.{missing[0]}: missing (the block needs {', '.join(required)})")
    return block
