"""Element-wise kernels compiled with ``torch.compile`` where that pays, eager otherwise.

A kernel is a plain tensor function. ``kernel_cache.run(function, variant, *args)``
calls a compiled copy of it (made on first use, one per ``function`` and
``variant``) when the first argument is large enough and compiling is allowed,
and the plain function otherwise. If compiling or running a compiled kernel
fails, one ``RuntimeWarning`` says so and every later call runs eagerly
(``kernel_cache.reset()`` forgets the failure and the compiled kernels). The
environment variable ``ACTMIX_COMPILE=0`` turns compiling off.
"""

from __future__ import annotations

import os
import types
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.fx.experimental import _config as _fx_config

__all__ = ["COMPILE_ENV", "KernelCache", "kernel_cache"]

COMPILE_ENV = "ACTMIX_COMPILE"
_ENV_OFF = frozenset({"0", "false", "no", "off"})
_ENV_VALID = _ENV_OFF | {"", "1", "true", "yes", "on"}


def _own_code_copy(function: Callable[..., Any], variant: tuple[str, ...]) -> Callable[..., Any]:
    """``function`` with a code object of its own.

    Dynamo caches compiled graphs, and counts its recompile limit (8), per code
    object; a copy per variant (an ActMix basis tuple, say) keeps one variant's
    dtype/shape graphs from using up another's.
    """
    name = "__".join([function.__name__, *variant])
    code = function.__code__.replace(co_name=name)
    return types.FunctionType(code, function.__globals__, name)


class KernelCache:
    """Compiled copies of kernel functions, and whether compiling failed.

    After the first failure (``error`` is set) every call runs the plain functions.
    ``min_elements``: below this many elements of the first argument a compiled
    call's fixed cost (guards, a parallel region) outweighs what fusion saves, so
    the plain function runs instead.
    """

    def __init__(self, *, min_elements: int = 16_384) -> None:
        self.min_elements = min_elements
        self.error: str | None = None
        self._compiled: dict[tuple[Callable[..., Any], tuple[str, ...]], Callable[..., Any]] = {}

    def reset(self) -> None:
        """Drop every compiled kernel and any earlier compile failure."""
        self._compiled.clear()
        self.error = None

    def compile_allowed(self) -> bool:
        """False when ``ACTMIX_COMPILE`` turns compiling off or an earlier compile failed."""
        setting = os.environ.get(COMPILE_ENV, "").strip().lower()
        if setting not in _ENV_VALID:
            raise ValueError(
                f"{COMPILE_ENV}={os.environ[COMPILE_ENV]!r} is not understood; use 0 or 1"
            )
        return setting not in _ENV_OFF and self.error is None

    def run(self, function: Callable[..., Any], variant: tuple[str, ...], *args: Any) -> Any:
        """``function(*args)``, compiled where it pays; ``args[0]`` is a full-size tensor."""
        use_compiled = (
            args[0].numel() >= self.min_elements
            and self.compile_allowed()
            # inside an outer torch.compile, dynamo traces the plain function itself
            and not torch.compiler.is_compiling()
        )
        if use_compiled:
            # without duck sizing: a first call whose batch equals its width would compile
            # a graph for that equality, and the next shape would compile another
            duck_shape = _fx_config.use_duck_shape
            _fx_config.use_duck_shape = False
            try:
                return self._compiled_copy(function, variant)(*args)
            except torch.OutOfMemoryError:
                raise
            except Exception as error:  # whatever breaks in compiling: eager still works
                self._fall_back(error)
            finally:
                _fx_config.use_duck_shape = duck_shape
        return function(*args)

    def _compiled_copy(
        self, function: Callable[..., Any], variant: tuple[str, ...]
    ) -> Callable[..., Any]:
        compiled = self._compiled.get((function, variant))
        if compiled is None:
            # dynamic=True: one graph serves every batch size and member count (> 1)
            compiled = torch.compile(_own_code_copy(function, variant), dynamic=True)
            self._compiled[(function, variant)] = compiled
        return compiled

    def _fall_back(self, error: Exception) -> None:
        first_line = next(iter(str(error).strip().splitlines()), "")
        self.error = f"{type(error).__name__}: {first_line}"
        warnings.warn(
            f"ActMix fell back to eager kernels: torch.compile failed ({self.error})",
            RuntimeWarning,
            stacklevel=3,
        )


kernel_cache = KernelCache()  # the one every layer in this process uses
