"""The sequential influence design (:mod:`abmkit.sequential`) on a partitioned dataset.

Not a public API: :func:`abmkit.uplift.campaign_influence` with ``design="sequential"``
calls it (through :func:`abmkit.scale.kernels.campaign_influence`) when it receives a
partitioned dataset.

What the design reads, per transition s→s+1 (``uplift.campaign_influence`` →
``SequentialCohort`` → ``sequential_estimate``):

* every account's entry into s and into s+1 (the stage history), and its covariates
  (the accounts table);
* per (account, campaign): the offset of the campaign's *first* touch in
  ``[entry into s, entry + exposure_days)``, nothing else of the touches
  (``uplift._first_exposures``). An account touched on day k is treated in trial k,
  a control in the trials before it and censored from k on; touches after the first
  one, or after the exposure window, change none of these. Channel rows keep the
  landmark design, which reads the same per (account, channel);
* the campaigns' names and channels (the campaigns table; the first touch's channel
  for a campaign missing from it).

So the partitions' reduced touch table of the landmark design
(:func:`abmkit.scale.kernels._part_influence_inputs`: the first touch of every campaign
and channel in every account's exposure windows, plus the first touch of each campaign
and channel) holds everything the sequential design reads, and the statistics run once
on the driver, with the kit's own function, on those account-sized inputs: the table
equals the in-memory one (tests/test_scale_sequential.py). The driver never holds the
touch table.
"""
from __future__ import annotations


def campaign_influence(data, **kwargs):
    """:func:`abmkit.uplift.campaign_influence` with ``design="sequential"`` on the
    partitions of ``data`` (a :class:`~abmkit.scale.PartitionedDataset` or what
    :func:`abmkit.scale.partitions` takes): the stage history and the reduced touch table
    are built per partition and gathered, the sequential statistics run once.

    Returns
    -------
    abmkit.uplift.InfluenceResult
        the in-memory table (campaign rows by the sequential design, channel rows by
        the landmark design), ``params["design"] == "sequential"``.
    """
    from .kernels import _campaign_influence, _progress
    kwargs["progress"] = _progress(data, kwargs.get("progress"))
    return _campaign_influence(data, design="sequential", **kwargs)
