"""Config blocks read into settings objects by one strict rule.

Each settings class (padding, folds, mosaic assembly, post-processing, inference, SEG-Y
slice) is the schema of its block: its fields are the keys, their annotations the types and
their defaults the defaults, written once. `settings_from_block` reads a block of the
composed config (or a plain dict from Python) into it: an unknown key (a typo, a key of
another version), a missing required key or a value of the wrong type stops with one line
naming the key, never a bare KeyError or ValueError and never a silently ignored setting.

The defaults reach the configs from the same dataclass: `store_schema(group,
defaults_block(cls))`, called beside the class, registers them in Hydra's ConfigStore as
`<group>/schema`, and the YAML presets of the group select it and set only what differs. A
command must import the module of each schema its config composes before Hydra composes it
(tests/test_settings.py starts every command in a fresh interpreter to check).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import numpy as np
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


Settings = TypeVar("Settings")


def settings_from_block(cls: type[Settings], block: Mapping[str, Any] | DictConfig | None, section: str, *, required: Iterable[str] | None = None) -> Settings:
    """`cls(**block)` with the block checked against the dataclass `cls`.

    Keys must be fields of `cls`; `required` (default: the fields without a default) must be
    present; each value must fit its field's annotation (`bool`, `int`, `float`, `str`,
    `X | None`, `Mapping[K, V]`, `Any`); ints are accepted for floats and stored as floats, so
    `1` and `1.0` make equal settings. Validation beyond types stays in `cls.__post_init__`.
    """
    fields = dataclasses.fields(cls)
    if required is None:
        required = [f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    block = config_block(block, section, allowed=[f.name for f in fields], required=required)
    hints = typing.get_type_hints(cls)
    prefix = f"{section}." if section else ""  # "": keys at the top level of the config
    return cls(**{name: checked_value(value, hints[name], prefix + name) for name, value in block.items()})


def checked_value(value: Any, hint: Any, key: str) -> Any:
    """`value` as the annotation `hint` asks, or one line naming `key` and what it must be."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [arg for arg in args if arg is not type(None)]
        if len(kinds) == 1:
            return checked_value(value, kinds[0], key)
        raise TypeError(f"{key}: unions of several types are not supported in settings ({hint})")
    if hint is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise SaltError(f"{key}={value!r}: must be true or false")
    if hint is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        raise SaltError(f"{key}={value!r}: must be an integer")
    if hint is float:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            return float(value)
        raise SaltError(f"{key}={value!r}: must be a number")
    if hint is str:
        # Hydra's command-line parser turns `precision=32` into an int; numbers read as text.
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            return str(value)
        raise SaltError(f"{key}={value!r}: must be a string")
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        if not isinstance(value, Mapping):
            raise SaltError(f"{key}={value!r}: must be a mapping")
        inner = args[1] if len(args) == 2 else Any
        return {name: checked_value(item, inner, f"{key}.{name}") for name, item in value.items()}
    raise TypeError(f"{key}: settings annotation {hint!r} is not supported")



def defaults_block(cls: type, keys: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The defaults of the dataclass `cls` as a config block (fields without one left out).

    keys: {field: dotted config key} for fields whose key differs from their name (e.g.
    ``{"hflip": "tta.hflip"}``); the block is nested accordingly.
    """
    block: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            continue
        *parents, leaf = (keys or {}).get(f.name, f.name).split(".")
        node = block
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return block


def settings_at_keys(cls: type[Settings], cfg: DictConfig | Mapping[str, Any], keys: Mapping[str, str]) -> Settings:
    """`cls` from a config whose keys are the fields' names, or the dotted keys `keys` maps
    them to (as `defaults_block` writes them); keys not in `cfg` keep the field's default, a
    wrong type is one line naming the config key."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(dict(cfg))
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        key = keys.get(f.name, f.name)
        value = OmegaConf.select(cfg, key, default=dataclasses.MISSING)
        if value is dataclasses.MISSING:
            continue
        if isinstance(value, DictConfig):
            value = OmegaConf.to_container(value, resolve=True)
        values[f.name] = checked_value(value, hints[f.name], key)
    return cls(**values)


def store_schema(group: str, block: Mapping[str, Any]) -> None:
    """Register `block` in Hydra's ConfigStore as `<group>/schema`: the one place a group's
    defaults are written (they come from its settings dataclass, `defaults_block`). The YAML
    presets of the group select it first in their defaults list and override only what
    differs; Hydra then knows every key, so `group.key=value` works from the command line
    for keys no preset mentions."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group=group, name="schema", node=dict(block))
