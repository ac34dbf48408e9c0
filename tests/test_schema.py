import pandas as pd
import pytest

from abmkit import Dataset, SchemaError, load, save
from abmkit.schema import CHANNELS, coerce_table, empty_table, validate_table


def _touches(**over):
    base = {"touchpoint_id": ["t1", "t2"], "occurred_at": ["2026-01-01T10:00:00Z", "2026-01-02T00:00:00+02:00"],
            "channel": ["email", "display"], "touch_type": ["email_click", "impression"],
            "contact_id": ["c1", None], "account_id": [None, "a1"]}
    base.update(over)
    return pd.DataFrame(base)


def test_coerce_gives_canonical_dtypes_and_utc():
    out = validate_table(_touches(), "touchpoints")
    assert str(out["occurred_at"].dtype) == "datetime64[ns, UTC]"
    assert out["occurred_at"].iloc[1] == pd.Timestamp("2026-01-01T22:00:00Z")
    assert list(out["channel"].cat.categories) == list(CHANNELS)
    assert out["campaign_id"].isna().all() and out["engagement_seconds"].dtype == "float64"


def test_missing_required_column_names_table_and_found_columns():
    with pytest.raises(SchemaError, match=r"touchpoints.*\['occurred_at'\].*columns found"):
        coerce_table(_touches().drop(columns="occurred_at"), "touchpoints")


def test_unknown_channel_names_rows_and_fix():
    with pytest.raises(SchemaError, match=r"channel.*1 value.*row 1: 'tv'.*Map source labels"):
        validate_table(_touches(channel=["email", "tv"]), "touchpoints")


def test_duplicate_keys_and_orphan_touch_rejected():
    with pytest.raises(SchemaError, match="unique keys"):
        validate_table(_touches(touchpoint_id=["t1", "t1"]), "touchpoints")
    with pytest.raises(SchemaError, match="tied to a contact or an account"):
        validate_table(_touches(account_id=[None, None]), "touchpoints")


def test_naive_timestamps_refused():
    df = _touches(occurred_at=pd.to_datetime(["2026-01-01", "2026-01-02"]))
    with pytest.raises(SchemaError, match="naive"):
        coerce_table(df, "touchpoints")


def test_ids_stay_strings_and_bools_parse():
    acc = pd.DataFrame({"account_id": [7, 8], "account_name": ["A", "B"], "is_target": ["yes", "0"], "tier": ["1", None]})
    out = validate_table(acc, "accounts")
    assert out["account_id"].tolist() == ["7", "8"]
    assert out["is_target"].tolist() == [True, False]
    assert out["tier"].dtype == "Int64" and out["tier"].iloc[0] == 1


def test_save_load_roundtrip(tmp_path):
    ds = Dataset.from_frames(
        accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"]}),
        touchpoints=_touches())
    save(ds, tmp_path)
    back = load(tmp_path)
    pd.testing.assert_frame_equal(back.touchpoints, ds.touchpoints)
    assert len(back.revenue) == 0 and list(back.revenue.columns) == list(empty_table("revenue").columns)


def test_load_missing_table_says_what_is_needed(tmp_path):
    with pytest.raises(FileNotFoundError, match="accounts.parquet is missing"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "nope")


def test_duplicate_index_labels_do_not_corrupt_ids():
    df = _touches()
    df.index = [0, 0]
    out = validate_table(df, "touchpoints")
    assert out["touchpoint_id"].tolist() == ["t1", "t2"] and out["account_id"].tolist() == [None, "a1"]
