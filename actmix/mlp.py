"""An MLP whose every parameter has a leading member dimension.

``M`` members (folds x seeds of one configuration) train as one network: each
linear layer is a batched matmul over ``[M, batch, features]``, and activation
parameters are per member too. ``member(k)`` extracts a standalone model.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from actmix._dropout import DropoutMask, apply_dropout, dropout_mask, random_dropout_keys
from actmix.activations import ActivationLayer, make_activation
from actmix.activations.base import joint_inputs

__all__ = ["MLP", "ActMixMLP", "member_seeds"]


def member_seeds(seed: int | Sequence[int], members: int) -> list[int]:
    """One seed per member: an int expands to ``seed, seed + 1, ...``."""
    if isinstance(seed, int):
        return [seed + k for k in range(members)]
    seeds = [int(s) for s in seed]
    if len(seeds) != members:
        raise ValueError(f"got {len(seeds)} seeds for {members} members")
    return seeds


class MLP(nn.Module):
    """``[Linear -> activation -> Dropout] x depth -> Linear`` over ``M`` members.

    ``x: [M, B, in_features] -> [M, B, out_features]``; with ``members=1`` a plain
    ``[B, in_features]`` input is accepted too. ``seed`` fixes initialisation per
    member, so member ``k`` of a batched model equals a single model built with
    that member's seed. ``member_inputs`` gives each member's real input width
    when members see different feature counts (zero-padded to ``in_features``):
    a member is initialised for its own width only, so its start does not depend
    on how wide the other members' inputs are. ``dropout`` may be one rate per member,
    and ``activation_options`` one mapping per member (where the activation can vary an
    option per member, e.g. ActMix's ``relu_bias`` and ``omega_0``): configurations that
    share the network's shape then train side by side as each would alone.

    >>> model = MLP(4, 1, (16, 16), "actmix", members=3)
    >>> model(torch.zeros(3, 8, 4)).shape
    torch.Size([3, 8, 1])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        widths: Sequence[int],
        activation: str = "relu",
        *,
        dropout: float | Sequence[float] = 0.0,
        members: int = 1,
        activation_options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        seed: int | Sequence[int] = 0,
        member_inputs: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if members < 1:
            raise ValueError(f"members must be >= 1, got {members}")
        rates = [float(dropout)] * members if isinstance(dropout, int | float) else list(dropout)
        if len(rates) != members:
            raise ValueError(f"got {len(rates)} dropout rates for {members} members")
        if not all(0 <= rate < 1 for rate in rates):
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if in_features < 1 or out_features < 1 or not widths or min(widths) < 1:
            raise ValueError(
                f"bad MLP shape: in={in_features}, out={out_features}, widths={list(widths)}"
            )
        self.spec: dict[str, Any] = {
            "in_features": int(in_features),
            "out_features": int(out_features),
            "widths": [int(w) for w in widths],
            "activation": activation,
            # one value when every member shares it, else one per member
            "dropout": rates[0] if len(set(rates)) == 1 else rates,
            "activation_options": _spec_options(activation_options, members),
        }
        self.members = members
        self.seeds = member_seeds(seed, members)
        self.member_inputs = (
            [int(in_features)] * members
            if member_inputs is None
            else [int(n) for n in member_inputs]
        )
        if len(self.member_inputs) != members or not all(
            1 <= n <= in_features for n in self.member_inputs
        ):
            raise ValueError(
                f"member_inputs must give {members} widths in 1..{in_features}, "
                f"got {list(self.member_inputs)}"
            )
        # a float when shared: the dropout kernels then see the 0-d constants as before
        self.dropout: float | tuple[float, ...] = rates[0] if len(set(rates)) == 1 else tuple(rates)
        sizes = [in_features, *widths, out_features]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(members, fan_in, fan_out))
            for fan_in, fan_out in itertools.pairwise(sizes)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.empty(members, 1, fan_out)) for fan_out in sizes[1:]
        )
        options = _layer_options(activation, self.spec["activation_options"])
        self.activations = nn.ModuleList(
            make_activation(activation, width, members, **options) for width in widths
        )
        self._initialise()

    def _initialise(self) -> None:
        # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn per member
        with torch.no_grad():
            for k, member_seed in enumerate(self.seeds):
                generator = torch.Generator().manual_seed(member_seed)
                for layer, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
                    fan_in = self.member_inputs[k] if layer == 0 else weight.shape[1]
                    bound = 1.0 / math.sqrt(fan_in)
                    weight[k].zero_()
                    for target in (weight[k, :fan_in], bias[k]):
                        values = torch.rand(target.shape, generator=generator)
                        target.copy_(values.mul_(2 * bound).sub_(bound))

    def forward(self, x: torch.Tensor, *, dropout_keys: torch.Tensor | None = None) -> torch.Tensor:
        """Forward pass; in training, ``dropout_keys: [members, hidden layers]`` (int32)
        choose the dropout masks (see ``actmix._dropout``), drawn at random when None."""
        squeeze = x.dim() == 2
        if squeeze:
            if self.members != 1:
                raise ValueError(f"input must be [members={self.members}, batch, features]")
            x = x.unsqueeze(0)
        hidden = x
        last = len(self.weights) - 1
        layers = self.activation_layers()
        extra = joint_inputs(layers, x.dtype)
        keys = None
        if self.training and self._any_dropout():
            if dropout_keys is None:
                keys = random_dropout_keys(self.members, last, x.device)
            elif tuple(dropout_keys.shape) != (self.members, last):
                raise ValueError(
                    f"dropout_keys must be [members={self.members}, hidden layers={last}],"
                    f" got {list(dropout_keys.shape)}"
                )
            else:
                keys = dropout_keys
        # layers that can, keep less for backward by running with the next product
        fuse = self.training and torch.is_grad_enabled()
        pending: tuple[ActivationLayer, DropoutMask | None] | None = None
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            if pending is None:
                hidden = torch.baddbmm(bias, hidden, weight)
            else:
                hidden = pending[0].linear_after(hidden, weight, bias, pending[1])
                pending = None
            if index == last:
                break
            layer = layers[index]
            mask = None if keys is None else dropout_mask(keys[:, index], self.dropout, hidden)
            if fuse and layer.fuses_linear:
                pending = (layer, mask)
                continue
            hidden = layer(hidden, **extra[index])
            if mask is not None:
                hidden = apply_dropout(hidden, mask)
        return hidden.squeeze(0) if squeeze else hidden

    def _any_dropout(self) -> bool:
        rates = self.dropout if isinstance(self.dropout, tuple) else (self.dropout,)
        return any(rate > 0 for rate in rates)

    # --- activation protocol, aggregated over layers -------------------------------------

    def activation_layers(self) -> list[ActivationLayer]:
        # nn.ModuleList is typed as holding plain modules; each entry is an ActivationLayer
        return [cast(ActivationLayer, layer) for layer in self.activations]

    def set_temperature(self, temperature: float | torch.Tensor) -> None:
        """One temperature for every member, or ``[members]``, one each."""
        for layer in self.activation_layers():
            layer.set_temperature(temperature)

    def entropy(self) -> torch.Tensor | None:
        """Mean over layers of the per-layer mixing entropy, ``[members]``; None if no mixture."""
        values = [
            e for e in (layer.entropy() for layer in self.activation_layers()) if e is not None
        ]
        return torch.stack(values).mean(dim=0) if values else None

    def mixing_weights(self) -> list[torch.Tensor] | None:
        """Per layer ``[members, width, K]`` mixing coefficients; None if no layer mixes."""
        weights = [layer.mixing_weights() for layer in self.activation_layers()]
        present = [w for w in weights if w is not None]
        return present if len(present) == len(weights) else None

    def regularization(self) -> torch.Tensor | None:
        """Sum of the activations' own regularisers, ``[members]``; None if there are none."""
        values = [
            r
            for r in (layer.regularization() for layer in self.activation_layers())
            if r is not None
        ]
        return torch.stack(values).sum(dim=0) if values else None

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """``(decayed, not_decayed)``: weight decay goes to linear weights only."""
        decayed = list(self.weights)
        decayed_ids = {id(p) for p in decayed}
        return decayed, [p for p in self.parameters() if id(p) not in decayed_ids]

    def member(self, k: int) -> MLP:
        """A standalone single-member copy of member ``k`` (same weights, eval-ready)."""
        if not 0 <= k < self.members:
            raise ValueError(f"member index {k} out of range 0..{self.members - 1}")
        width = self.member_inputs[k]
        spec = {**self.spec, "in_features": width}
        if isinstance(spec["dropout"], list):
            spec["dropout"] = spec["dropout"][k]
        if isinstance(spec["activation_options"], list):
            spec["activation_options"] = spec["activation_options"][k]
        single = MLP(**spec, members=1, seed=self.seeds[k])
        # every parameter and buffer carries the member dimension first
        state = {name: tensor[k : k + 1] for name, tensor in self.state_dict().items()}
        state["weights.0"] = state["weights.0"][:, :width]
        single.load_state_dict(state)
        return single.to(next(self.parameters()).device)


def _spec_options(
    options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, members: int
) -> dict[str, Any] | list[dict[str, Any]]:
    """The activation options as the spec keeps them: one dict when every member shares
    them, else one dict per member."""
    if options is None or isinstance(options, Mapping):
        return dict(options or {})
    per_member = [dict(o) for o in options]
    if len(per_member) != members:
        raise ValueError(f"got {len(per_member)} activation option sets for {members} members")
    return per_member[0] if all(o == per_member[0] for o in per_member) else per_member


def _layer_options(
    activation: str, options: dict[str, Any] | list[dict[str, Any]]
) -> dict[str, Any]:
    """What ``make_activation`` takes: shared options as they are, an option that differs
    between members as a list of their values (if the activation can vary it)."""
    if isinstance(options, dict):
        return options
    from actmix.activations import ACTIVATIONS, check_activation

    constructor = ACTIVATIONS[check_activation(activation)]
    allowed: frozenset[str] = getattr(constructor, "per_member_options", frozenset())
    # an option some members leave out takes the activation's default for them
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(constructor).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    keys = set().union(*options)
    unknown = sorted(key for key in keys if key not in defaults)
    if unknown:
        raise ValueError(f"bad options for activation {activation!r}: {', '.join(unknown)}")
    options = [{key: o.get(key, defaults[key]) for key in keys} for o in options]
    varying = sorted(key for key in keys if any(o[key] != options[0][key] for o in options))
    fixed = [key for key in varying if key not in allowed]
    if fixed:
        raise ValueError(
            f"activation {activation!r} cannot vary {', '.join(fixed)} between members of one "
            f"network (it can: {', '.join(sorted(allowed)) or 'nothing'})"
        )
    merged = dict(options[0])
    for key in varying:
        merged[key] = [o[key] for o in options]
    return merged


# CamelCase: DESIGN.md names the model ActMixMLP; it builds an MLP, not a subclass
def ActMixMLP(in_features: int, out_features: int, widths: Sequence[int], **options: Any) -> MLP:
    """An ``MLP`` whose every hidden layer is ActMix; ``options`` as for ``MLP``.

    >>> ActMixMLP(4, 1, (16,)).spec["activation"]
    'actmix'
    """
    if "activation" in options:
        raise ValueError(
            f"ActMixMLP always uses activation 'actmix', got activation={options['activation']!r};"
            " use MLP for another activation"
        )
    return MLP(in_features, out_features, widths, "actmix", **options)
