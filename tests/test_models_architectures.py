"""Architectures and the registry that builds them from config mappings."""

import re

import pytest
import torch

from genomatt.errors import ConfigError
from genomatt.models import ARCHITECTURES, Basset, BPNet, build_model


def one_hot_batch(n: int, length: int, seed: int = 0) -> torch.Tensor:
    bases = torch.randint(0, 4, (n, length), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.one_hot(bases, 4).permute(0, 2, 1).float()


ARCHITECTURE_CONFIGS = [
    {"architecture": "bpnet", "n_tasks": 3, "input_length": 120},
    {"architecture": "bpnet", "n_tasks": 3, "input_length": 120, "pooling": "max", "n_layers": 0},
    {"architecture": "bpnet", "n_tasks": 3, "input_length": 120, "pooling": "max", "strand_average": True},
    {
        "architecture": "basset",
        "n_tasks": 3,
        "input_length": 120,
        "filters": [8, 8],
        "kernel_sizes": [9, 5],
        "pool_sizes": [4, 4],
        "hidden": [16],
    },
]


@pytest.mark.parametrize("config", ARCHITECTURE_CONFIGS)
def test_every_architecture_maps_one_hot_to_one_output_per_task(config):
    model = build_model(config).eval()
    assert model(one_hot_batch(5, 120)).shape == (5, 3)


def test_config_rebuilds_an_identical_model():
    model = build_model({"architecture": "basset", "n_tasks": 2, "input_length": 96, "hidden": [8]})
    rebuilt = build_model(model.config)
    rebuilt.load_state_dict(model.state_dict())
    X = one_hot_batch(4, 96)
    assert torch.equal(model.eval()(X), rebuilt.eval()(X))
    assert model.config["filters"] == [64, 64, 64]


@pytest.mark.parametrize("architecture", ["bpnet", "basset"])
def test_strand_average_gives_both_strands_the_same_prediction(architecture):
    torch.manual_seed(0)
    config = {"architecture": architecture, "n_tasks": 2, "input_length": 96, "strand_average": True}
    model = build_model(config).eval()
    X = one_hot_batch(4, 96)
    torch.testing.assert_close(model(X), model(X.flip(1, 2)))
    single = build_model({**config, "strand_average": False}).eval()
    single.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(X), (single(X) + single(X.flip(1, 2))) / 2)


def test_strand_averaged_model_scripts():
    torch.manual_seed(0)
    model = build_model({"architecture": "bpnet", "n_tasks": 2, "input_length": 50, "strand_average": True}).eval()
    X = one_hot_batch(3, 50)
    torch.testing.assert_close(torch.jit.script(model)(X), model(X))


def test_registry_names_the_classes():
    assert ARCHITECTURES == {"bpnet": BPNet, "basset": Basset}


def test_bpnet_layers_keep_the_length_and_dilate():
    model = BPNet(n_tasks=1, input_length=100, filters=4, n_layers=3)
    assert [conv.dilation[0] for conv in model.dilated_convs] == [2, 4, 8]
    assert model.first_conv(one_hot_batch(1, 100)).shape[-1] == 100


def test_modules_are_not_shared_between_layers():
    # The DeepLIFT engine tells layers apart by module; a reused ReLU would merge them.
    model = BPNet(n_tasks=1, input_length=50, filters=4, n_layers=3)
    relus = [module for module in model.modules() if isinstance(module, torch.nn.ReLU)]
    assert len({id(relu) for relu in relus}) == 4


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"architecture": "resnet", "n_tasks": 1, "input_length": 10}, "unknown architecture 'resnet'"),
        ({"n_tasks": 1, "input_length": 10}, "missing 'architecture'"),
        ({"architecture": "bpnet", "input_length": 10}, "needs ['n_tasks']"),
        ({"architecture": "bpnet", "n_tasks": 1, "input_length": 10, "dropout": 0.1}, "no parameters ['dropout']"),
        ({"architecture": "bpnet", "n_tasks": 1, "input_length": 10, "first_kernel_size": 20}, "must be odd"),
        ({"architecture": "bpnet", "n_tasks": 0, "input_length": 10}, "n_tasks must be a positive integer"),
        ({"architecture": "bpnet", "n_tasks": 1, "input_length": 10, "pooling": "sum"}, "pooling must be one of"),
        ({"architecture": "bpnet", "n_tasks": 1, "input_length": 10, "strand_average": "yes"}, "true or false"),
        ({"architecture": "basset", "n_tasks": 1, "input_length": 40}, "too short"),
        (
            {"architecture": "basset", "n_tasks": 1, "input_length": 400, "filters": [8]},
            "one entry per convolution block",
        ),
    ],
)
def test_invalid_configs_say_what_is_wrong(config, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_model(config, source="arch.yaml")


@pytest.mark.parametrize("config", ARCHITECTURE_CONFIGS)
def test_deeplift_explains_every_architecture_exactly(config):
    from genomatt.attribution.deeplift import deep_lift_shap

    torch.manual_seed(0)
    model = build_model(config).eval()
    result = deep_lift_shap(model, one_hot_batch(4, 120), target=[0, 2], n_shuffles=4, strict=True, return_delta=True)
    assert result[0].shape == (4, 2, 4, 120)
    assert float(result[1].abs().max()) < 1e-4
