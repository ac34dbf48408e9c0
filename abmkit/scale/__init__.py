"""The partitioned (Dask) engine: data split into partitions of whole accounts.

The kit's analyses have one signature each and run on what they receive: an
in-memory :class:`~abmkit.prepared.ResolvedDataset` runs in pandas, a
:class:`PartitionedDataset` runs partition by partition on the active Dask client
(:mod:`abmkit.engine` dispatches). This package holds only what the partitioned
engine adds:

- :mod:`abmkit.scale.partition`: writing and reading partitioned folders
  (:func:`partition_by_account`, :func:`partitions`, :class:`PartitionedDataset`),
  Arrow I/O that never holds the whole touch table;
- :mod:`abmkit.scale.runtime`: the Dask client (:func:`client`) and running one task
  per partition with a progress bar;
- :mod:`abmkit.scale.kernels`: each heavy analysis as a per-account map and a reduce
  (called by the analyses, not a public API of its own);
- :mod:`abmkit.scale.facts`: what notebooks ask of the data besides the analyses
  (applicability facts about the touches, drill-down tables, the partitions holding
  given accounts), without the touch table in the driver.

Every heavy step is a map over accounts followed by a reduce. What is not a plain sum
is additive too: Markov transition *counts* add up over partitions and the chain is
solved once; the data-driven Shapley game is estimated once from the summed counts of
every channel set; KPI numerators and denominators add up; campaign influence reduces
the touches to the first exposure of each unit and account, and the statistics run
once on that. Stage history and MQA dates need the whole data's start and end: they
come from the partitioning manifest and every partition gets them.

Typical use::

    import abmkit
    from abmkit import attribution, progression
    data = abmkit.open_dataset("data/big/canonical", engine="dask")   # partitions written once, reused
    result = attribution.compare_models(data, ["linear", "markov"], n_boot=200)
    history = progression.stage_history(data)

See docs/scale.md for when to switch, pointing at a cluster, and memory sizing.

Example
-------
>>> import abmkit.scale as scale                                             # doctest: +SKIP
>>> parts = scale.partition_by_account(ds, 8, "/tmp/parts")                  # doctest: +SKIP
>>> abmkit.progression.stage_history(parts).table.head()                     # doctest: +SKIP
"""
from .partition import (MANIFEST, InMemoryError, InMemoryWarning, PartitionedDataset,  # noqa: F401
                        partition_by_account, partition_of, partitions)
from .kernels import ChannelCredits  # noqa: F401  (the result of the channel-credit kernel)
from .runtime import client  # noqa: F401

__all__ = ["partition_of", "partition_by_account", "PartitionedDataset", "partitions", "client", "MANIFEST",
           "InMemoryError", "InMemoryWarning"]
