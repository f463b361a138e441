"""The one exception type for mistakes a user can fix: the CLI prints it as one line.

A message names settings in its caller's words: `max_length` to the Python API, `--max-length`
on the command line. Code below the CLI writes `option("max_length")` where a setting is named
(`option("task", value="multiclass")`: task='multiclass', or --task multiclass); `str(err)` says
the Python names, and the CLI renders the message with its flags (`render`).
"""
from __future__ import annotations

import re
from typing import Callable

_MARK = "\x1f"  # around an option in a message: name|flag|python|value; never shown
_OPTION = re.compile(f"{_MARK}([^{_MARK}]*){_MARK}")


def option(name: str, flag: str | None = None, python: str | None = None, value: str | None = None) -> str:
    """`name` (a Python argument) in a TfclfError message, with `value` if given: said as `python`
    (default `name`) in Python, and as `flag` on the command line (default: the CLI's table's,
    or --name-with-dashes)."""
    return f"{_MARK}{name}|{flag or ''}|{python or name}|{'' if value is None else value}{_MARK}"


def in_python(name: str, flag: str, python: str) -> str:
    return python


class TfclfError(Exception):
    """Bad input or settings: the message says what, where and what was expected."""

    def __str__(self) -> str:
        return self.render(in_python)

    def render(self, say: Callable[[str, str, str], str]) -> str:
        """The message with each option said by `say(name, flag, python)`, and its value, if it has
        one, beside it (Python: name='value'; the command line: --flag value)."""
        python = say is in_python

        def said(found: re.Match) -> str:
            name, flag, as_python, value = found.group(1).split("|", 3)
            word = say(name, flag, as_python)
            if not value:
                return word
            return f"{word}={value!r}" if python else f"{word} {value}"

        return _OPTION.sub(said, super().__str__())

    @property
    def raw(self) -> str:
        """The message with its options unrendered: to put inside another TfclfError's."""
        return super().__str__()
