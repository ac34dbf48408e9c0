"""Fixed-key hashing of string ids, vectorised over Arrow buffers (no Python objects).

:mod:`abmkit.scale` sends every account to a partition by a hash of its id, for
every touch of 10^8. Python-level hashing (``pd.util.hash_array`` needs one Python
string per value) or hash *tables* (their cost per row grows with the number of
distinct ids once they outgrow the CPU caches) would make partitioning slower per
row as the data grows. :func:`string_hash` reads each id 8 bytes at a time straight
from the Arrow buffers and mixes the words with splitmix64: a constant cost per row,
the same value in every process, run and machine (no per-process salt).

Example
-------
>>> import pyarrow as pa
>>> h = string_hash(pa.array(["acme", "globex", "acme"]))
>>> bool(h[0] == h[2]) and bool(h[0] != h[1])
True
"""
from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
#: low-byte masks: _MASKS[k] keeps the first k bytes of a little-endian word
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)

__all__ = ["string_hash", "as_arrow_strings", "mix"]


def mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, in place (uint64 arithmetic wraps by design)."""
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def as_arrow_strings(values):
    """``values`` (Arrow array / chunked array, numpy or pandas strings) as one Arrow
    string array; missing values stay null."""
    import pyarrow as pa
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        return values if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) \
            else values.cast(pa.string())
    arr = np.asarray(values, dtype=object)
    return pa.array(arr, pa.string(), from_pandas=True)


def string_hash(values, salt: int = 0) -> np.ndarray:
    """64-bit hash of every string (UTF-8 bytes and length), as a uint64 array.

    Parameters
    ----------
    values : Arrow array, numpy array or sequence of str
    salt : int
        a different salt gives an independent hash (used to re-hash on the rare
        collision of two ids in a lookup table).

    Returns
    -------
    ndarray of uint64
        nulls and ``""`` hash to the same value; callers treat missing ids apart.

    Example
    -------
    >>> import pyarrow as pa
    >>> string_hash(pa.array(["a1", "a2"])).dtype
    dtype('uint64')
    """
    import pyarrow as pa
    arr = as_arrow_strings(values)
    n = len(arr)
    if not n:
        return np.zeros(0, np.uint64)
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())  # int64 offsets, one code path
    _, off_buf, data_buf = arr.buffers()
    offs = np.frombuffer(off_buf, np.int64, n + 1, arr.offset * 8)
    lo, hi = int(offs[0]), int(offs[-1])
    # 8 spare zero bytes so every 8-byte window read below stays inside the buffer
    data = np.zeros(hi - lo + 8, np.uint8)
    if hi > lo:
        data[:hi - lo] = np.frombuffer(data_buf, np.uint8, hi - lo, lo)
    # overlapping unaligned little-endian words: words[i] = bytes i..i+7
    words = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    start = offs[:-1] - lo
    lens = np.diff(offs)
    with np.errstate(over="ignore"):
        h = mix((lens.astype(np.uint64) + np.uint64(1)) * _GOLDEN + np.uint64(salt))
        for j in range(0, int(lens.max()), 8):
            rem = np.minimum(lens - j, 8)
            if rem.min() > 0:  # every string still has bytes here (ids of one length)
                h ^= words[start + j] & _MASKS[rem]
                h = mix(h) + _GOLDEN
            else:
                live = np.flatnonzero(rem > 0)
                w = words[start[live] + j] & _MASKS[rem[live]]
                h[live] = mix(h[live] ^ w) + _GOLDEN
        return mix(h)
