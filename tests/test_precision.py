from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from salt import precision
from salt.errors import SaltError
from salt.prediction.inference import InferenceSettings
from salt.training.run import train


def cpu_flags() -> set[str]:
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    for line in path.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    pytest.skip("/proc/cpuinfo lists no flags")


def test_cpu_bf16_is_native_exactly_where_the_cpu_flags_say_amx_or_avx512_bf16():
    flags = cpu_flags()
    assert precision.native_bf16("cpu") == bool({"amx_tile", "avx512_bf16"} & flags)


@pytest.mark.parametrize("native, trainer, inference", [(True, "bf16-mixed", "bf16"), (False, "32-true", "32")])
def test_auto_resolves_by_the_device_and_explicit_values_stay(monkeypatch, native, trainer, inference):
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    assert precision.trainer_precision("auto", "cpu") == trainer
    assert precision.inference_precision("auto", torch.device("cpu")) == inference
    assert InferenceSettings(precision="auto", device="cpu").bf16 is native
    for value in ("32-true", "bf16-mixed", "16-mixed"):
        assert precision.trainer_precision(value, "cpu") == value
    assert InferenceSettings(precision="bf16", device="cpu").bf16 and not InferenceSettings(precision="32", device="cpu").bf16


def test_unknown_inference_precision_is_one_line():
    with pytest.raises(SaltError, match="precision='16': must be one of 32, bf16, auto"):
        InferenceSettings(precision="16")


@pytest.mark.parametrize("native, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_the_cpu_recipe_trains_with_what_auto_chose_and_records_it(compose_train, tmp_path, monkeypatch, native, expected):
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    cfg = compose_train("experiment=cpu", "debug=fast_dev_run")
    assert cfg.trainer.precision == "auto"
    seen = []
    monkeypatch.setattr("pytorch_lightning.Trainer.fit", lambda trainer, *args, **kwargs: seen.append(trainer.precision))
    train(cfg)
    assert seen == [expected]
    assert cfg.trainer.precision == expected  # what the run's config.yaml records
