"""Issue 17, findings 3 and 8: masked ids cannot be reversed, personal data stays private.

3. Masked contact ids were an unsalted sha256 cut to 10 hex characters: hashing every
   candidate id of the CRM's pattern reversed them all. Now HMAC-SHA256 with a
   per-installation secret (abmkit.masking): the same attack finds nothing, the key
   reproduces them, and a private lookup (masked id -> CRM id) sits next to the data.
8. Personal data under ``--out`` was world-readable and stayed in ``.failed/`` and
   ``.staging-*``; ``unmapped.csv`` was not formula-neutralised. Now private files are
   0600 in 0700 folders, leftovers are purged after a success and every CSV is neutralised.

Every test points ``ABMKIT_SECRET_FILE`` at a tmp file (conftest.py does it for the whole
session as well): the real ``~/.config/abmkit`` is never touched.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import abmkit
from abmkit import masking, outputs, private, report
from abmkit.clean import clean_exports

MESSY_BASIC = Path(__file__).parent / "data" / "messy" / "basic"
RISKY = ("=", "+", "-", "@", "\t", "\r")


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture
def key_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "keys" / "masking.key"
    monkeypatch.setenv(masking.ENV_VAR, str(path))
    return path


# ------------------------------------------------------------------ 3. irreversible masks
def _crm_ids(n: int = 300, seed: int = 17) -> list[str]:
    """ids of the sample CRM's pattern: "C" + 6 digits (a space of 10**6 candidates)."""
    return [f"C{i:06d}" for i in np.random.default_rng(seed).choice(1_000_000, n, replace=False)]


def _reverse_by_candidates(hex_masks: set[str], digest) -> dict[str, str]:
    """The attack of the issue: hash every candidate id of the pattern, keep those whose
    digest starts with a mask (any truncation length)."""
    lengths = sorted({len(m) for m in hex_masks})
    found = {}
    for i in range(1_000_000):
        cand = f"C{i:06d}"
        h = digest(cand.encode())
        for n in lengths:
            if h[:n] in hex_masks:
                found[h[:n]] = cand
    return found


def test_masked_ids_cannot_be_reversed_by_hashing_candidates(key_file):
    ids = _crm_ids()
    masked = outputs.mask_ids(pd.Series(ids))
    assert masked.str.fullmatch(r"c_[0-9a-f]{16}").all() and masked.nunique() == len(ids)
    hex_masks = set(masked.str[2:])
    # the attacker's method works: it reverses every id of the old scheme (sha256, 10 hex)
    old = {hashlib.sha256(i.encode()).hexdigest()[:10] for i in ids}
    assert len(_reverse_by_candidates(old, lambda b: hashlib.sha256(b).hexdigest())) == len(ids)
    # ... and finds nothing with the keyed masks, whatever unkeyed hash it tries
    for alg in ("sha256", "sha1", "md5"):
        h = getattr(hashlib, alg)
        assert _reverse_by_candidates(hex_masks, lambda b, h=h: h(b).hexdigest()) == {}, alg
    # with the installation's key, the masks are reproduced (and the lookup resolves them)
    key = masking.load_key()
    assert len(key) >= 32
    again = ["c_" + hmac.new(key, i.encode(), "sha256").hexdigest()[:16] for i in ids]
    assert masked.tolist() == again


def test_mask_ids_keeps_missing_values_and_is_stable(key_file):
    s = pd.Series(["C000001", None, "C000002", "C000001", np.nan], dtype=object)
    m = outputs.mask_ids(s)
    assert m.isna().tolist() == [False, True, False, False, True]
    assert m[0] == m[3] != m[2]
    assert outputs.mask_ids(pd.Series(["C000001"])).iloc[0] == m[0]
    assert outputs.mask_ids(pd.Series(["C000001"]), key=b"k" * 32).iloc[0] != m[0]
    assert outputs.privacy_safe(pd.DataFrame({"contact_id": ["C000001"], "email": ["a@b.co"]})
                                ).to_dict("list") == {"contact_id": [m[0]]}


_MASK_IN_CHILD = ("import pandas as pd; from abmkit.outputs import mask_ids; "
                  "print(','.join(mask_ids(pd.Series(['C000001', 'C123456', 'C999999']))))")


def _child_masks(key: Path) -> str:
    env = dict(os.environ, **{masking.ENV_VAR: str(key)})
    return subprocess.run([sys.executable, "-c", _MASK_IN_CHILD], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_same_key_same_masks_across_processes_other_key_other_masks(tmp_path):
    k1, k2 = tmp_path / "one" / "masking.key", tmp_path / "two" / "masking.key"
    # two processes creating the key at the same time agree on one key
    env = dict(os.environ, **{masking.ENV_VAR: str(k1)})
    procs = [subprocess.Popen([sys.executable, "-c", _MASK_IN_CHILD], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate()[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and outs[0] == outs[1] != ""
    first = _child_masks(k1)
    assert first == outs[0] == _child_masks(k1)         # same key file: same masks in every run
    assert _child_masks(k2) != first                     # another installation: other masks
    assert masking.rotate_key(k1) == k1 and _child_masks(k1) != first   # rotation changes them


# ------------------------------------------------------------------ the key file
def test_key_file_is_created_private_outside_the_report(tmp_path, monkeypatch):
    monkeypatch.delenv(masking.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    expected = tmp_path / "xdg" / "abmkit" / "masking.key"
    assert masking.key_path() == expected
    outputs.mask_ids(pd.Series(["C000001"]))
    assert expected.is_file()
    assert _mode(expected) == 0o600 and _mode(expected.parent) == 0o700 and _mode(expected.parent.parent) == 0o700
    assert len(bytes.fromhex(expected.read_text().strip())) == 32
    assert [p.name for p in expected.parent.iterdir()] == ["masking.key"]   # no temporary file left
    # a relative XDG_CONFIG_HOME is ignored (XDG spec): the home folder's .config
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert masking.key_path() == tmp_path / "home" / ".config" / "abmkit" / "masking.key"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_key_readable_by_others_is_refused(key_file, mode):
    masking.load_key()
    os.chmod(key_file, mode)
    with pytest.raises(masking.MaskingKeyError, match=r"chmod 600 .*masking\.key"):
        outputs.mask_ids(pd.Series(["C000001"]))
    os.chmod(key_file, 0o600)
    assert outputs.mask_ids(pd.Series(["C000001"])).iloc[0].startswith("c_")


def test_bad_key_file_is_refused(key_file):
    key_file.parent.mkdir(mode=0o700)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"too short\n")
    os.close(fd)
    with pytest.raises(masking.MaskingKeyError, match="does not hold a key"):
        masking.load_key()


# ------------------------------------------------------------------ 8. private data on disk
def _assert_private_tree(root: Path) -> None:
    assert _mode(root) == 0o700, root
    for p in root.rglob("*"):
        want = 0o700 if p.is_dir() else 0o600
        assert _mode(p) == want, f"{p.relative_to(root)}: {oct(_mode(p))}"


def test_cleaned_and_resolved_data_are_private(key_file, tmp_path):
    out = tmp_path / "reports"
    data_dir = out / ".data" / "2026Q3"
    result = clean_exports(MESSY_BASIC, MESSY_BASIC / "column_map.yaml")
    assert result.save(data_dir) == data_dir
    abmkit.prepare(abmkit.load(data_dir)).save(data_dir)
    names = {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*")}
    assert {"contacts.parquet", "rejects.parquet", "rejects.csv", "unmapped.csv", "contact_id_lookup.csv",
            "resolved", "resolved/contact_accounts.parquet", "resolved/resolved.json"} <= names
    assert not [n for n in names if ".tmp-" in n]
    _assert_private_tree(out / ".data")   # the .data root, created by the writer, too
    # the lookup resolves every masked id of a published table; it is not in the report
    report_dir = out / "2026Q3"
    table = outputs.save_table(result.dataset.contacts[["contact_id", "email", "persona"]], report_dir, "contacts")
    published = pd.read_csv(table, dtype=str)
    assert "email" not in published.columns
    resolved = masking.resolve_ids(published["contact_id"], data_dir)
    assert resolved["contact_id"].tolist() == result.dataset.contacts["contact_id"].astype(str).tolist()
    lookup = masking.read_lookup(data_dir)
    assert lookup["key_id"].unique().tolist() == [masking.key_id(masking.load_key())]
    assert not list(report_dir.rglob(masking.LOOKUP_FILE))
    # report files stay readable by others (they hold no personal data)
    assert _mode(table) == private.public_file_mode()   # 0644 under the usual umask 022


def test_private_dir_leaves_existing_folders_alone(tmp_path):
    os.chmod(tmp_path, 0o755)
    d = private.private_dir(tmp_path / "a" / "b")
    assert _mode(tmp_path) == 0o755 and _mode(tmp_path / "a") == 0o700 and _mode(d) == 0o700
    os.chmod(d, 0o755)
    private.private_dir(d)
    assert _mode(d) == 0o755
    private.private_dir(d, tighten=True)
    assert _mode(d) == 0o700


def test_secure_tree_and_purge_of_leftovers(tmp_path):
    out = tmp_path / "reports"
    leftovers = [out / ".failed" / "2026Q3" / "data" / "contacts.parquet",
                 out / ".staging-2026Q3-deadbeef" / "data" / "contacts.parquet",
                 out / ".data" / ".old-2026Q3-0123abcd" / "contacts.parquet"]
    kept = [out / ".failed" / "2026Q4" / "data" / "contacts.parquet",     # another period
            out / ".staging-2026Q4-deadbeef" / "data" / "contacts.parquet",  # may be running
            out / ".data" / "2026Q3" / "contacts.parquet",
            out / "2026Q3" / "index.html"]
    for p in leftovers + kept:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
        os.chmod(p, 0o644)
    private.secure_tree(out / ".data")
    _assert_private_tree(out / ".data")
    removed = private.purge_private_leftovers(out, "2026Q3")
    assert sorted(removed) == sorted([out / ".failed" / "2026Q3", out / ".staging-2026Q3-deadbeef",
                                      out / ".data" / ".old-2026Q3-0123abcd"])
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in kept)


# ------------------------------------------------------------------ every CSV is neutralised
def _cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [c for row in csv.reader(fh) for c in row]


def test_every_csv_the_kit_writes_is_neutralised(key_file, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(MESSY_BASIC, raw)
    contacts = raw / "crm_contacts.csv"
    contacts.write_bytes(contacts.read_bytes().replace(b"Astronaut", b"=cmd()"))   # an unmapped label
    result = clean_exports(raw, raw / "column_map.yaml")
    assert "=cmd()" in set(result.unmapped["label"])
    evil = "=HYPERLINK(\"http://x\",\"y\")"
    result = replace(result,
                     rejects=result.rejects.assign(reason=evil),
                     repairs=result.repairs.assign(raw_value="@SUM(1)"),
                     merged=result.merged.assign(source_file="+1+2"),
                     quality=result.quality.assign(table=result.quality["table"].astype("category")
                                                   .cat.rename_categories(lambda c: "-" + str(c))))
    out = result.save(tmp_path / "data")
    written = sorted(out.glob("*.csv"))
    assert {p.name for p in written} >= {"rejects.csv", "repairs.csv", "merged.csv", "unmapped.csv",
                                          "quality.csv", "contact_id_lookup.csv"}
    for p in written:
        bad = [c for c in _cells(p) if c.startswith(RISKY)]
        assert bad == [], (p.name, bad[:3])
    assert "'=cmd()" in _cells(out / "unmapped.csv") and f"'{evil}" in _cells(out / "rejects.csv")
    assert "'@SUM(1)" in _cells(out / "repairs.csv") and "'+1+2" in _cells(out / "merged.csv")
    assert pd.read_parquet(out / "rejects.parquet")["reason"].iloc[0] == evil   # parquet keeps raw values
    # the lookup, the report tables and write_csv: an id or a header that looks like a formula
    masking.write_lookup(["=cmd()", "C1"], tmp_path / "lk")
    assert [c for c in _cells(tmp_path / "lk" / masking.LOOKUP_FILE) if c.startswith(RISKY)] == []
    frame = pd.DataFrame({"=bad": ["-2+3"], "n": [-1]})
    for p in (outputs.save_table(frame, tmp_path / "rep", "t"), outputs.write_csv(frame, tmp_path / "w.csv")):
        assert _cells(p) == ["'=bad", "n", "'-2+3", "-1"], p   # numbers stay numbers


# ------------------------------------------------------------------ the report runner
def _standin(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    params = new_code_cell("raw_dir = None\ncolumn_map = None\ndata_dir = None\noutput_dir = None\nfail = False")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# Clean stand-in"), params, new_code_cell(
        "import pathlib, pandas as pd\n"
        "from abmkit.clean import clean_exports\n"
        "from abmkit.outputs import save_table\n"
        "result = clean_exports(raw_dir, column_map)\n"
        "result.save(data_dir)\n"
        "pd.DataFrame({'email': ['ann@example.com']}).to_parquet(pathlib.Path(data_dir) / 'extra.parquet')\n"
        "save_table(result.dataset.contacts[['contact_id', 'persona']], output_dir, 'contacts')\n"
        "if fail:\n"
        "    raise ValueError('injected failure')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(folder / "01_clean.ipynb"))
    return folder


def test_report_run_keeps_personal_data_private_and_purges_leftovers(tmp_path, capsys):

    # 2026Q1: a period with data in the export (a period without any touch or opportunity is refused, exit 2)
    notebooks, out = _standin(tmp_path / "notebooks"), tmp_path / "reports"
    fail = tmp_path / "fail.yaml"
    fail.write_text("fail: true\n")
    kw = dict(quarter="2026Q1", data=str(MESSY_BASIC), column_map=str(MESSY_BASIC / "column_map.yaml"),
              out_dir=str(out), notebooks_dir=notebooks, progress=False, jobs=1)
    assert report.run_report(params_file=str(fail), **kw) == 1
    failed = out / ".failed" / "2026Q1"
    assert (failed / "data" / "contacts.parquet").exists()
    assert _mode(failed) == 0o700                     # a failed run's data is private too
    crashed = out / ".staging-2026Q1-deadbeef"        # as a killed run leaves it
    (crashed / "data").mkdir(parents=True)
    (crashed / "data" / "contacts.parquet").write_text("x")

    assert report.run_report(**kw) == 0, capsys.readouterr().err
    _assert_private_tree(out / ".data")               # .data, .data/2026Q1, its files: 0700 / 0600
    assert (out / ".data" / "2026Q1" / "extra.parquet").exists()   # a notebook's own writer: tightened
    assert not failed.exists() and not list(out.glob(".staging-*"))
    lookup = masking.read_lookup(out / ".data" / "2026Q1")
    published = pd.read_csv(out / "2026Q1" / "tables" / "contacts.csv", dtype=str)
    assert set(published["contact_id"]) <= set(lookup["masked_id"])
    # the published report stays readable
    public = private.public_file_mode()                # 0644 under the usual umask 022
    assert _mode(out / "2026Q1") == public | 0o111 and _mode(out / "2026Q1" / "tables" / "contacts.csv") == public
