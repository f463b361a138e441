"""Probe: one BERT-shaped matmul (768 x 384 @ 384 x 1536) in float32 and bfloat16, 200 runs each.

    python benchmarks/bf16_matmul.py      # prints GFLOP/s per dtype
"""
import os, time
os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"
import tensorflow as tf
for dt in (tf.float32, tf.bfloat16):
    a = tf.cast(tf.random.normal((768, 384)), dt); b = tf.cast(tf.random.normal((384, 1536)), dt)
    f = tf.function(lambda a, b: tf.matmul(a, b))
    f(a, b)
    t = time.perf_counter()
    for _ in range(200): r = f(a, b)
    r.numpy(); dt_s = (time.perf_counter() - t) / 200
    print(dt.name, f"{dt_s*1e3:.2f} ms  {2*768*384*1536/dt_s/1e9:.0f} GFLOP/s")
print(tf.sysconfig.get_build_info().get("is_mkl", None), tf.__version__)
