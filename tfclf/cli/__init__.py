"""The `tfclf` command line (console script `tfclf`, and `python -m tfclf`)."""
from __future__ import annotations

import atexit
import os
import sys
from typing import Sequence

from tfclf.cli.commands import COMMANDS
from tfclf.cli.parser import build_parser
from tfclf.cli.quiet import LOG_LEVEL, LOGS_HELP, hide_tensorflow_logs
from tfclf.config import BY_NAME
from tfclf.errors import TfclfError

__all__ = ["main", "run", "hide_tensorflow_logs", "LOG_LEVEL"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(LOGS_HELP).parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TfclfError as err:
        print(f"tfclf: error: {err.render(flag)}", file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except KeyboardInterrupt:
        print("tfclf: interrupted", file=sys.stderr)
        return 130


def flag(name: str, given: str, python: str = "") -> str:
    """A setting named in an error message, as the command line says it: --max-length, --lr."""
    return given or (BY_NAME[name].option if name in BY_NAME else "--" + name.replace("_", "-"))


def run() -> None:
    """The `tfclf` command: main(), then out without the interpreter tearing TensorFlow down
    (about 2 s of destructors after the work is done); atexit handlers and buffers run first."""
    hide_tensorflow_logs()  # the command's own console; the Python API leaves logging as the user set it
    # The command's process runs tfclf alone, whose layers are tf_keras: TensorFlow's import need
    # not load Keras 3 for a `tf.keras` nobody here uses (2 s of CPU at every start). The Python
    # API never sets this: there `tf.keras` is the user's (tfclf/__init__.py).
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    code = main()
    if "tensorflow" not in sys.modules:
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
