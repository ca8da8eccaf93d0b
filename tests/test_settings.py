"""Every settings block is read by one strict rule (`salt.settings.settings_from_block`)."""

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from conftest import REPO

from salt.data.prepared import PaddingSettings
from salt.errors import SaltError
from salt.folds import FoldSettings
from salt.mosaic import AssemblySettings
from salt.prediction.pipeline import inference_settings
from salt.prediction.postprocess import PostprocessSettings
from salt.section.reader import SegySlice

PADDING = {"mode": "biharmonic", "size": 148, "crop_size": 128, "mask_threshold": 0.7}


@pytest.mark.parametrize(
    ("read", "block", "message"),
    [
        (PaddingSettings.from_config, {**PADDING, "sise": 160}, r"data\.padding: unknown key\(s\) sise; expected crop_size, mask_threshold, mode, size"),
        (FoldSettings.from_config, {"kind": "random", "k": 5, "seeds": 1}, r"folds: unknown key\(s\) seeds; expected assembly, k, kind, seed"),
        (AssemblySettings.from_config, {"max_ratioo": 0.9}, r"assembly: unknown key\(s\) max_ratioo; expected .*max_ratio"),
        (PostprocessSettings.from_config, {"rules": {}, "keepp": "all"}, r"postprocess: unknown key\(s\) keepp; expected assembly, keep, measure_folds"),
    ],
)
def test_an_unknown_key_is_one_line_naming_the_block_and_the_keys_allowed(read, block, message):
    for given in (block, OmegaConf.create(block)):
        with pytest.raises(SaltError, match=message):
            read(given)


@pytest.mark.parametrize(
    ("read", "block", "message"),
    [
        (PaddingSettings.from_config, {**PADDING, "size": "big"}, r"data\.padding\.size='big': must be an integer"),
        (FoldSettings.from_config, {"kind": "random", "k": 2.5, "seed": 0}, r"folds\.k=2\.5: must be an integer"),
        (FoldSettings.from_config, {"kind": "random", "k": 5, "seed": True}, r"folds\.seed=True: must be an integer"),
        (AssemblySettings.from_config, {"mutual": "yes"}, r"assembly\.mutual='yes': must be true or false"),
        (AssemblySettings.from_config, {"max_ratio": "high"}, r"assembly\.max_ratio='high': must be a number"),
        (PostprocessSettings.from_config, {"rules": {"fill_holes": "on"}}, r"postprocess\.rules\.fill_holes='on': must be true or false"),
        (PostprocessSettings.from_config, {"params": {"corners": 4}}, r"postprocess\.params\.corners=4: must be a mapping"),
        (PostprocessSettings.from_config, {"mosaics": ["a.csv"]}, r"postprocess\.mosaics=\['a\.csv'\]: must be a string"),
        (SegySlice.from_config, {"inline": "first"}, r"segy\.inline='first': must be an integer"),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line_naming_the_key(read, block, message):
    for given in (block, OmegaConf.create(block)):
        with pytest.raises(SaltError, match=message):
            read(given)


def test_types_are_those_of_the_schema_so_equal_values_make_equal_settings():
    assert AssemblySettings.from_config({"max_ratio": 1}) == AssemblySettings.from_config({"max_ratio": 1.0})
    assert isinstance(AssemblySettings.from_config({"max_ratio": 1}).max_ratio, float)
    assert SegySlice.from_config({"inline": None}) == SegySlice()
    # Hydra's command line reads precision=32 as an int; the setting is text.
    predict = OmegaConf.create({"crop": "center", "batch_size": 8, "num_workers": 0, "device": "cpu", "precision": 32, "tta": {"hflip": False}})
    settings = inference_settings(predict)
    assert settings.precision == "32" and settings.batch_size == 8 and settings.hflip is False
    with pytest.raises(SaltError, match="batch_size='8 tiles': must be an integer"):
        inference_settings(OmegaConf.merge(predict, {"batch_size": "8 tiles"}))


def test_a_missing_padding_key_is_one_line_not_a_key_error():
    with pytest.raises(SaltError, match=r"data\.padding\.crop_size: missing"):
        PaddingSettings.from_config({key: value for key, value in PADDING.items() if key != "crop_size"})
    with pytest.raises(SaltError, match="data.padding: must be a mapping"):
        PaddingSettings.from_config(148)


def test_the_composed_configs_pass():
    from hydra import compose, initialize_config_dir

    from salt import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        train = compose("train", overrides=["folds=mosaic"])
        predict = compose("predict")
    assert PaddingSettings.from_config(train.data.padding).size == 148
    assert FoldSettings.from_config(train.folds).k == 6
    assert AssemblySettings.from_config(train.folds.assembly).max_ratio == pytest.approx(0.87)
    assert PostprocessSettings.from_config(predict.postprocess).keep == "helpful"


def compose_train(*overrides: str):
    from hydra import compose, initialize_config_dir

    from salt import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_the_recipe_stage_1_is_what_the_groups_and_the_experiment_compose():
    cfg = compose_train("experiment=argus_stage1")
    assert cfg.folds.kind == "random" and cfg.folds.k == 5
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.optimizer.lr == 0.01
    assert (cfg.scheduler.patience, cfg.scheduler.factor, cfg.scheduler.min_lr) == (30, 0.64, 1e-8)
    assert (cfg.loss.weights.lovasz, cfg.loss.weights.empty_bce) == (0.75, 0.25)
    assert cfg.callbacks.early_stopping.patience == 100 and cfg.trainer.max_epochs == 700
    assert compose_train().trainer.max_epochs == 100  # the trainer's default, not the recipe's


def leaves(block: dict, prefix: str = ""):
    for key, value in block.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_experiment_files_set_only_what_differs_from_the_groups_they_select():
    import yaml

    from salt import CONF_DIR

    repeats = []
    for path in sorted((CONF_DIR / "experiment").glob("*.yaml")):
        text = yaml.safe_load(path.read_text())
        selections = []
        for entry in text.pop("defaults", []):
            if isinstance(entry, dict):  # {"override /optimizer": "sgd"}
                (group, option), = entry.items()
                name = group.split("/")[-1]
                selections.append(f"~{name}" if option is None else f"{name}={option}")
            elif entry != "_self_":  # another experiment this one extends
                selections.append(f"experiment={entry}")
        base = OmegaConf.to_container(compose_train(*selections), resolve=False)
        for key, value in leaves({k: v for k, v in text.items() if k != "name"}):
            given = base
            for part in key.split("."):
                given = given.get(part, KeyError) if isinstance(given, dict) else KeyError
            if given == value:
                repeats.append(f"{path.name}: {key}={value!r}")
    assert not repeats, "values the selected groups already give:\n" + "\n".join(repeats)


def schema_blocks():
    """(YAML files, the key under which they lie over a schema, the schema's defaults)."""
    from salt import CONF_DIR
    from salt.prediction.inference import INFERENCE_KEYS, InferenceSettings
    from salt.section.inference import SECTION_KEYS, SectionSettings
    from salt.settings import defaults_block

    inference = defaults_block(InferenceSettings, INFERENCE_KEYS)
    return [
        (sorted((CONF_DIR / "assembly").glob("*.yaml")), "", defaults_block(AssemblySettings)),
        ([CONF_DIR / "folds" / "mosaic.yaml"], "assembly", defaults_block(AssemblySettings)),
        (sorted((CONF_DIR / "data").glob("*.yaml")), "padding", defaults_block(PaddingSettings)),
        (sorted((CONF_DIR / "postprocess").glob("*.yaml")), "", defaults_block(PostprocessSettings)),
        ([CONF_DIR / "predict.yaml"], "", inference),
        ([CONF_DIR / "section.yaml"], "", {**inference, **defaults_block(SectionSettings, SECTION_KEYS)}),
        ([CONF_DIR / "section.yaml"], "segy", defaults_block(SegySlice)),
    ]


def test_presets_set_only_what_differs_from_the_defaults_of_their_schema():
    import yaml

    repeats = []
    for paths, prefix, schema in schema_blocks():
        assert paths
        defaults = dict(leaves(schema))
        for path in paths:
            block = yaml.safe_load(path.read_text()) or {}
            for part in filter(None, prefix.split(".")):
                block = block.get(part) or {}
            repeats += [f"{path.name}: {prefix}.{key}={value!r}".replace(" .", " ") for key, value in leaves(block) if key in defaults and defaults[key] == value]
    assert not repeats, "values their schema (the settings dataclass) already gives:\n" + "\n".join(repeats)


@pytest.mark.parametrize(
    "command, keys",
    [
        pytest.param(["train.py", "folds=mosaic"], ["crop_size: 128", "min_support: 0.34"], id="train"),
        pytest.param(["predict.py"], ["channels_last: true", "keep: helpful", "hflip: true"], id="predict"),
        pytest.param(["-m", "salt.section"], ["iline_byte: 189", "band_windows: 256", "mask: 0.5", "precision: '32'"], id="section"),
        pytest.param(["-m", "salt.mosaic"], ["crop_size: 128", "max_ratio: 0.65"], id="mosaic"),
        pytest.param(["-m", "salt.mosaic.render"], ["crop_size: 128", "max_ratio: 0.65"], id="mosaic.render"),
        pytest.param(["-m", "salt.folds"], ["crop_size: 128", "max_ratio: 0.87"], id="folds"),
        pytest.param(["-m", "salt.prepare"], ["mask_threshold: 0.7"], id="prepare"),
    ],
)
def test_each_command_composes_its_schemas_in_a_fresh_interpreter(command, keys):
    """The schemas are registered by the modules of their settings classes; each command must
    import them before Hydra composes (`--cfg job` prints the composed config and exits)."""
    done = subprocess.run([sys.executable, *command, "--cfg", "job"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for key in keys:
        assert key in done.stdout, f"{key!r} not in the config {' '.join(command)} composes"
