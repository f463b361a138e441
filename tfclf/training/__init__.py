"""Fitting the models: the tf.data pipeline, the optimizer and its schedule, the callbacks
beside model.fit, fine-tuning, stage 2, and further masked-LM pre-training."""
