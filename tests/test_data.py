"""Datasets: reading, label ids, stratified splits and subsets, bad files, tokenisation cache."""

import gzip
import json

import numpy as np
import pytest

from common.errors import ConfigError, DataError
from common.paths import resolve_data_dir
from trainables.data.batches import ClassAwareBatches, RandomBatches
from trainables.data.corpus import load_corpus
from trainables.data.inputs import TokenInputs
from trainables.data.reader import read_split
from trainables.data.splits import make_splits, validation_split


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as handle:
        for row in rows:
            handle.write(row if isinstance(row, str) else json.dumps(row))
            handle.write("\n")


def test_real_dataset_loads_with_sorted_label_ids(data_dir):
    corpus = load_corpus("r8", data_dir)
    assert len(corpus.train_labels) == 5485 and len(corpus.test_labels) == 2189
    assert list(corpus.label_names) == sorted(corpus.label_names)
    assert corpus.label_names[np.bincount(corpus.train_labels).argmax()] == "earn"


def test_validation_split_is_stratified_seeded_and_keeps_singletons_in_train(data_dir):
    corpus = load_corpus("r52", data_dir)
    splits = make_splits(corpus, val_fraction=0.1, split_seed=0)
    assert len(splits.val) == round(0.1 * len(corpus.train_labels))
    assert not set(splits.train) & set(splits.val)
    train_counts = np.bincount(corpus.train_labels[splits.train], minlength=52)
    assert train_counts.min() >= 1, "a class with one document must stay in train"
    full = np.bincount(corpus.train_labels, minlength=52)
    val_counts = np.bincount(corpus.train_labels[splits.val], minlength=52)
    assert np.all(np.abs(val_counts - 0.1 * full) <= 1)
    again = make_splits(corpus, val_fraction=0.1, split_seed=0)
    other = make_splits(corpus, val_fraction=0.1, split_seed=1)
    assert np.array_equal(splits.val, again.val) and not np.array_equal(splits.val, other.val)


def test_subsets_are_stratified_and_cover_every_class(data_dir):
    corpus = load_corpus("r52", data_dir)
    splits = make_splits(corpus, val_fraction=0.1, split_seed=0, train_size=104, eval_size=60)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (104, 60, 60)
    assert len(np.unique(corpus.train_labels[splits.train])) == 52
    with pytest.raises(ConfigError, match="train_size >= 52"):
        make_splits(corpus, val_fraction=0.1, split_seed=0, train_size=20)


def test_small_validation_split_leaves_each_class_a_training_example():
    labels = np.array([0] * 9 + [1] * 2 + [2])
    train, val = validation_split(labels, 3, 0.5, seed=0)
    assert set(np.unique(labels[train])) == {0, 1, 2}
    assert len(val) == 6


def test_unknown_dataset_names_the_known_ones(data_dir):
    with pytest.raises(DataError, match=r"unknown dataset 'r9' \(did you mean 'r8'\?\)"):
        load_corpus("r9", data_dir)


def test_missing_data_dir_says_how_to_fix(tmp_path):
    with pytest.raises(DataError, match="gloss data download"):
        resolve_data_dir(tmp_path / "nowhere")


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad" / "train.jsonl.gz"
    write_jsonl(
        path, [{"text": "fine", "label": "a"}, '{"text": "broken", "label": ', {"text": "x", "label": "b"}]
    )
    with pytest.raises(DataError, match=r"train\.jsonl\.gz:2: not valid JSON"):
        read_split(path)


@pytest.mark.parametrize(
    ("row", "problem"),
    [({"text": "no label"}, "'label'"), ({"text": "", "label": "a"}, "non-empty"), (["a", "b"], "'text'")],
)
def test_bad_rows_are_refused(tmp_path, row, problem):
    path = tmp_path / "d" / "train.jsonl.gz"
    write_jsonl(path, [{"text": "ok", "label": "a"}, row])
    with pytest.raises(DataError, match=f":2: .*{problem}"):
        read_split(path)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "d" / "train.jsonl.gz"
    write_jsonl(path, [])
    with pytest.raises(DataError, match="no examples"):
        read_split(path)


def test_user_csv_dataset_and_unseen_test_label(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "train.csv").write_text('text,label\n"a, quoted text",pos\nplain,neg\n')
    (folder / "test.csv").write_text("text,label\nsomething,pos\n")
    corpus = load_corpus("mine", tmp_path)
    assert corpus.label_names == ("neg", "pos")
    assert corpus.train_texts[0] == "a, quoted text"
    (folder / "test.csv").write_text("text,label\nsomething,neutral\n")
    with pytest.raises(DataError, match="test label 'neutral' never occurs in training"):
        load_corpus.__wrapped__("mine", tmp_path)


def test_csv_without_label_column_is_refused(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,category\nhello,a\n")
    with pytest.raises(DataError, match="lacks label"):
        read_split(path)


def test_random_batches_cover_each_example_once_and_replay_by_epoch():
    batches = RandomBatches(np.zeros(50, dtype=int), batch_size=16, seed=3)
    first = batches.epoch(1)
    assert sorted(np.concatenate(first)) == list(range(50))
    assert [len(b) for b in first] == [16, 16, 16, 2]
    assert all(np.array_equal(a, b) for a, b in zip(first, batches.epoch(1), strict=True))
    assert not np.array_equal(first[0], batches.epoch(2)[0])


def test_class_aware_batches_repeat_classes():
    labels = np.repeat(np.arange(52), 10)
    for batch in ClassAwareBatches(labels, batch_size=32, per_class=4, seed=0).epoch(1):
        counts = np.bincount(labels[batch])
        assert len(batch) == 32
        assert counts[counts > 0].min() >= 4
        assert len(set(batch)) == len(batch)


def test_class_aware_batches_draw_classes_in_proportion_to_their_size():
    labels = np.concatenate([np.zeros(1000, dtype=int), np.repeat(np.arange(1, 11), 100)])
    batches = ClassAwareBatches(labels, batch_size=8, per_class=4, seed=0).epoch(1)
    appearances = np.bincount([c for b in batches for c in np.unique(labels[b])], minlength=11)
    assert appearances[0] > 3 * appearances[1:].mean(), "the class with half the data appears most"
    assert (appearances[1:] > 0).all() and all(len(np.unique(labels[b])) == 2 for b in batches)


def test_class_aware_batches_with_two_classes_hold_both_equally():
    labels = np.array([0] * 900 + [1] * 100)
    for batch in ClassAwareBatches(labels, batch_size=32, per_class=4, seed=0).epoch(1):
        assert np.bincount(labels[batch]).tolist() == [16, 16]


def test_dynamic_padding_pads_to_the_longest_in_batch():
    inputs = TokenInputs([np.array([1, 2, 3]), np.array([4]), np.arange(10)], np.zeros(3, int), pad_id=0)
    batch = inputs.batch(np.array([0, 1]))
    assert batch["input_ids"].shape == (2, 3)
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_length_grouped_batches_cover_every_example_with_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 128, size=1000)
    labels = np.zeros(1000, dtype=int)
    grouped = RandomBatches(labels, batch_size=16, seed=0, lengths=lengths).epoch(1)
    plain = RandomBatches(labels, batch_size=16, seed=0).epoch(1)
    assert sorted(np.concatenate(grouped)) == list(range(1000))

    def padding(batches):
        return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)

    assert padding(grouped) < 0.2 * padding(plain)
    again = RandomBatches(labels, batch_size=16, seed=0, lengths=lengths).epoch(1)
    assert all(np.array_equal(a, b) for a, b in zip(grouped, again, strict=True))
