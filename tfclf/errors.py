"""The one exception type for mistakes a user can fix: the CLI prints it as one line."""


class TfclfError(Exception):
    """Bad input or settings: the message says what, where and what was expected."""
