"""The length-grouped pipeline, the learning-rate schedule and the optimizer settings."""
import numpy as np
import tensorflow as tf

from tfclf import training


def test_length_grouped_batches_cover_every_example_once_and_group_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 300, size=5000)
    batches = training.length_grouped_batches(lengths, 32, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(5000))
    assert len(batches) == training.count_batches(5000, 32)
    # grouped: the padding inside batches is a small part of what random batches would waste
    waste = sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches)
    random_waste = sum(lengths[b].max() * len(b) - lengths[b].sum() for b in np.array_split(rng.permutation(5000), 157))
    assert waste < 0.1 * random_waste


def test_batches_are_reshuffled_every_epoch():
    rng = np.random.default_rng(3)
    first = training.length_grouped_batches(np.arange(640) % 50, 32, rng)
    second = training.length_grouped_batches(np.arange(640) % 50, 32, rng)
    assert [b.tolist() for b in first] != [b.tolist() for b in second]


def test_training_dataset_pads_each_batch_to_a_multiple_of_eight():
    ids = [np.arange(n, dtype=np.int32) + 1 for n in (3, 9, 17, 4, 30, 5)]
    targets = np.arange(6, dtype=np.int32)
    seen = []
    for features, y in training.training_dataset(ids, targets, batch_size=2, pad_id=0, seed=0):
        mask, width = features["attention_mask"].numpy(), features["input_ids"].shape[1]
        assert width % 8 == 0 and width - mask.sum(axis=1).max() < 8
        for row, label in zip(mask, y.numpy()):
            assert row.sum() == len(ids[label])  # each row keeps its own text and label
        seen += y.numpy().tolist()
    assert sorted(seen) == list(range(6))


def test_sorted_batches_cover_every_text_once_shortest_first():
    ids = [np.full(n, n, dtype=np.int32) for n in (5, 1, 9, 3)]
    seen = list(training.sorted_batches(ids, batch_size=3, pad_id=0))
    assert [index.tolist() for index, _ in seen] == [[1, 3, 0], [2]]
    first = seen[0][1]["attention_mask"].sum(axis=1).tolist()
    assert first == [1, 3, 5]


def test_warmup_then_linear_decay():
    schedule = training.WarmupLinearDecay(1e-3, total_steps=100, warmup_steps=10)
    values = [float(schedule(tf.constant(s))) for s in (0, 5, 10, 55, 100)]
    np.testing.assert_allclose(values, [0, 5e-4, 1e-3, 5e-4, 0], atol=1e-9)


def test_optimizer_clips_and_skips_decay_of_layernorm_and_bias():
    opt = training.make_optimizer(2e-5, total_steps=100)
    assert opt.global_clipnorm == 1.0 and opt.weight_decay == 0.01
    assert {"bias", "LayerNorm", "layer_norm"} <= set(opt._exclude_from_weight_decay_names)
