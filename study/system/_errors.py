"""The error of a bad value in a named field of what the user asked for."""

from __future__ import annotations

__all__ = ["RequestError"]


class RequestError(ValueError):
    """A field of a request (a study's, a suite's, a command's) has a value it cannot take."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
