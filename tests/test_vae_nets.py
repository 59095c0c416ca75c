"""The seed's conv nets (parameter counts of the report, shapes) and the MLP nets."""
import pytest
import torch
from torch import nn

from vae.nets import ConvDecoder64, ConvEncoder64, MLPDecoder, MLPEncoder, count_parameters

# the Keras summary of the seed report (BatchNorm layers listed separately)
ENCODER_COUNTS = [320, 18_496, 73_856, 2_097_408, 4_112, 4_112]
DECODER_COUNTS = [139_264, 147_584, 73_792, 18_464, 288]
BN_ENCODER = [128, 256, 512, 1_024]  # Keras counts gamma, beta, moving mean, moving variance
BN_DECODER = [512, 256, 128]


def _weight_layer_counts(module: nn.Module) -> list[int]:
    return [count_parameters(m) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def _bn_keras_counts(module: nn.Module) -> list[int]:
    return [4 * m.num_features for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_seed_encoder_parameter_counts_match_report():
    enc = ConvEncoder64(latent_dim=16)
    assert _weight_layer_counts(enc) == ENCODER_COUNTS
    assert _bn_keras_counts(enc) == BN_ENCODER
    # trainable total: weight layers + BN gamma/beta (half of Keras' BN count)
    assert count_parameters(enc) == sum(ENCODER_COUNTS) + sum(BN_ENCODER) // 2


def test_seed_decoder_parameter_counts_match_report():
    dec = ConvDecoder64(latent_dim=16)
    assert _weight_layer_counts(dec) == DECODER_COUNTS
    assert _bn_keras_counts(dec) == BN_DECODER
    last = [m for m in dec.modules() if isinstance(m, nn.ConvTranspose2d)][-1]
    assert last.bias is None and last.stride == (1, 1) and last.out_channels == 1


def test_seed_nets_shapes_and_feature_map_sizes():
    enc, dec = ConvEncoder64(16).eval(), ConvDecoder64(16).eval()
    x = torch.rand(3, 1, 64, 64)
    sizes = []
    h = x
    for block in enc.convs:
        h = block(h)
        sizes.append(tuple(h.shape[1:]))
    assert sizes == [(32, 32, 32), (64, 16, 16), (128, 8, 8)]
    loc, scale = enc(x)
    assert loc.shape == scale.shape == (3, 16) and bool((scale > 0).all())
    h = dec.dense(loc).view(-1, 128, 8, 8)
    up = []
    for block in dec.deconvs:
        h = block(h)
        up.append(tuple(h.shape[1:]))
    assert up == [(128, 16, 16), (64, 32, 32), (32, 64, 64), (1, 64, 64)]
    assert dec(loc).shape == (3, 1, 64, 64)


def test_scale_is_exp_half_log_var():
    enc = MLPEncoder(latent_dim=3, input_shape=(1, 2, 2), hidden_sizes=(5,))
    x = torch.rand(4, 1, 2, 2)
    h = enc.body(x.flatten(1))
    _, scale = enc(x)
    torch.testing.assert_close(scale, torch.exp(0.5 * enc.heads.z_log_var(h)))


def test_seed_nets_options_dropout_and_batchnorm():
    enc = ConvEncoder64(8, dropout=0.0, batchnorm=False)
    dec = ConvDecoder64(8, batchnorm=False)
    kinds = {type(m) for m in list(enc.modules()) + list(dec.modules())}
    assert nn.Dropout not in kinds and nn.BatchNorm2d not in kinds and nn.BatchNorm1d not in kinds
    assert _weight_layer_counts(enc)[:4] == ENCODER_COUNTS[:4]
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.5 for m in ConvEncoder64(8, dropout=0.5).modules()) == 4
    # eval mode is deterministic with dropout, train mode is not
    enc = ConvEncoder64(8, dropout=0.5).eval()
    x = torch.rand(2, 1, 64, 64)
    torch.testing.assert_close(enc(x)[0], enc(x)[0])


def test_seed_nets_reject_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(B, 1, 64, 64\)"):
        ConvEncoder64()(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="z of shape"):
        ConvDecoder64(16)(torch.rand(2, 8))
    with pytest.raises(ValueError, match="dropout"):
        ConvEncoder64(dropout=1.0)
    with pytest.raises(ValueError, match="3 filter sizes"):
        ConvEncoder64(filters=(8, 16))


def test_mlp_shapes_and_counts():
    enc = MLPEncoder(latent_dim=40, input_shape=(1, 28, 28), hidden_sizes=(300, 300))
    dec = MLPDecoder(latent_dim=40, output_shape=(1, 28, 28), hidden_sizes=(300, 300))
    x = torch.rand(5, 1, 28, 28)
    loc, scale = enc(x)
    assert loc.shape == scale.shape == (5, 40)
    assert dec(loc).shape == (5, 1, 28, 28)
    assert count_parameters(enc) == 784 * 300 + 300 + 300 * 300 + 300 + 2 * (300 * 40 + 40)
    assert count_parameters(dec) == 40 * 300 + 300 + 300 * 300 + 300 + 300 * 784 + 784
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        enc(torch.rand(5, 784))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLPEncoder(activation="swish")
    # no hidden layer: linear maps
    assert MLPDecoder(2, (1, 1, 3), ())(torch.zeros(4, 2)).shape == (4, 1, 1, 3)


def test_gated_mlp_layers_are_linear_times_sigmoid_gate_and_double_the_hidden_parameters():
    from vae.nets import GatedLinear

    torch.manual_seed(0)
    enc = MLPEncoder(latent_dim=40, input_shape=(1, 28, 28), hidden_sizes=(300, 300), activation="gated")
    dec = MLPDecoder(latent_dim=40, output_shape=(1, 28, 28), hidden_sizes=(300, 300), activation="gated")
    assert [type(m) for m in enc.body] == [GatedLinear, GatedLinear]  # no activation after a gate
    assert count_parameters(enc) == 2 * (784 * 300 + 300) + 2 * (300 * 300 + 300) + 2 * (300 * 40 + 40)
    assert count_parameters(dec) == 2 * (40 * 300 + 300) + 2 * (300 * 300 + 300) + 300 * 784 + 784
    x = torch.rand(3, 1, 28, 28)
    h = x.flatten(1)
    for layer in enc.body:  # by hand: (W h + b) * sigmoid(V h + c)
        h = (h @ layer.linear.weight.T + layer.linear.bias) * torch.sigmoid(h @ layer.gate.weight.T + layer.gate.bias)
    assert torch.allclose(enc.body(x.flatten(1)), h, atol=1e-6)
    assert dec(enc(x)[0]).shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match="allowed: .*'gated'"):
        MLPDecoder(activation="swish")
