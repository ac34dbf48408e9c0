"""Fuzzy-name ambiguity margin (DESIGN §2, rule 4) with hand-computed scores.

The best account must score >= ``fuzzy_threshold`` and every other account must
score MORE than ``ambiguity_margin`` below it; a runner-up exactly ``margin`` below,
or one below the threshold but within the margin, makes the name ambiguous.

Query "Wolfram Analytics Partnrs" (normalised "wolfram analytics partnrs", 25 chars):
- "Wolfram Analytics Partners" (26 chars): one insertion, 25 common characters,
  ratio = 100 * 2 * 25 / (25 + 26) = 100 * 50 / 51 = 98.0392
- "Wolfram Analytic Partner" (24 chars): longest common subsequence
  "wolfram analytic " + "partnr" = 23 characters,
  ratio = 100 * 2 * 23 / (25 + 24) = 100 * 46 / 49 = 93.8776
so the gap is 4.1617 points.

Written to kill sign flips of the margin in ``abmkit.mapping``: in ``_decide``'s
"within the margin of the best" filter (``best - margin - 1e-9``: the margin and
its tie tolerance) and in the candidate cut-off ``threshold - margin``.
"""
from __future__ import annotations

import pandas as pd
import pytest

from abmkit.mapping import map_contacts, name_scores

BEST, RUNNER_UP = 100 * 50 / 51, 100 * 46 / 49
QUERY = "Wolfram Analytics Partnrs"
ACC = pd.DataFrame({"account_id": ["w1", "w2", "z9"],
                    "account_name": ["Wolfram Analytics Partners", "Wolfram Analytic Partner", "Zenith Foods"]})


def _map(**kw) -> pd.Series:
    out = map_contacts(pd.DataFrame({"contact_id": ["c1"], "company_name": [QUERY]}), ACC, **kw)
    assert len(out) == 1
    return out.iloc[0]


def _scores() -> tuple[float, float]:
    a, b = name_scores(["wolfram analytics partnrs"] * 2, ["wolfram analytics partners", "wolfram analytic partner"])
    return float(a), float(b)


def test_hand_computed_scores():
    a, b = _scores()
    assert a == pytest.approx(BEST, abs=1e-4) and b == pytest.approx(RUNNER_UP, abs=1e-4)
    assert a - b == pytest.approx(4.1617, abs=1e-3)


@pytest.mark.parametrize("margin, expected", [
    (2.0, ("w1", "fuzzy_name", "name_fuzzy")),         # the default: runner-up 4.16 below -> unique
    (4.0, ("w1", "fuzzy_name", "name_fuzzy")),         # still outside the margin
    (4.5, (None, "unmatched", "ambiguous_name: w1;w2")),   # within the margin
    (10.0, (None, "unmatched", "ambiguous_name: w1;w2")),
])
def test_runner_up_within_or_outside_the_margin(margin, expected):
    r = _map(ambiguity_margin=margin)
    assert (r.account_id, r.method, r.reason) == expected
    assert r.score == pytest.approx(BEST, abs=1e-4)   # the best score is reported either way
    if r.account_id is None:
        assert r.candidate_account_ids == "w1;w2" and r.confidence == 0.0
    else:
        assert r.confidence == pytest.approx(BEST / 100, abs=1e-6) and r.matched_on == "Wolfram Analytics Partners"


def test_runner_up_exactly_margin_below_is_ambiguous():
    a, b = _scores()
    # "every other account must score MORE than ambiguity_margin below": a gap equal
    # to the margin is not enough (the 1e-9 tolerance absorbs the float rounding of a - b)
    assert _map(ambiguity_margin=a - b).reason == "ambiguous_name: w1;w2"
    assert _map(ambiguity_margin=a - b - 1e-6).account_id == "w1"


def test_runner_up_below_threshold_but_within_margin_is_still_ambiguous():
    # threshold 95: the runner-up (93.88) fails the threshold on its own, but it is within
    # the margin (5) of the best (98.04), so the best is not unique
    r = _map(fuzzy_threshold=95, ambiguity_margin=5)
    assert (r.account_id, r.reason) == (None, "ambiguous_name: w1;w2")
    # margin 3 < gap 4.16: unique
    r = _map(fuzzy_threshold=95, ambiguity_margin=3)
    assert (r.account_id, r.reason) == ("w1", "name_fuzzy")
    # the best itself below the threshold: no match, whatever the margin
    assert _map(fuzzy_threshold=98.5, ambiguity_margin=1).reason == "no_match"


def test_margin_also_decides_among_accounts_sharing_an_email_domain():
    acc = ACC.assign(domain=["wolfram-partners.com", "wolfram-partners.com", "zenith-foods.com"])
    con = pd.DataFrame({"contact_id": ["c1"], "email": ["ann@wolfram-partners.com"], "company_name": [QUERY]})
    r = map_contacts(con, acc, ambiguity_margin=2.0).iloc[0]
    assert (r.account_id, r.reason) == ("w1", "shared_domain_resolved_by_name")
    r = map_contacts(con, acc, ambiguity_margin=4.5).iloc[0]
    assert (r.account_id, r.reason) == (None, "ambiguous_domain: w1;w2")
