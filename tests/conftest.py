"""Shared fixtures: the small generated sample (owned by the sample-data helper).

``small_sample`` is ``abmkit.sample.generate(n_accounts=300, seed=1)`` (session
scope: built once per test session, ~2 s); ``small_sample_dir`` is the same sample
written with :func:`abmkit.sample.write_sample` (``raw/``, ``canonical/``,
``truth/``) into a session temporary folder. Treat both as read-only.
"""
from __future__ import annotations

import pytest

SMALL_N_ACCOUNTS = 300
SMALL_SEED = 1


@pytest.fixture(scope="session")
def small_sample():
    from abmkit.sample import generate
    return generate(n_accounts=SMALL_N_ACCOUNTS, seed=SMALL_SEED)


@pytest.fixture(scope="session")
def small_sample_dir(tmp_path_factory):
    from abmkit.sample import write_sample
    return write_sample(tmp_path_factory.mktemp("sample"), seed=SMALL_SEED, n_accounts=SMALL_N_ACCOUNTS)
