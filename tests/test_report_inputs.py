"""The report fingerprints every input it reads: the column map and the picklist tables an
adapter's map reads (a table edited during the run fails the run instead of mixing states)."""
from __future__ import annotations

from pathlib import Path

import yaml

from abmkit.clean.colmap import presets_dir
from abmkit.report import _picklist_files


def test_picklist_tables_of_a_map_copy_are_inputs(tmp_path):
    preset = yaml.safe_load((presets_dir() / "salesforce.yaml").read_text())
    (tmp_path / "types.yaml").write_text((presets_dir() / "salesforce_campaign_type.yaml").read_text())
    preset["picklists"]["campaign_type"] = "types.yaml"
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(preset))
    files = {p.resolve() for p in _picklist_files(str(tmp_path / "map.yaml"))}
    assert (tmp_path / "types.yaml").resolve() in files                                  # the user's copy
    assert (presets_dir() / "salesforce_lead_status.yaml").resolve() in files             # shipped defaults still read
    assert len(files) == 5


def test_marketing_automation_presets_name_their_tables():
    names = {Path(p).name for p in _picklist_files("pardot")}
    assert names == {"pardot_activity_type.yaml", "pardot_campaign_channel.yaml"}


def test_a_map_without_an_adapter_has_no_picklist_tables(tmp_path):
    (tmp_path / "map.yaml").write_text("tables:\n  accounts:\n    file: a.csv\n    columns: {account_id: Id}\n")
    assert _picklist_files(str(tmp_path / "map.yaml")) == []
    (tmp_path / "map.yaml").write_text("adapter: hubspot\ntables:\n  accounts:\n    file: a.csv\n")
    assert len(_picklist_files(str(tmp_path / "map.yaml"))) >= 3          # the same map with an adapter has some
