"""Errors and exit codes shared by every command.

Exit codes follow the CI-gate convention of `meshctl analyze`: 0 success / pass, 1 failure or
findings, 2 inconclusive, 3 usage or input error.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_INCONCLUSIVE = 2
EXIT_USAGE = 3


class MeshctlError(Exception):
    """An error the user can act on: it names where (file, line, field) and what went wrong."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.hint = hint

    def location(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line is not None else self.file)
        if self.field:
            parts.append(self.field)
        return ": ".join(parts)

    def __str__(self) -> str:
        loc = self.location()
        text = f"{loc}: {self.message}" if loc else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class InputError(MeshctlError):
    """Bad input file or value."""


class ValidationError(MeshctlError):
    """Rendered or linted configuration failed validation."""

    exit_code = EXIT_FAIL


class KubeError(MeshctlError):
    """The Kubernetes API could not be reached or refused a request."""
