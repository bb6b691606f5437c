"""Errors that reach the user as one line (the CLI prints ``mtmc: error: <message>``)."""

from __future__ import annotations


class MtmcError(Exception):
    """A user-facing error: the message names the culprit and what to do."""


class ConfigError(MtmcError):
    """A config file, key or value is wrong."""


class InputError(MtmcError):
    """An input path is missing, empty, or not a readable video / sequence."""


class ModelError(MtmcError):
    """A detector or ReID model SPEC is unknown or its weights cannot be loaded."""


class OutputError(MtmcError):
    """The output folder is a file, not writable, on a full disk, in use by another run, or holds a run already."""


def first_line(exc: BaseException | str) -> str:
    """The first non-empty line of an exception's message (or of a string), else the exception's class name.

    Third-party errors (FFmpeg, onnxruntime, torch) often span many lines; user-facing
    errors quote only this line.
    """
    text = str(exc).strip()
    if text:
        return text.splitlines()[0]
    return type(exc).__name__ if isinstance(exc, BaseException) else ""
