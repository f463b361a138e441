"""The tfclf command's console: TensorFlow imported without its start-up lines, and its log
lines hidden unless the user asks for them. The Python API does none of this: a notebook's
logging stays as its user set it."""
from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with stderr silenced: its C++ start-up lines (CUDA probing, CPU features)
    are written before any log level applies. An import error still raises, after stderr is back.
    Where the command hides TensorFlow's logs (`hide_tensorflow_logs`), its Python loggers (and
    absl's, which TensorFlow's use) say errors only, as its C++ code does."""
    if "tensorflow" in sys.modules:
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers its ops)

        tf.config.list_physical_devices()  # the CUDA probe, while quiet
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    if _hiding_logs:
        import logging

        from absl import logging as absl_logging

        tf.get_logger().setLevel(logging.ERROR)
        absl_logging.set_verbosity(absl_logging.ERROR)


# TensorFlow's C++ and absl log lines ("I0000 ...", "E0000 ... failed call to cuInit") are for
# TensorFlow's developers: users read E as an error of theirs. Level 3 keeps only fatal ones.
LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
LOGS_HELP = (f"TensorFlow's own log lines are hidden below fatal errors; {LOG_LEVEL}=0 tfclf ... shows them "
             f"(a {LOG_LEVEL} you set is left as it is).")
_hiding_logs = False


def hide_tensorflow_logs(environ=os.environ) -> bool:
    """The tfclf command, before TensorFlow loads: TensorFlow's log lines below fatal errors off,
    unless the user set TF_CPP_MIN_LOG_LEVEL themselves. Returns whether they are hidden."""
    global _hiding_logs
    if LOG_LEVEL in environ:
        return False
    environ[LOG_LEVEL] = "3"
    _hiding_logs = True
    return True
