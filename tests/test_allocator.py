"""The CPU allocator: TensorFlow's BFC allocator by default, off with TFCLF_ALLOCATOR=system."""
import json
import os
import subprocess
import sys

import pytest

from conftest import skipping_keras_3
from tfclf.runtime import allocator

# The allocator TensorFlow gave each op's output, as its step statistics name it. By default
# (oneDNN on) TensorFlow's is "mklcpu": BFC for large blocks, malloc for those under 256 KiB.
ALLOCATOR_NAMES = """
import tfclf, tensorflow as tf
graph = tf.Graph()
with graph.as_default():
    x = tf.random.uniform((256, 256))
    y = tf.matmul(x, x) + 1.0
with tf.compat.v1.Session(graph=graph) as session:
    meta = tf.compat.v1.RunMetadata()
    session.run(y, options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE),
                run_metadata=meta)
print(",".join(sorted({m.allocator_name for d in meta.step_stats.dev_stats for n in d.node_stats for m in n.memory})))
"""
BFC = "bfc_cpu_allocator_for_gpu"  # TensorFlow's name for its BFC allocator over host memory


def start_python(code: str, **env: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPU_ALLOCATOR_USE_BFC", allocator.ENV)}
    return subprocess.Popen([sys.executable, "-c", code],
                            env=skipping_keras_3({**environ, **env, "TF_CPP_MIN_LOG_LEVEL": "3"}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def last_lines(process: subprocess.Popen, n: int) -> list[str]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-2000:]
    return out.strip().splitlines()[-n:]


def test_configure_sets_bfc_unless_told_otherwise():
    env = {}
    assert allocator.configure(env) == "bfc" and env["TF_CPU_ALLOCATOR_USE_BFC"] == "1"
    env = {allocator.ENV: "system"}
    assert allocator.configure(env) == "system" and "TF_CPU_ALLOCATOR_USE_BFC" not in env
    env = {"TF_CPU_ALLOCATOR_USE_BFC": "0"}  # the user's own TensorFlow setting wins
    assert allocator.configure(env) == "bfc" and env["TF_CPU_ALLOCATOR_USE_BFC"] == "0"
    with pytest.warns(UserWarning, match="TFCLF_ALLOCATOR"):
        assert allocator.configure({allocator.ENV: "tcmalloc"}) == "bfc"


def test_importing_tfclf_gives_tensorflow_the_bfc_allocator(processes):
    assert processes["bfc"][0].split(",") == [BFC]
    assert BFC not in processes["system"][0].split(",")


TRAIN = """
import json, sys
sys.path.insert(0, {tests!r})
from conftest import signal_texts
from tfclf import TextClassifier
X, y = signal_texts(96, 0)
clf = TextClassifier.from_pretrained({checkpoint!r}, task="binary", epochs=1, batch_size=16, max_length=32,
                                     learning_rate=3e-3, seed=7, precision="float32")
clf.fit(X, y, verbose=0)
print(json.dumps(clf.history["loss"]))
"""


@pytest.fixture(scope="module")
def processes(tiny_bert) -> dict:
    """Two fresh processes, one with the default allocator and one with TFCLF_ALLOCATOR=system, side
    by side (start-up dominates): each prints its allocators' names (first, as the process started),
    then the losses of one tiny fit. Each process's allocator is fixed at TensorFlow's start, so the
    two tests below share the two processes instead of starting four."""
    code = ALLOCATOR_NAMES + TRAIN.format(tests=os.path.dirname(__file__), checkpoint=str(tiny_bert))
    runs = {"bfc": start_python(code), "system": start_python(code, TFCLF_ALLOCATOR="system")}
    return {name: last_lines(run, 2) for name, run in runs.items()}


def test_the_allocator_leaves_the_numbers_alone(processes):
    with_bfc, with_malloc = (json.loads(processes[name][1]) for name in ("bfc", "system"))
    assert with_bfc == with_malloc, (with_bfc, with_malloc)
