"""How this machine runs TensorFlow: its CPU's instructions, the memory allocator, numeric
precision (bf16 matmuls) and where training runs (tf.distribute). TensorFlow is imported
only inside functions, so the settings table and the CLI read these names before it loads."""
