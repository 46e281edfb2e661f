"""Per-member early stopping and divergence bookkeeping for ``fit``.

Plain Python values only, so that the whole state goes into a checkpoint as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["EarlyStopping", "MemberOutcome"]


@dataclass(frozen=True, slots=True)
class MemberOutcome:
    """How one member's training ended.

    ``best_epoch``: the epoch whose weights were restored (0-based).
    ``epochs_run``: epochs this member trained before it stopped.
    ``best_val_loss``: inner-validation loss at ``best_epoch`` (standardised units).
    ``best_val_metric``: primary metric there (RMSE in original units, or accuracy).
    ``diverged_epoch``/``diverged_reason``: where and why the loss turned non-finite.
    """

    best_epoch: int
    epochs_run: int
    best_val_loss: float
    best_val_metric: float
    diverged_epoch: int | None = None
    diverged_reason: str | None = None

    @property
    def diverged(self) -> bool:
        return self.diverged_epoch is not None


@dataclass
class EarlyStopping:
    """Each member's best epoch, patience counter and divergence, advanced once per epoch."""

    best_loss: list[float]
    best_metric: list[float]
    best_epoch: list[int]
    epochs_run: list[int]
    active: list[bool]
    diverged: dict[int, tuple[int, str]]

    @classmethod
    def fresh(cls, members: int) -> EarlyStopping:
        return cls(
            [math.inf] * members,
            [math.nan] * members,
            [0] * members,
            [0] * members,
            [True] * members,
            {},
        )

    def to_dict(self) -> dict[str, Any]:
        # copies: the live lists keep changing after a snapshot is taken
        return {
            "best_loss": list(self.best_loss),
            "best_metric": list(self.best_metric),
            "best_epoch": list(self.best_epoch),
            "epochs_run": list(self.epochs_run),
            "active": list(self.active),
            "diverged": [[k, epoch, reason] for k, (epoch, reason) in self.diverged.items()],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> EarlyStopping:
        diverged = {int(k): (int(epoch), str(reason)) for k, epoch, reason in state["diverged"]}
        return cls(
            list(state["best_loss"]),
            list(state["best_metric"]),
            list(state["best_epoch"]),
            list(state["epochs_run"]),
            list(state["active"]),
            diverged,
        )

    def update(
        self,
        epoch: int,
        val_loss: Sequence[float],
        val_metric: Sequence[float],
        nonfinite: Sequence[bool],
        patience: int | Sequence[int],
    ) -> list[bool]:
        """Advance early stopping by one epoch (``patience``: one, or one per member);
        returns which members improved."""
        improved = [False] * len(self.active)
        patiences = [patience] * len(self.active) if isinstance(patience, int) else patience
        for k, running in enumerate(self.active):
            if not running:
                continue
            self.epochs_run[k] = epoch + 1
            if nonfinite[k] or not math.isfinite(val_loss[k]):
                reason = (
                    "non-finite training loss" if nonfinite[k] else "non-finite validation loss"
                )
                self.diverged[k] = (epoch, reason)
                self.active[k] = False
            elif val_loss[k] < self.best_loss[k]:
                self.best_loss[k], self.best_metric[k] = val_loss[k], val_metric[k]
                self.best_epoch[k] = epoch
                improved[k] = True
            elif epoch - self.best_epoch[k] >= patiences[k]:
                self.active[k] = False
        return improved

    def stop(self, member: int) -> None:
        """Stop ``member`` from outside (a scheduler's decision): it keeps its best epoch."""
        if not 0 <= member < len(self.active):
            raise ValueError(f"member {member} out of range 0..{len(self.active) - 1}")
        self.active[member] = False

    def outcomes(self) -> tuple[MemberOutcome, ...]:
        return tuple(
            MemberOutcome(
                best_epoch=self.best_epoch[k],
                epochs_run=self.epochs_run[k],
                best_val_loss=self.best_loss[k],
                best_val_metric=self.best_metric[k],
                diverged_epoch=self.diverged[k][0] if k in self.diverged else None,
                diverged_reason=self.diverged[k][1] if k in self.diverged else None,
            )
            for k in range(len(self.active))
        )
