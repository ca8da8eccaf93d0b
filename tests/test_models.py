"""Segmentation networks: every decoder × upsampling × hypercolumn × empty head on timm's
tiny ``test_resnet``, then the encoder, the named encoder configs, Hydra composition and
the summary command."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest
import timm
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

from salt.errors import ModelConfigError
from salt.geometry import TILE_SIZE
from salt.models import Encoder, Linknet, SegmentationNetwork, SegmentationOutput, Unet, check_input_size
from salt.models.decoder import plan_stages
from salt.models.summary import main as summary_main
from salt.models.summary import count_parameters, summarize

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
TINY = "test_resnet"  # timm's registered 0.4 M-parameter ResNet, 5 levels like the real ones
SIDE = 64  # smallest side worth testing: the dropped-max-pool bottleneck is still 4×4

# Narrow decoders keep a forward + backward on CPU in tens of milliseconds.
NARROW = {
    Unet: {"decoder_channels": [32, 16, 16, 8, 8], "hypercolumn_channels": 4, "empty_head_hidden": 8},
    Linknet: {"final_channels": 8, "hypercolumn_channels": 4, "empty_head_hidden": 8},
}

# conf/encoder/<config name>.yaml → the timm model it builds.
NAMED_ENCODERS = {
    "resnet18": "resnet18",
    "resnet18_half": "resnet18",  # at half width, through encoder.model_kwargs
    "resnet34": "resnet34",
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnet152": "resnet152",
    "se_resnext50": "seresnext50_32x4d",
    "se_resnext101": "seresnext101_32x4d",
    "tiny": "test_resnet",  # for smoke tests and CPU demos
}
HEAVY_ENCODERS = {"resnet152", "se_resnext101"}  # the deepest: seconds to build on a busy CPU


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: the test networks are small, and on a busy machine a second
    OpenMP thread spins waiting for a core (the module ran twice as fast without it).
    The previous setting is restored after the module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def compose_config(overrides: list[str]):
    """``conf/summary.yaml``: the same ``encoder`` and ``model`` defaults as training
    (resnet34, unet) with ``encoder.pretrained=false``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="summary", overrides=overrides)


def bce_loss(output: SegmentationOutput, seed: int = 0) -> torch.Tensor:
    """A training-like loss against random targets (a plain mean of logits would give
    batch-normed layers zero gradient)."""
    generator = torch.Generator().manual_seed(seed)
    mask_target = torch.rand(output.mask_logits.shape, generator=generator).round()
    loss = F.binary_cross_entropy_with_logits(output.mask_logits, mask_target)
    if output.empty_logit is not None:
        empty_target = torch.rand(output.empty_logit.shape, generator=generator).round()
        loss = loss + F.binary_cross_entropy_with_logits(output.empty_logit, empty_target)
    return loss


# --- one tester for every architecture ---------------------------------------------------


class NetworkTester:
    """Checks every architecture must pass; subclasses name the architecture and the
    upsampling mode."""

    architecture: type[SegmentationNetwork]
    upsampling: str

    def build(self, *, in_chans: int = 3, drop_first_maxpool: bool = True, **options) -> SegmentationNetwork:
        encoder = Encoder(TINY, pretrained=False, in_chans=in_chans, drop_first_maxpool=drop_first_maxpool)
        options = {**NARROW[self.architecture], "upsampling": self.upsampling, **options}
        return self.architecture(encoder, **options)

    @pytest.mark.parametrize("hypercolumn", [True, False], ids=["hypercolumn", "no-hypercolumn"])
    @pytest.mark.parametrize("empty_head", [True, False], ids=["head", "no-head"])
    def test_forward_backward(self, hypercolumn: bool, empty_head: bool) -> None:
        torch.manual_seed(0)
        model = self.build(hypercolumn=hypercolumn, empty_head=empty_head, block_dropout=0.2, skip_dropout=0.1)
        output = model(torch.randn(2, 3, SIDE, SIDE))

        assert isinstance(output, SegmentationOutput)
        assert output.mask_logits.shape == (2, 1, SIDE, SIDE)
        if empty_head:
            assert output.empty_logit is not None and output.empty_logit.shape == (2,)
        else:
            assert output.empty_logit is None and model.empty_head is None
        assert (model.hypercolumn is not None) == hypercolumn

        bce_loss(output).backward()
        gradients = {name: parameter.grad for name, parameter in model.named_parameters()}
        assert [name for name, gradient in gradients.items() if gradient is None] == []
        # timm zero-initialises the last batch norm of each residual branch, so some
        # encoder weights start with an exactly zero gradient; the rest of the network must not.
        assert [name for name, gradient in gradients.items() if not name.startswith("encoder.") and not gradient.any()] == []
        stem_weight = next(name for name in gradients if name.startswith("encoder."))  # first conv of the stem
        assert gradients[stem_weight].any()
        assert any(gradient.any() for name, gradient in gradients.items() if name.startswith("encoder.model.layer4."))

    @pytest.mark.parametrize("height,width", [(128, 128), (160, 160), (256, 256), (128, 160)])
    def test_sizes_that_are_multiples_of_32(self, height: int, width: int) -> None:
        model = self.build().eval()
        with torch.no_grad():
            output = model(torch.randn(1, 3, height, width))
        assert output.mask_logits.shape == (1, 1, height, width)
        assert output.empty_logit.shape == (1,)

    @pytest.mark.parametrize("height,width", [(TILE_SIZE, TILE_SIZE), (100, 100), (127, 128), (128, 144)])
    def test_odd_sizes_are_refused(self, height: int, width: int) -> None:
        model = self.build()
        with pytest.raises(ModelConfigError, match=r"multiples of 32 \(128 by default; 160 and 256"):
            model(torch.randn(2, 3, height, width))

    def test_save_and_reload_give_identical_outputs(self, tmp_path: Path) -> None:
        torch.manual_seed(0)
        model = self.build()
        bce_loss(model(torch.randn(4, 3, SIDE, SIDE))).backward()  # moves the batch-norm statistics too
        model.eval()
        image = torch.randn(2, 3, SIDE, SIDE)
        with torch.no_grad():
            expected = model(image)
        torch.save(model.state_dict(), tmp_path / "network.pt")

        torch.manual_seed(1)
        reloaded = self.build().eval()
        with torch.no_grad():
            assert not torch.equal(reloaded(image).mask_logits, expected.mask_logits)
            reloaded.load_state_dict(torch.load(tmp_path / "network.pt", weights_only=True))
            again = reloaded(image)
        assert torch.equal(again.mask_logits, expected.mask_logits)
        assert torch.equal(again.empty_logit, expected.empty_logit)

    def test_one_channel_input(self) -> None:
        model = self.build(in_chans=1)
        assert model(torch.randn(2, 1, SIDE, SIDE)).mask_logits.shape == (2, 1, SIDE, SIDE)
        with pytest.raises(ModelConfigError, match="in_chans=1"):
            model(torch.randn(2, 3, SIDE, SIDE))

    def test_keeping_the_max_pool(self) -> None:
        model = self.build(drop_first_maxpool=False)
        output = model(torch.randn(2, 3, SIDE, SIDE))
        assert output.mask_logits.shape == (2, 1, SIDE, SIDE)


class TestUnetTransposed(NetworkTester):
    architecture, upsampling = Unet, "transposed"


class TestUnetBilinear(NetworkTester):
    architecture, upsampling = Unet, "bilinear"


class TestLinknetTransposed(NetworkTester):
    architecture, upsampling = Linknet, "transposed"


class TestLinknetBilinear(NetworkTester):
    architecture, upsampling = Linknet, "bilinear"


# --- the encoder -------------------------------------------------------------------------


def test_encoder_channels_come_from_timm_feature_info() -> None:
    encoder = Encoder(TINY, pretrained=False, drop_first_maxpool=False)
    reference = timm.create_model(TINY, features_only=True, pretrained=False).feature_info
    assert encoder.channels == tuple(reference.channels())
    assert encoder.reductions == tuple(reference.reduction())
    features = encoder(torch.randn(2, 3, 128, 128))
    assert [feature.shape[1] for feature in features] == list(encoder.channels)
    assert [128 // feature.shape[-1] for feature in features] == list(encoder.reductions)


def test_dropping_the_max_pool_doubles_the_deep_resolution() -> None:
    kept = Encoder(TINY, pretrained=False, drop_first_maxpool=False)
    dropped = Encoder(TINY, pretrained=False, drop_first_maxpool=True)
    assert kept.reductions == (2, 4, 8, 16, 32)
    assert dropped.reductions == (2, 2, 4, 8, 16)
    assert not any(isinstance(module, nn.MaxPool2d) for module in dropped.modules())

    image = torch.randn(2, 3, 128, 128)
    kept_maps, dropped_maps = kept(image), dropped(image)
    assert kept_maps[0].shape == dropped_maps[0].shape  # the stem, before the pool
    for kept_map, dropped_map in zip(kept_maps[1:], dropped_maps[1:]):
        assert dropped_map.shape[-2:] == (2 * kept_map.shape[-2], 2 * kept_map.shape[-1])


def test_decoder_plan_follows_the_measured_strides() -> None:
    assert [stage.scale for stage in plan_stages([8] * 5, (2, 4, 8, 16, 32))] == [2, 2, 2, 2, 2]
    # Max-pool dropped: layer1 and the stem share stride 2, so one stage does not upsample.
    assert [stage.scale for stage in plan_stages([8] * 5, (2, 2, 4, 8, 16))] == [2, 2, 2, 1, 2]
    model = Unet(Encoder(TINY, pretrained=False), **NARROW[Unet])
    assert model.decoder.stage_reductions == (8, 4, 2, 2, 1)


def test_another_timm_backbone_passes_through() -> None:
    # test_convnext: 4 levels, first at stride 4, no max-pool; the 5-entry lists are cut to 4.
    encoder = Encoder("test_convnext", pretrained=False, drop_first_maxpool=False)
    assert encoder.reductions == (4, 8, 16, 32)
    model = Unet(encoder, **NARROW[Unet])
    output = model(torch.randn(2, 3, SIDE, SIDE))
    assert output.mask_logits.shape == (2, 1, SIDE, SIDE)
    assert model.decoder.stage_channels == (32, 16, 16, 8)


def test_dropping_a_missing_max_pool_is_refused() -> None:
    with pytest.raises(ModelConfigError, match="test_convnext has no stem max-pool.*drop_first_maxpool=false"):
        Encoder("test_convnext", pretrained=False, drop_first_maxpool=True)


def test_unknown_encoder_is_refused_with_suggestions() -> None:
    with pytest.raises(ModelConfigError, match="'resnet343' is not a timm model; did you mean resnet34"):
        Encoder("resnet343", pretrained=False)


def test_model_kwargs_reach_the_timm_constructor() -> None:
    widths = {"channels": (32, 64, 128, 256)}
    encoder = Encoder("resnet18", pretrained=False, drop_first_maxpool=False, model_kwargs=widths)
    reference = timm.create_model("resnet18", features_only=True, pretrained=False, **widths)
    assert encoder.channels == tuple(reference.feature_info.channels()) == (64, 32, 64, 128, 256)
    assert encoder.reductions == (2, 4, 8, 16, 32)
    assert [feature.shape[1] for feature in encoder(torch.randn(1, 3, SIDE, SIDE))] == list(encoder.channels)
    parameters = sum(parameter.numel() for parameter in encoder.parameters())
    assert parameters == sum(parameter.numel() for parameter in reference.parameters())
    full = Encoder("resnet18", pretrained=False, drop_first_maxpool=False)
    # Half the width of every stage: about a quarter of the weights.
    assert parameters < 0.3 * sum(parameter.numel() for parameter in full.parameters())


def test_unknown_model_kwargs_are_refused_in_one_line() -> None:
    with pytest.raises(ModelConfigError, match=r"encoder.model_kwargs=\{'chanels': \(32, 64\)\}: encoder resnet18 refuses them.*unexpected keyword argument 'chanels'") as error:
        Encoder("resnet18", pretrained=False, model_kwargs={"chanels": [32, 64]})
    assert "\n" not in str(error.value)


def test_pretrained_weights_without_a_hub_fail_in_one_line(monkeypatch, tmp_path: Path) -> None:
    # What a machine without network sees, without waiting for the hub client's retries.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelConfigError) as caught:
        Encoder(TINY, pretrained=True)
    message = str(caught.value)
    assert "\n" not in message
    assert f"encoder {TINY}: pretrained weights could not be loaded" in message
    assert "encoder.pretrained=false" in message


@pytest.mark.parametrize(
    "options, wrong",
    [
        ({"decoder_channels": [16, 8]}, "model.decoder_channels"),
        ({"decoder_channels": [16, 8, 8, 0, 8]}, "model.decoder_channels"),
        ({"hypercolumn_channels": [4, 4]}, "model.hypercolumn_channels"),
        ({"upsampling": "nearest"}, "model.upsampling='nearest': must be one of transposed, bilinear"),
        ({"block_dropout": 1.5}, "model.block_dropout"),
        ({"skip_dropout": -0.1}, "model.skip_dropout"),
        ({"empty_head_hidden": 0}, "model.empty_head_hidden"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict, wrong: str) -> None:
    with pytest.raises(ModelConfigError, match=wrong.replace("[", r"\[")):
        Unet(Encoder(TINY, pretrained=False), **{**NARROW[Unet], **options})


def test_input_size_error_suggests_the_padded_size() -> None:
    with pytest.raises(ModelConfigError, match=f"input {TILE_SIZE}×{TILE_SIZE}.*pad or crop to 128"):
        check_input_size(TILE_SIZE, TILE_SIZE)
    check_input_size(128, 256)


# --- Hydra composition -------------------------------------------------------------------


def test_every_encoder_config_is_tested() -> None:
    assert {path.stem for path in (CONF_DIR / "encoder").glob("*.yaml")} == set(NAMED_ENCODERS)


def test_encoder_group_keeps_the_recipe_defaults() -> None:
    # Composed as training composes it: the encoder group at the top level, the model
    # taking it by interpolation.
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=None, overrides=["+encoder=se_resnext50", "+model=linknet"])
    assert cfg.encoder.name == "seresnext50_32x4d"
    assert cfg.encoder.pretrained is True
    assert cfg.encoder.drop_first_maxpool is True
    assert cfg.model._target_ == "salt.models.Linknet"
    assert cfg.model.encoder.name == "seresnext50_32x4d"


def test_the_users_command_line_composes() -> None:
    cfg = compose_config(["encoder=se_resnext50", "model=linknet"])
    assert cfg.model._target_ == "salt.models.Linknet"
    assert cfg.model.encoder._target_ == "salt.models.Encoder"
    assert cfg.model.encoder.name == "seresnext50_32x4d"
    assert cfg.model.encoder.pretrained is False


@pytest.mark.parametrize("model", ["unet", "linknet"])
@pytest.mark.parametrize("upsampling", ["transposed", "bilinear"])
def test_instantiate_builds_the_network(model: str, upsampling: str) -> None:
    cfg = compose_config([f"model={model}", f"model.upsampling={upsampling}", f"encoder.name={TINY}"])
    network = instantiate(cfg.model)
    assert type(network) is {"unet": Unet, "linknet": Linknet}[model]
    assert network.encoder.name == TINY
    assert network.encoder.reductions == (2, 2, 4, 8, 16)
    with torch.no_grad():
        output = network.eval()(torch.randn(1, 3, SIDE, SIDE))
    assert output.mask_logits.shape == (1, 1, SIDE, SIDE)
    assert output.empty_logit.shape == (1,)


def test_switches_reach_the_network_through_overrides() -> None:
    cfg = compose_config(
        [f"encoder.name={TINY}", "encoder.in_chans=1", "model.hypercolumn=false", "model.empty_head=false"]
    )
    network = instantiate(cfg.model)
    assert network.hypercolumn is None and network.empty_head is None
    output = network(torch.randn(2, 1, SIDE, SIDE))
    assert output.empty_logit is None


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY_ENCODERS else name for name in NAMED_ENCODERS],
)
def test_named_encoder_builds_and_runs(name: str) -> None:
    network = instantiate(compose_config([f"encoder={name}"]).model).eval()
    assert network.encoder.name == NAMED_ENCODERS[name]
    assert network.encoder.reductions == (2, 2, 4, 8, 16)
    with torch.no_grad():
        output = network(torch.zeros(1, 3, 128, 128))
    assert output.mask_logits.shape == (1, 1, 128, 128)
    assert output.empty_logit.shape == (1,)


def test_any_timm_name_through_the_encoder_group() -> None:
    network = instantiate(compose_config(["encoder.name=resnet26d"]).model).eval()
    assert network.encoder.name == "resnet26d"
    assert network.encoder.channels == (64, 256, 512, 1024, 2048)  # from timm, not from the config
    assert network.encoder.reductions == (2, 2, 4, 8, 16)
    with torch.no_grad():
        assert network(torch.zeros(1, 3, 128, 128)).mask_logits.shape == (1, 1, 128, 128)


# --- the summary ---------------------------------------------------------------------------


def test_summary_reports_parameters_and_shapes() -> None:
    model = Unet(Encoder(TINY, pretrained=False), **NARROW[Unet], empty_head=False)
    text = summarize(model, sizes=[64, 128], batch_size=2)
    assert f"parameters: {count_parameters(model):,}" in text
    assert "empty head off" in text
    assert "mask_logits [2, 1, 64, 64], empty_logit None" in text
    assert "mask_logits [2, 1, 128, 128], empty_logit None" in text
    assert model.training  # restored after the eval-mode passes


def test_summary_command(capsys) -> None:
    summary_main([f"encoder.name={TINY}", "model=linknet", "sizes=[64]"])
    printed = capsys.readouterr().out
    assert printed.startswith(f"Linknet on {TINY}")
    assert "mask_logits [2, 1, 64, 64], empty_logit [2]" in printed


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["encoder.name=resnet343"], "error: encoder.name='resnet343' is not a timm model"),
        (["encoder=resnet343"], "error: In 'summary': Could not find 'encoder/resnet343' Available options"),
        (["encoder=resnet18_half", "+encoder.model_kwargs.chanels=[8]"], "error: encoder.model_kwargs={'channels': (32, 64, 128, 256), 'chanels': (8,)}: encoder resnet18 refuses them"),
    ],
)
def test_summary_command_errors_are_one_line(overrides: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as caught:
        summary_main(overrides)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
