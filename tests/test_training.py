"""The length-grouped pipeline, the learning-rate schedule and the optimizer settings."""
import numpy as np
import tensorflow as tf

from tfclf.text.sequences import sorted_batches
from tfclf.training import optimization, pipeline


def epochs_of(dataset, n):
    """The index batches of `n` passes over `dataset`, as Keras iterates it once per epoch."""
    return [[b.tolist() for b in dataset.as_numpy_iterator()] for _ in range(n)]


def test_grouped_batches_cover_every_example_once_and_group_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 300, size=5000)
    batches = [np.array(b) for b in epochs_of(pipeline.grouped_index_batches(lengths, 32, seed=1), 1)[0]]
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(5000))
    assert len(batches) == pipeline.count_batches(5000, 32) == 157
    assert [len(b) for b in batches].count(32) == 156  # one short batch, the end of the last window
    # grouped: the padding inside batches is a small part of what random batches would waste
    waste = sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches)
    random_waste = sum(lengths[b].max() * len(b) - lengths[b].sum() for b in np.array_split(rng.permutation(5000), 157))
    assert waste < 0.1 * random_waste
    # and still a random mix: the batches do not come in order of length
    firsts = [lengths[b].min() for b in batches]
    assert firsts != sorted(firsts)


def test_batches_are_reshuffled_every_epoch_and_repeat_for_a_seed():
    lengths = np.arange(640) % 50
    first, second = epochs_of(pipeline.grouped_index_batches(lengths, 32, seed=3), 2)
    assert first != second
    assert epochs_of(pipeline.grouped_index_batches(lengths, 32, seed=3), 2) == [first, second]
    assert epochs_of(pipeline.grouped_index_batches(lengths, 32, seed=4), 1)[0] != first


def test_training_dataset_pads_each_batch_to_a_multiple_of_eight():
    ids = [np.arange(n, dtype=np.int32) + 1 for n in (3, 9, 17, 4, 30, 5)]
    targets = np.arange(6, dtype=np.int32)
    seen = []
    for features, y in pipeline.training_dataset(ids, targets, batch_size=2, pad_id=0, seed=0):
        mask, width = features["attention_mask"].numpy(), features["input_ids"].shape[1]
        assert width % 8 == 0 and width - mask.sum(axis=1).max() < 8
        for row, label in zip(mask, y.numpy()):
            assert row.sum() == len(ids[label])  # each row keeps its own text and label
        seen += y.numpy().tolist()
    assert sorted(seen) == list(range(6))


def test_sorted_batches_cover_every_text_once_shortest_first():
    ids = [np.full(n, n, dtype=np.int32) for n in (5, 1, 9, 3)]
    seen = list(sorted_batches(ids, batch_size=3, pad_id=0))
    assert [index.tolist() for index, _ in seen] == [[1, 3, 0], [2]]
    first = seen[0][1]["attention_mask"].sum(axis=1).tolist()
    assert first == [1, 3, 5]


def test_prediction_batches_pad_to_their_longest_text_and_to_multiples_of_8_under_xla():
    ids = [np.full(n, n, dtype=np.int32) for n in (5, 1, 9, 3)]
    exact = [batch["input_ids"].shape[1] for _, batch in sorted_batches(ids, batch_size=3, pad_id=0)]
    xla = [batch["input_ids"].shape[1] for _, batch in sorted_batches(ids, 3, 0, xla=True)]
    assert exact == [5, 9] and xla == [8, 16]  # XLA compiles per shape: few widths


def test_warmup_then_linear_decay():
    schedule = optimization.WarmupLinearDecay(1e-3, total_steps=100, warmup_steps=10)
    values = [float(schedule(tf.constant(s))) for s in (0, 5, 10, 55, 100)]
    np.testing.assert_allclose(values, [0, 5e-4, 1e-3, 5e-4, 0], atol=1e-9)


def test_optimizer_clips_and_skips_decay_of_layernorm_and_bias():
    opt = optimization.make_optimizer(2e-5, total_steps=100)
    assert opt.global_clipnorm == 1.0 and opt.weight_decay == 0.01
    assert {"bias", "LayerNorm", "layer_norm"} <= set(opt._exclude_from_weight_decay_names)


def _adamw_run(optimizer, steps: int = 5) -> list[np.ndarray]:
    """A few steps of a tiny model with an embedding (sparse gradients, repeated ids), a dense
    layer and a LayerNorm, from fixed weights; the weights afterwards."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)

    ids = keras.Input((4,), dtype=tf.int32)
    hidden = keras.layers.Embedding(50, 8, name="embeddings")(ids)
    hidden = keras.layers.LayerNormalization(name="LayerNorm")(hidden)
    out = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling1D()(hidden))
    model = keras.Model(ids, out)
    x = tf.constant([[1, 2, 2, 3], [4, 4, 4, 5]])
    y = tf.constant([0, 2])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))
    return [v.numpy() for v in model.trainable_variables]


def test_fused_adamw_matches_keras_adamw():
    """Same schedule, decay, exclusions, clipping and bias correction as Keras's own AdamW; only
    the kernels differ (so only float rounding may)."""
    import tf_keras as keras

    fused = optimization.make_optimizer(1e-2, total_steps=10, warmup_fraction=0.2, weight_decay=0.1)
    reference = keras.optimizers.AdamW(learning_rate=optimization.WarmupLinearDecay(1e-2, 10, 2), weight_decay=0.1,
                                       global_clipnorm=1.0, epsilon=1e-6)
    reference.exclude_from_weight_decay(var_names=["bias", "LayerNorm", "layer_norm"])
    got, want = _adamw_run(fused), _adamw_run(reference)
    start = _adamw_run(optimization.make_optimizer(1e-2, 10), steps=0)
    for g, w, s in zip(got, want, start):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)  # weights ~0.05, steps 1e-2
        assert not np.allclose(g, s)  # every variable moved
    assert int(fused.iterations) == 5


def test_a_multilabel_fit_traces_its_train_function_once(tiny_bert):
    """The monitored AUC's variables exist before the first step: a tf.function that creates
    variables on its first call is traced twice (for MiniLM the trace is most of a fit's fixed
    cost). Keras makes the optimizer's slots outside the function; accuracy has no variables to make late."""
    from tfclf import TextClassifier

    texts = ["good movie", "bad film", "great plot", "awful scene"] * 8  # one padded width: one input signature
    labels = [["pos"], ["neg"], ["pos", "plot"], ["neg"]] * 8
    # float32: the model trained is the model kept (under `auto` a bf16 CPU trains a multi-label model
    # with bf16 matmuls, then predicts with a float32 copy of it, which has no train function)
    clf = TextClassifier.from_pretrained(str(tiny_bert), task="multilabel", epochs=1, batch_size=8, max_length=16,
                                         precision="float32")
    clf.fit(texts, labels, verbose=0)
    assert clf.model.train_function.experimental_get_tracing_count() == 1


def test_a_fit_nothing_keeps_writes_no_backup_and_no_tensorboard_logs(tiny_bert, tmp_path, monkeypatch):
    """Without run_dir a fit trains in a temporary folder removed at its end: a backup there is never
    resumed and logs there are never read, and writing them each epoch cost ~10 % of a small fit.
    With run_dir both are written (the CLI's runs: tests/test_classifier.py, test_reliability.py)."""
    import tf_keras as keras

    from tfclf import TextClassifier
    from tfclf.training import callbacks, fit

    made = []
    real = callbacks.callbacks
    monkeypatch.setattr(fit.training_callbacks, "callbacks", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    texts, labels = ["good movie", "bad film", "great plot", "awful scene"] * 4, ["pos", "neg", "pos", "neg"] * 4
    settings = dict(task="binary", epochs=1, batch_size=8, max_length=16, precision="float32")
    TextClassifier.from_pretrained(str(tiny_bert), **settings).fit(texts, labels, verbose=0)
    TextClassifier.from_pretrained(str(tiny_bert), **settings).fit(texts, labels, run_dir=tmp_path / "run", verbose=0)
    unkept, kept = ({type(c) for c in found} for found in made)
    resumable = {keras.callbacks.BackupAndRestore, keras.callbacks.TensorBoard}
    assert not unkept & resumable and kept >= resumable, (unkept, kept)
    assert any((tmp_path / "run" / "logs").rglob("events.out.tfevents.*"))
