"""abmkit.hashing: the fixed-key string hash that places accounts in partitions."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from abmkit.hashing import string_hash

#: pinned values: a change re-partitions every folder written before it
PINNED = {"acme": 133897214428346718, "A1": 12437897687676105536, "": 5197578548964807871,
          "Zürich GmbH": 6696161810647088946, "a" * 17: 16050116803691930344}


def test_pinned_values_are_stable():
    assert string_hash(list(PINNED)).tolist() == list(PINNED.values())


def test_same_value_whatever_the_container():
    ids = ["a", "bb", "", "ccc" * 9, "é", "x\0y", "12345678", "123456789"]
    ref = string_hash(ids)
    arr = pa.array(ids)
    for form in (np.array(ids, dtype=object), arr, arr.cast(pa.large_string()),
                 pa.chunked_array([arr.slice(0, 3), arr.slice(3)]), arr.dictionary_encode()):
        assert string_hash(form).tolist() == ref.tolist()
    # a slice reads its own bytes (buffer offsets honoured)
    assert string_hash(arr.slice(2, 4)).tolist() == ref[2:6].tolist()


def test_bytes_and_length_both_count():
    # trailing NULs and 8-byte boundaries are where a word-wise hash could collide
    ids = ["a", "a\0", "a\0\0", "abcdefgh", "abcdefgh\0", "abcdefghi", "", "\0"]
    h = string_hash(ids)
    assert len(set(h.tolist())) == len(ids)


def test_no_collisions_and_even_spread():
    ids = np.array([f"001{i:07d}" for i in range(200_000)] + [f"acc-{i}" for i in range(200_000)], dtype=object)
    h = string_hash(ids)
    assert len(np.unique(h)) == len(ids)
    counts = np.bincount((h % np.uint64(16)).astype(np.int64), minlength=16)
    expected = len(ids) / 16
    assert counts.min() > 0.97 * expected and counts.max() < 1.03 * expected


def test_salt_gives_another_hash():
    assert (string_hash(["a", "b"], salt=1) != string_hash(["a", "b"])).all()


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_inputs(n):
    assert len(string_hash(["z"] * n)) == n
