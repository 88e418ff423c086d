"""ResNet shapes and sizes, the monotone horizon layer, and model folders."""
from __future__ import annotations

import pytest
import torch

from scdecg.constants import SCD_HORIZONS
from scdecg.errors import PipelineError
from scdecg.models import (Architecture, CumulativeHorizons, build_model, count_parameters,
                           final_length, load_trained, save_trained)

SCD_OUTPUTS = ["scd3mo", "scd6mo", "scd1", "scd2", "dead3mo", "dead6mo", "dead1", "dead2",
               "ICD_VT1", "ICD_VF1", "Phi_VT1", "TROPT1", "Acute_MI1", "scd3mo_6mo",
               "scd6mo_1", "scd1_2"]


def test_paper_10s_configuration_size():
    model = build_model(Architecture(outputs=SCD_OUTPUTS, length=5000, channels=128,
                                     n_blocks=32, rep_mp=4, dropout=0.4,
                                     covariates=["age", "female"]))
    assert model.backbone.final_length == 9
    assert model.backbone.n_features == 1152
    assert 17.4e6 < count_parameters(model) < 17.6e6


def test_paper_beat_configuration_ends_at_length_one():
    arch = Architecture(outputs=SCD_OUTPUTS[:4], length=300, channels=64, n_blocks=32,
                        rep_mp=5, dropout=0.5)
    assert arch.to_dict()["channels"] == 64  # explicit, not a hidden default
    model = build_model(arch).eval()
    assert model.backbone.final_length == 1
    assert final_length(300, 32, 5) == 1
    assert model(torch.randn(3, 12, 300)).shape == (3, 4)


def test_backbone_length_matches_forward_pass():
    for length, blocks, rep in [(5000, 6, 2), (301, 4, 1), (1000, 3, 3)]:
        model = build_model(Architecture(outputs=["a"], length=length, channels=4,
                                         n_blocks=blocks, rep_mp=rep, dropout=0.0)).eval()
        features = model.backbone(torch.randn(2, 12, length))
        assert features.shape == (2, 4 * final_length(length, blocks, rep))


def test_channel_major_flatten():
    model = build_model(Architecture(outputs=["a"], length=200, channels=3, n_blocks=2,
                                     rep_mp=1, dropout=0.0)).eval()
    x = torch.randn(1, 12, 200)
    bb = model.backbone
    y = bb.out_bn(bb.blocks(bb.block1(bb.block0(x)))).relu()
    assert torch.equal(bb(x)[0, :y.shape[-1]], y[0, 0])  # channel 0 first, all its samples


@pytest.mark.parametrize("seed", range(5))
def test_cumulative_layer_is_monotone_for_random_weights(seed):
    torch.manual_seed(seed)
    layer = CumulativeHorizons()
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=3.0)
    out = layer(torch.randn(1000, 4) * 5)
    assert (out.diff(dim=1) >= 0).all()
    assert out.diff(dim=1).max() > 0  # not trivially constant


def test_softplus_hazards_keep_horizons_apart_where_relu_ones_die():
    """A hazard layer pushed negative: ReLU makes every horizon the base value (the defect the
    demo's 10-s model showed: four identical SCD horizons); softplus keeps them strictly apart."""
    u = torch.randn(200, 4)
    out = {}
    for hazard in ("relu", "softplus"):
        layer = CumulativeHorizons(hazard=hazard)
        with torch.no_grad():
            layer.hazard.weight.zero_()
            layer.hazard.bias.fill_(-3.0)
        out[hazard] = layer(u)
    assert torch.equal(out["relu"][:, 0], out["relu"][:, 3])
    steps = out["softplus"].diff(dim=1)
    assert torch.allclose(steps, torch.full_like(steps, float(torch.nn.functional.softplus(
        torch.tensor(-3.0)))))


def test_unknown_hazard_is_refused_and_old_configs_load_the_published_relu():
    with pytest.raises(PipelineError, match="hazard"):
        build_model(Architecture(outputs=list(SCD_HORIZONS), length=100, channels=2,
                                 n_blocks=1, rep_mp=1, hazard="tanh"))
    assert Architecture(outputs=["scd1"]).hazard == "softplus"
    assert Architecture.from_dict({"outputs": ["scd1"]}).hazard == "relu"
    assert Architecture.from_dict({"outputs": ["scd1"], "hazard": "softplus"}).hazard == "softplus"


def test_model_horizon_outputs_never_decrease():
    torch.manual_seed(0)
    outputs = ["dead1", "scd2", "scd1", "age", "scd3mo", "scd6mo"]  # horizons out of order
    model = build_model(Architecture(outputs=outputs, length=100, channels=4, n_blocks=2,
                                     rep_mp=1, dropout=0.0, covariates=["age", "female"]))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=1.0)
    logits = model.eval()(torch.randn(64, 12, 100), torch.randn(64, 2))
    horizon = logits[:, [outputs.index(h) for h in SCD_HORIZONS]]
    assert (horizon.diff(dim=1) >= -1e-6).all()


def test_covariates_change_the_prediction():
    torch.manual_seed(0)
    model = build_model(Architecture(outputs=["scd1"], length=100, channels=4, n_blocks=1,
                                     rep_mp=1, covariates=["age", "female"])).eval()
    x = torch.randn(2, 12, 100)
    assert not torch.allclose(model(x, torch.zeros(2, 2)), model(x, torch.ones(2, 2)))
    with pytest.raises(ValueError, match="covariates"):
        model(x)


def test_save_and_load_trained_round_trip(tmp_path):
    torch.manual_seed(1)
    model = build_model(Architecture(outputs=["scd1", "age"], length=300, channels=8,
                                     n_blocks=2, rep_mp=1, dropout=0.5)).eval()
    save_trained(tmp_path, model, {"output_types": ["classification", "regression"]})
    loaded, config = load_trained(tmp_path, "cpu")
    assert config["outputs"] == ["scd1", "age"]
    assert not loaded.training
    x = torch.randn(4, 12, 300)
    assert torch.equal(model(x), loaded(x))
    raw = torch.load(tmp_path / "best.pt", weights_only=True)
    assert "model" in raw


def test_weights_from_another_configuration_are_refused(tmp_path):
    small = build_model(Architecture(outputs=["scd1"], length=300, channels=8, n_blocks=2))
    save_trained(tmp_path, small, {})
    config_path = tmp_path / "config.json"
    big = build_model(Architecture(outputs=["scd1"], length=300, channels=16, n_blocks=2))
    save_trained(tmp_path / "other", big, {})
    (tmp_path / "best.pt").replace(tmp_path / "small.pt")
    (tmp_path / "other" / "best.pt").replace(tmp_path / "best.pt")
    with pytest.raises(PipelineError, match="another configuration.*channels"):
        load_trained(tmp_path)
    # same architecture entry but tensors of another shape
    import json
    cfg = json.loads(config_path.read_text())
    cfg["architecture"]["channels"] = 16
    (tmp_path / "other" / "config.json").write_text(json.dumps(cfg))
    from scdecg.models import load_state_checked
    with pytest.raises(PipelineError, match="shape: backbone.block0.0.weight"):
        load_state_checked(small, big.state_dict(), "x.pt")


def test_unknown_architecture_key_is_named():
    with pytest.raises(PipelineError, match="width"):
        build_model({"outputs": ["a"], "width": 3})


@pytest.mark.parametrize("length,rep_mp", [(1000, 2), (301, 1)])
def test_fused_inference_model_matches_eval_model(length, rep_mp):
    from scdecg.models.inference import fuse_for_inference

    torch.manual_seed(0)
    model = build_model(Architecture(outputs=list(SCD_HORIZONS) + ["age"], length=length,
                                     channels=8, n_blocks=5, rep_mp=rep_mp,
                                     covariates=["age", "female"]))
    for module in model.modules():  # non-trivial running statistics and affine parameters
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
            torch.nn.init.normal_(module.weight)
            torch.nn.init.normal_(module.bias)
    model.eval()
    fused = fuse_for_inference(model)
    x, cov = torch.randn(4, 12, length), torch.randn(4, 2)
    with torch.no_grad():
        expected = model(x, cov)
        torch.testing.assert_close(fused(x, cov), expected, rtol=1e-4, atol=1e-5)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm1d) for m in fused.modules())
    assert n_bn == 5 + 1  # one per repeated block (after the residual sum) + the output BN


def test_too_short_input_is_a_clear_error():
    with pytest.raises(PipelineError, match="too short for 12 blocks"):
        build_model(Architecture(outputs=["a"], length=5000, channels=4, n_blocks=12, rep_mp=1))


# ------------------------------------------------ edge cases found by mutation testing
@pytest.mark.parametrize("hazard", ["relu", "softplus"])
def test_cumulative_layer_is_the_sum_of_hazards_plus_the_base(hazard):
    layer = CumulativeHorizons(hazard=hazard)
    with torch.no_grad():
        layer.hazard.weight.copy_(torch.eye(4))
        layer.hazard.bias.zero_()
        layer.base.weight.zero_()
        layer.base.bias.fill_(-2.0)
    u = torch.tensor([[1.0, -3.0, 0.5, 2.0]])
    out = layer(u)
    if hazard == "relu":
        # hazards relu(u) = 1, 0, 0.5, 2 -> cumulative 1, 1, 1.5, 3.5; plus the base -2
        assert out.tolist() == [[-1.0, -1.0, -0.5, 1.5]]
    else:
        expected = torch.log1p(torch.exp(u)).cumsum(1) - 2.0
        assert torch.allclose(out, expected, atol=1e-6)


def test_outputs_must_be_unique_and_non_empty():
    for outputs in (["scd1", "scd1"], []):
        with pytest.raises(PipelineError, match=r"^architecture: outputs must be non-empty and "
                                                r"unique, got \["):
            build_model(Architecture(outputs=outputs, length=100, channels=4, n_blocks=1, rep_mp=1))


def test_architecture_dropout_reaches_every_dropout_layer():
    model = build_model(Architecture(outputs=["scd1"], length=100, channels=4, n_blocks=2,
                                     rep_mp=1, dropout=0.123))
    rates = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout1d)}
    assert rates == {0.123}


def test_covariate_head_is_linear_relu_linear_and_accepts_float64_covariates():
    torch.manual_seed(0)
    model = build_model(Architecture(outputs=["scd1", "age"], length=100, channels=4, n_blocks=1,
                                     rep_mp=1, dropout=0.0, covariates=["age", "female"],
                                     hidden=3)).eval()
    n_feat = model.backbone.n_features
    with torch.no_grad():
        for p in model.head.parameters():
            p.zero_()
        model.head[0].weight[0, n_feat] = 1.0         # hidden unit 0 = age covariate
        model.head[2].weight[:, 0] = 1.0
    x = torch.zeros(3, 12, 100)
    cov = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.5, 1.0]], dtype=torch.float64)
    out = model(x, cov)
    assert out.dtype == torch.float32 and out.shape == (3, 2)
    assert out[:, 0].tolist() == [2.0, 0.0, 0.5]       # the ReLU clips the negative age


def test_horizon_index_is_not_part_of_the_saved_weights():
    model = build_model(Architecture(outputs=list(SCD_HORIZONS), length=100, channels=4,
                                     n_blocks=1, rep_mp=1))
    assert model.cumulative is not None
    assert "horizon_index" not in model.state_dict()
