import pytest
import torch

from actmix import ActMixMLP
from actmix.activations import ActMix
from actmix.mlp import MLP


def test_shapes_and_plain_input_for_one_member():
    batched = MLP(5, 3, (8, 8), "actmix", members=4)
    assert batched(torch.zeros(4, 7, 5)).shape == (4, 7, 3)
    single = MLP(5, 3, (8,), "relu")
    assert single(torch.zeros(7, 5)).shape == (7, 3)
    with pytest.raises(ValueError, match="members=4"):
        batched(torch.zeros(7, 5))


def test_member_k_equals_a_single_model_with_its_seed():
    batched = MLP(5, 2, (16, 16), "prelu", members=3, seed=[10, 11, 12])
    single = MLP(5, 2, (16, 16), "prelu", members=1, seed=11)
    for name, tensor in single.state_dict().items():
        assert torch.equal(tensor[0], batched.state_dict()[name][1]), name


def test_member_extracts_a_standalone_model():
    batched = MLP(3, 1, (8,), "actmix", members=3, dropout=0.2, seed=0)
    with torch.no_grad():
        batched.activations[0].logits.normal_()
    batched.set_temperature(0.5)
    batched.eval()
    x = torch.randn(6, 3)
    single = batched.member(2)
    single.eval()
    assert torch.allclose(single(x), batched(x.expand(3, 6, 3))[2])
    with pytest.raises(ValueError, match="out of range"):
        batched.member(3)


def test_initialisation_matches_nn_linear_bounds():
    model = MLP(100, 1, (50,), "relu", members=2)
    assert model.weights[0].abs().max() <= 0.1
    assert model.weights[1].abs().max() <= 1 / 50**0.5
    assert not torch.equal(model.weights[0][0], model.weights[0][1])


def test_weight_decay_goes_to_linear_weights_only():
    model = MLP(4, 1, (8, 8), "actmix", members=2)
    decayed, other = model.parameter_groups()
    assert {id(p) for p in decayed} == {id(w) for w in model.weights}
    names = {n for n, p in model.named_parameters() if id(p) in {id(q) for q in other}}
    assert any("logits" in n for n in names) and any("biases" in n for n in names)


def test_dropout_masks_follow_member_keys():
    model = MLP(4, 1, (32, 32), "relu", members=2, dropout=0.5)
    model.train()
    x = torch.randn(1, 9, 4).expand(2, 9, 4)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter[1].copy_(parameter[0])
    same = torch.tensor([[3, 4], [3, 4]], dtype=torch.int32)
    out = model(x, dropout_keys=same)
    assert torch.equal(out[0], out[1])
    assert torch.equal(model(x, dropout_keys=same), out)
    # another key for member 1's second layer alone changes member 1 alone
    other = torch.tensor([[3, 4], [3, 5]], dtype=torch.int32)
    changed = model(x, dropout_keys=other)
    assert torch.equal(changed[0], out[0]) and not torch.equal(changed[1], out[1])
    # without keys, training draws fresh masks; evaluation drops nothing
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_entropy_is_none_without_a_mixture():
    assert MLP(4, 1, (8,), "relu").entropy() is None
    assert MLP(4, 1, (8, 8), "actmix", members=3).entropy().shape == (3,)


def test_bad_arguments():
    with pytest.raises(ValueError, match="dropout"):
        MLP(4, 1, (8,), dropout=1.0)
    with pytest.raises(ValueError, match="3 seeds for 2 members"):
        MLP(4, 1, (8,), members=2, seed=[1, 2, 3])


def test_member_inputs_keep_each_member_independent_of_padding():
    batched = MLP(6, 1, (8,), "relu", members=2, seed=[4, 5], member_inputs=[6, 4])
    single = MLP(4, 1, (8,), "relu", members=1, seed=5)
    assert torch.equal(batched.weights[0][1, :4], single.weights[0][0])
    assert torch.equal(batched.weights[0][1, 4:], torch.zeros(2, 8))
    standalone = batched.member(1)
    assert standalone.spec["in_features"] == 4
    x = torch.randn(5, 4)
    padded = torch.cat([x, torch.zeros(5, 2)], dim=1)
    assert torch.allclose(standalone(x), batched(padded.expand(2, 5, 6))[1])
    with pytest.raises(ValueError, match="member_inputs"):
        MLP(6, 1, (8,), members=2, member_inputs=[7, 4])


def test_actmix_mlp_builds_actmix_layers_like_mlp_with_actmix():
    model = ActMixMLP(4, 1, (16, 8), members=2, seed=3, dropout=0.1)
    assert all(isinstance(layer, ActMix) for layer in model.activation_layers())
    assert len(model.activation_layers()) == 2 and model.spec["activation"] == "actmix"
    twin = MLP(4, 1, (16, 8), "actmix", members=2, seed=3, dropout=0.1)
    for name, tensor in twin.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    with pytest.raises(ValueError, match="activation='relu'"):
        ActMixMLP(4, 1, (16,), activation="relu")
