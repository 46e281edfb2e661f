"""ActMix fused with the next layer's product (``ActMix.linear_after``): what training uses."""

import pytest
import torch

from actmix import _kernels
from actmix._kernels import kernel_cache
from actmix.activations.actmix import ActMix
from actmix.mlp import MLP

KEYS = torch.tensor([[7, -8, 3], [9, 10, 4]], dtype=torch.int32)


def _model(dropout: float, dtype=torch.float64) -> MLP:
    model = MLP(5, 2, (6, 6, 6), "actmix", members=2, dropout=dropout, seed=[1, 2])
    with torch.no_grad():  # mixing weights away from the uniform start
        for layer in model.activation_layers():
            layer.logits.normal_()
    return model.to(dtype).train()


def _outputs_and_gradients(model: MLP, x: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad()
    out = model(x, dropout_keys=KEYS)
    out.pow(2).sum().backward()
    return [out.detach(), *(p.grad for p in model.parameters())]


@pytest.mark.parametrize("dropout", [0.0, 0.4])
@pytest.mark.parametrize("compiled", [False, True])
def test_fused_path_equals_layer_dropout_product_one_by_one(dropout, compiled, monkeypatch):
    monkeypatch.setenv(_kernels.COMPILE_ENV, "1" if compiled else "0")
    monkeypatch.setattr(kernel_cache, "min_elements", 0)
    dtype = torch.float32 if compiled else torch.float64
    model = _model(dropout, dtype)
    x = torch.randn(2, 9, 5, dtype=dtype)
    fused = _outputs_and_gradients(model, x)
    monkeypatch.setattr(ActMix, "fuses_linear", False)
    separate = _outputs_and_gradients(model, x)
    for got, want in zip(fused, separate, strict=True):
        torch.testing.assert_close(got, want)
    assert kernel_cache.error is None
    kernel_cache.reset()


def test_fused_path_passes_gradcheck(monkeypatch):
    monkeypatch.setenv(_kernels.COMPILE_ENV, "0")
    model = _model(0.4)
    inputs = (torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True), *model.parameters())
    names = [name for name, _ in model.named_parameters()]

    def run(x, *parameters):
        replaced = dict(zip(names, parameters, strict=True))
        return torch.func.functional_call(model, replaced, (x,), {"dropout_keys": KEYS})

    assert torch.autograd.gradcheck(run, inputs)


def _saved_bytes(model: MLP, x: torch.Tensor) -> int:
    sizes = {}

    def pack(tensor):
        sizes[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(x, dropout_keys=KEYS)
    return sum(sizes.values())


@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_fused_path_keeps_less_for_backward_than_a_relu_network(dropout, monkeypatch):
    # batch rows far outnumber parameters: what is kept is dominated by per-row tensors
    x = torch.randn(2, 4096, 5)
    actmix = _model(dropout, torch.float32)
    relu = MLP(5, 2, (6, 6, 6), "relu", members=2, dropout=dropout).train()
    fused = _saved_bytes(actmix, x)
    assert fused <= 1.05 * _saved_bytes(relu, x)
    monkeypatch.setattr(ActMix, "fuses_linear", False)
    assert _saved_bytes(actmix, x) > 1.5 * fused


def test_evaluation_and_no_grad_run_the_layers_themselves():
    # forward hooks on activation layers (diagnostics) see every layer outside training
    model = _model(0.0, torch.float32)
    seen = []
    for layer in model.activation_layers():
        layer.register_forward_hook(lambda _module, _inputs, output: seen.append(output))
    with torch.no_grad():
        model(torch.randn(2, 3, 5))
    model.eval()
    model(torch.randn(2, 3, 5))
    assert len(seen) == 6


def test_dropout_keys_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"dropout_keys must be \[members=2, hidden layers=3\]"):
        _model(0.4)(torch.randn(2, 3, 5, dtype=torch.float64), dropout_keys=KEYS[:, :2])
