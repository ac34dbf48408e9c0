"""Build the bad-input corpus: one folder per case (raw file(s) + column_map.yaml) and
MANIFEST.yaml listing, for each case, the files, the table, the column map used, the
expected outcome (asserted exactly by tests/test_bad_inputs.py) and a one-line
description.

The cases and their expected outcomes are written here by hand (the expectation is
what a careful analyst would want, not whatever the code happened to do); run

    .venv/bin/python tests/data/bad/build_corpus.py

after editing a case. Files are written byte for byte (encodings, BOMs, NUL bytes,
CR line endings are the point), so do not let an editor "fix" them. The 10 MB case is
not stored: its ``generator`` builds it at test time.

Expectation keys (all optional except ``outcome``):

- ``outcome``: error | clean | repaired | rejected | merged | mixed
- ``summary``: table -> [rows_in, rows_clean, rows_rejected, rows_merged]
- ``rejects``: exact list of [table, source_row, reason] (sorted)
- ``repairs``: exact list of [table, source_row, column, issue] (sorted)
- ``merged``: exact list of [table, source_row, kept_source_row] (sorted)
- ``values``: table -> column -> exact canonical values of the kept rows, in order
  (timestamps as ISO strings in UTC, missing as null)
- ``error``: fragments the CleanError message must contain (file, row, column, fix)
- ``kit_change``: the change to :mod:`abmkit.clean` this case drove (documentation)
"""
from __future__ import annotations

import codecs
import json
import shutil
from pathlib import Path

import yaml

HERE = Path(__file__).parent

# ------------------------------------------------------------------ column maps
TP_HEADER = "Touch ID,Timestamp,Channel,Type,Contact ID,Account ID,Campaign ID,Seconds"
TP_COLUMNS = {"touchpoint_id": "Touch ID", "occurred_at": "Timestamp", "channel": "Channel",
              "touch_type": "Type", "contact_id": "Contact ID", "account_id": "Account ID",
              "campaign_id": "Campaign ID", "engagement_seconds": "Seconds"}
ACC_COLUMNS = {"account_id": "Account ID", "account_name": "Account Name", "domain": "Website",
               "parent_account_id": "Parent ID", "employee_count": "Employees", "tier": "Tier",
               "icp_fit": "ICP Fit", "is_target": "Target"}
ACC_HEADER = "Account ID,Account Name,Website,Parent ID,Employees,Tier,ICP Fit,Target"
CON_COLUMNS = {"contact_id": "Contact ID", "email": "Email", "first_name": "First Name",
               "last_name": "Last Name", "title": "Title", "crm_account_id": "Account ID"}
CON_HEADER = "Contact ID,Email,First Name,Last Name,Title,Account ID"
CAM_COLUMNS = {"campaign_id": "Campaign ID", "campaign_name": "Name", "channel": "Channel",
               "start_date": "Start", "end_date": "End", "cost": "Cost"}
CAM_HEADER = "Campaign ID,Name,Channel,Start,End,Cost"
OPP_COLUMNS = {"opportunity_id": "Opp ID", "account_id": "Account ID", "created_at": "Created",
               "closed_at": "Closed", "is_closed": "Closed?", "is_won": "Won?", "amount": "Amount"}
OPP_HEADER = "Opp ID,Account ID,Created,Closed,Closed?,Won?,Amount"


def table_map(table: str, file: str, columns: dict, **opts) -> dict:
    return {"version": 1, "tables": {table: {"file": file, "columns": dict(columns), **opts}}}


def tp_map(file="touchpoints.csv", **opts):
    return table_map("touchpoints", file, TP_COLUMNS, **opts)


def lines(*rows: str, header: str = TP_HEADER, nl: str = "\n") -> str:
    return nl.join((header,) + rows) + nl


def utf8(text: str) -> bytes:
    return text.encode("utf-8")


T = "2026-03-01T15:00:00+00:00"   # the default touch time below, in UTC
GOOD = "2026-03-01 15:00,Email,Email Click,c1,a1,,30"


CASES: list[dict] = []


def case(name, description, files, column_map, table, expect):
    CASES.append({"case": name, "description": description, "files": files, "column_map": column_map,
                  "table": table, "expect": expect})


# ------------------------------------------------------------------ file structure
case("truncated_last_line",
     "export cut off mid-field (disk full / interrupted download): the last record has 2 of 8 fields",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", f"t2,{GOOD}")[:-1] + "\nt3,2026-03-0")},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [3, 2, 1, 0]},
      "rejects": [["touchpoints", 3, "malformed_row: 2 fields, header has 8"]],
      "values": {"touchpoints": {"touchpoint_id": ["t1", "t2"]}}})

case("truncated_inside_quotes",
     "export cut off inside a quoted field: the open quote swallows the rest of the file into one "
     "record, which is rejected whole (its raw text, including the swallowed line, is in the ledger)",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", 't2,"2026-03-01 15:00,Email,Email Click,c1,a1,,30',
                                    f"t3,{GOOD}"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [2, 1, 1, 0]},
      "rejects": [["touchpoints", 2, "malformed_row: 2 fields, header has 8"]],
      "ledger_raw_contains": {"2": ["t3"]},
      "values": {"touchpoints": {"touchpoint_id": ["t1"]}}})

case("semicolon_delimiter_auto",
     "European Excel export: ';' delimited, decimal commas; delimiter auto-sniffed",
     {"touchpoints.csv": utf8(lines("t1;2026-03-01 15:00;Email;Email Click;c1;a1;;12,5",
                                    "t2;2026-03-01 15:00;Email;Email Click;c1;a1;;1.234,5",
                                    header=TP_HEADER.replace(",", ";")))},
     tp_map(decimal=","), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [2, 2, 0, 0]},
      "values": {"touchpoints": {"touchpoint_id": ["t1", "t2"], "engagement_seconds": [12.5, 1234.5]}},
      "files": {"delimiter": [";"]}})

case("semicolon_file_comma_map",
     "';' file but the column map forces delimiter ',': the header reads as one column -> CleanError "
     "that names the file, the missing header and suggests the delimiter",
     {"touchpoints.csv": utf8(lines("t1;2026-03-01 15:00;Email;Email Click;c1;a1;;12",
                                    header=TP_HEADER.replace(",", ";")))},
     tp_map(delimiter=","), "touchpoints",
     {"outcome": "error", "error": ["touchpoints.csv", "'Touch ID'", "touchpoints.touchpoint_id",
                                    "Columns found", "delimiter"],
      "kit_change": "delimiter hint in the missing-column error"})

case("tab_delimited_auto", "tab-separated export (.csv name), delimiter auto-sniffed",
     {"touchpoints.csv": utf8(lines(f"t1\t2026-03-01 15:00\tEmail\tEmail Click\tc1\ta1\t\t30",
                                    header=TP_HEADER.replace(",", "\t")))},
     tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [1, 1, 0, 0]}, "files": {"delimiter": ["\t"]},
      "values": {"touchpoints": {"occurred_at": [T]}}})

case("pipe_delimited_auto", "pipe-delimited export, delimiter auto-sniffed",
     {"touchpoints.csv": utf8(lines("t1|2026-03-01 15:00|Email|Email Click|c1|a1||30",
                                    header=TP_HEADER.replace(",", "|")))},
     tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [1, 1, 0, 0]}, "files": {"delimiter": ["|"]}})

case("quoted_newlines",
     "CRLF export with a quoted line break and escaped quotes inside fields; the record after the "
     "multi-line one is still row 3 (a record is a row, not a physical line)",
     {"contacts.csv": utf8(lines('c1,ann@acme.com,Ann,Lee,"Head of\r\nMarketing",',
                                 'c2,bo@acme.com,Bo,Ng,"VP, ""Sales""",',
                                 "c3,cy(at)acme.com,Cy,Ho,CEO,", header=CON_HEADER, nl="\r\n"))},
     table_map("contacts", "contacts.csv", CON_COLUMNS), "contacts",
     {"outcome": "repaired", "summary": {"contacts": [3, 3, 0, 0]},
      "repairs": [["contacts", 3, "email", "invalid_email"]],
      "values": {"contacts": {"title": ["Head of\nMarketing", 'VP, "Sales"', "CEO"],
                              "email": ["ann@acme.com", "bo@acme.com", None]}}})

case("mixed_encodings",
     "cp1252 export with UTF-8 rows appended (two exports concatenated): each line is decoded with the "
     "encoding it was written in, no mojibake",
     {"contacts.csv": lines("c1,ann@acme.com,Zoë,Müller,Directrice Générale,",
                            header=CON_HEADER).encode("cp1252")
      + utf8("c2,bo@acme.de,Jürgen,Groß,Geschäftsführer,\n")
      + "c3,cy@acme.fr,Renée,Noël,Ingénieur – R&D,\n".encode("cp1252")},
     table_map("contacts", "contacts.csv", CON_COLUMNS), "contacts",
     {"outcome": "clean", "summary": {"contacts": [3, 3, 0, 0]},
      "values": {"contacts": {"first_name": ["Zoë", "Jürgen", "Renée"],
                              "title": ["Directrice Générale", "Geschäftsführer", "Ingénieur – R&D"]}},
      "kit_change": "per-line utf-8/cp1252 decoding of mixed files"})

case("cp1252_file", "whole file in cp1252 (Excel on Windows), auto-detected",
     {"contacts.csv": lines("c1,zoe@acme.com,Zoë,Müller,Directrice Générale,", header=CON_HEADER
                            ).encode("cp1252")},
     table_map("contacts", "contacts.csv", CON_COLUMNS), "contacts",
     {"outcome": "clean", "summary": {"contacts": [1, 1, 0, 0]}, "files": {"encoding": ["cp1252"]},
      "values": {"contacts": {"last_name": ["Müller"], "title": ["Directrice Générale"]}}})

case("utf16_with_bom", "UTF-16 LE export with BOM (Excel 'Unicode text'), tab-delimited",
     {"touchpoints.csv": codecs.BOM_UTF16_LE + lines("t1\t2026-03-01 15:00\tEmail\tEmail Click\tc1\ta1\t\t30",
                                                     header=TP_HEADER.replace(",", "\t")).encode("utf-16-le")},
     tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [1, 1, 0, 0]}, "values": {"touchpoints": {"occurred_at": [T]}}})

case("utf16_without_bom",
     "UTF-16 LE export without BOM (every other byte NUL): detected as UTF-16 instead of read as garbage",
     {"touchpoints.csv": lines(f"t1,{GOOD}").encode("utf-16-le")},
     tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [1, 1, 0, 0]}, "values": {"touchpoints": {"occurred_at": [T]}},
      "kit_change": "UTF-16 without BOM detection"})

case("duplicate_headers",
     "two columns named 'Title' (a report with a duplicated field): the first is used for the mapped "
     "header, the second is addressable as 'Title.1'",
     {"contacts.csv": utf8(lines("c1,ann@acme.com,Ann,Lee,CMO,Chief Marketing Officer,",
                                 header="Contact ID,Email,First Name,Last Name,Title,Title,Account ID"))},
     table_map("contacts", "contacts.csv", CON_COLUMNS), "contacts",
     {"outcome": "clean", "summary": {"contacts": [1, 1, 0, 0]}, "values": {"contacts": {"title": ["CMO"]}}})

case("duplicate_headers_second_mapped",
     "duplicated header: the column map picks the second copy explicitly as 'Title.1'",
     {"contacts.csv": utf8(lines("c1,ann@acme.com,Ann,Lee,CMO,Chief Marketing Officer,",
                                 header="Contact ID,Email,First Name,Last Name,Title,Title,Account ID"))},
     table_map("contacts", "contacts.csv", {**CON_COLUMNS, "title": "Title.1"}), "contacts",
     {"outcome": "clean", "summary": {"contacts": [1, 1, 0, 0]},
      "values": {"contacts": {"title": ["Chief Marketing Officer"]}}})

case("bom_in_middle_of_header",
     "a BOM before the second header name (files glued together by a script): the name still matches",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", header=TP_HEADER.replace(",Timestamp", ",\ufeffTimestamp")))},
     tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [1, 1, 0, 0]}, "values": {"touchpoints": {"occurred_at": [T]}},
      "kit_change": "strip BOM / zero-width characters from header names"})

case("concatenated_exports",
     "two exports concatenated with `cat`: the second header (with its BOM) is a data row -> rejected "
     "as an unparseable timestamp, every real row kept",
     {"touchpoints.csv": codecs.BOM_UTF8 + utf8(lines(f"t1,{GOOD}")) + codecs.BOM_UTF8
      + utf8(lines(f"t2,{GOOD}"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [3, 2, 1, 0]},
      "rejects": [["touchpoints", 2, "unparseable_timestamp: occurred_at='Timestamp'"]],
      "values": {"touchpoints": {"touchpoint_id": ["t1", "t2"]}}})

case("trailing_empty_columns",
     "header ends with two empty columns (stray delimiters from Excel); rows with or without the "
     "trailing delimiters are all read",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD},,", f"t2,{GOOD}", f"t3,{GOOD},", header=TP_HEADER + ",,"))},
     tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [3, 3, 0, 0]},
      "values": {"touchpoints": {"touchpoint_id": ["t1", "t2", "t3"]}},
      "kit_change": "rows lacking only trailing unnamed columns are not malformed"})

case("stray_cr_in_header",
     "a lone carriage return inside a header name (an edited export): the CR ends the header line for "
     "every CSV reader, so the mapped header is missing -> CleanError listing the headers found (was a "
     "_csv.Error traceback)",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", header=TP_HEADER.replace("Contact ID", "Contac\rt ID")))},
     tp_map(), "touchpoints",
     {"outcome": "error", "error": ["touchpoints.csv", "'Contact ID'", "touchpoints.contact_id", "Columns found",
                                    "'Contac'"],
      "kit_change": "a lone CR ends the header line; csv.Error never escapes"})

case("stray_quote_in_header",
     "a stray quote inside a header name opens a quoted region that swallows the following lines -> "
     "CleanError: the header line cannot be read (was a _csv.Error traceback)",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", f"t2,{GOOD}", header=TP_HEADER.replace("Channel", 'C"hannel')))},
     tp_map(), "touchpoints",
     {"outcome": "error", "error": ["touchpoints.csv", "header line cannot be read", "quoting"],
      "kit_change": "a lone CR ends the header line; csv.Error never escapes"})

case("header_only", "export with a header and no rows (a filter matched nothing): an empty table, no error",
     {"touchpoints.csv": utf8(TP_HEADER + "\n")}, tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [0, 0, 0, 0]}})

case("empty_file", "zero-byte file (failed export) -> CleanError naming the file and what to do",
     {"touchpoints.csv": b""}, tp_map(), "touchpoints",
     {"outcome": "error", "error": ["touchpoints.csv", "empty", "Re-export"]})

case("whitespace_only_file", "file holding only blank lines and a BOM -> CleanError 'empty'",
     {"touchpoints.csv": codecs.BOM_UTF8 + b"\r\n  \r\n\n"}, tp_map(), "touchpoints",
     {"outcome": "error", "error": ["touchpoints.csv", "empty"]})

case("xlsx_named_csv", "an Excel workbook saved with a .csv name -> CleanError saying so and how to fix",
     {"touchpoints.csv": b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00b\xee\x9dh^\x01\x00\x00\x90\x04\x00\x00"
      b"\x13\x00\x08\x02[Content_Types].xml \xa2\x04\x02(\xa0\x00\x02\x00\x00\x00\x00\x00\x00\x00"
      + bytes(range(256)) * 4},
     tp_map(), "touchpoints",
     {"outcome": "error", "error": ["touchpoints.csv", "Excel", "CSV"],
      "kit_change": "binary / xlsx detection with a specific message"})

case("binary_file_named_csv", "a PNG image named .csv -> CleanError: not a text file",
     {"touchpoints.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"
      + bytes(range(256)) * 4},
     tp_map(), "touchpoints",
     {"outcome": "error", "error": ["touchpoints.csv", "binary", "CSV"],
      "kit_change": "binary / xlsx detection with a specific message"})

case("nul_bytes",
     "stray NUL bytes inside two fields (a corrupted transfer): removed, the rows kept and the removal "
     "recorded in repairs",
     {"touchpoints.csv": utf8(lines("t1,2026-03-01 15:00,Email\x00,Email Click,c1,a1,,30",
                                    "t2,2026-03-01 15:00,Email,Email Click,c1\x00\x00,a1,,30"))},
     tp_map(), "touchpoints",
     {"outcome": "repaired", "summary": {"touchpoints": [2, 2, 0, 0]},
      "repairs": [["touchpoints", 1, "channel", "nul_bytes"], ["touchpoints", 2, "contact_id", "nul_bytes"]],
      "values": {"touchpoints": {"channel": ["email", "email"], "contact_id": ["c1", "c1"]}},
      "kit_change": "NUL bytes removed and recorded"})

case("crlf_line_endings", "Windows CRLF line endings",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", f"t2,{GOOD}", nl="\r\n"))}, tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [2, 2, 0, 0]},
      "values": {"touchpoints": {"engagement_seconds": [30.0, 30.0]}}})

case("cr_line_endings", "classic Mac CR-only line endings",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", f"t2,{GOOD}", nl="\r"))}, tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [2, 2, 0, 0]},
      "values": {"touchpoints": {"touchpoint_id": ["t1", "t2"], "engagement_seconds": [30.0, 30.0]}},
      "kit_change": "CR-only line endings (was a _csv.Error traceback)"})

case("extra_fields_some_rows",
     "an unquoted comma in a value splits it: that row has 9 fields -> malformed_row; a row with only "
     "empty extra fields is fine",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", "t2,2026-03-01 15:00,Email,Email Click,c1,a1,Spring, 2026,30",
                                    f"t3,{GOOD},,"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [3, 2, 1, 0]},
      "rejects": [["touchpoints", 2, "malformed_row: 9 fields, header has 8"]],
      "values": {"touchpoints": {"touchpoint_id": ["t1", "t3"]}}})

case("fewer_fields_some_rows", "a row lost its last fields -> malformed_row, others kept",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", "t2,2026-03-01 15:00,Email,Email Click", f"t3,{GOOD}"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [3, 2, 1, 0]},
      "rejects": [["touchpoints", 2, "malformed_row: 4 fields, header has 8"]]})

case("whitespace_padded_headers", "header names padded with spaces and tabs still match the column map",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", header=" Touch ID ,Timestamp\t, Channel,Type ,Contact ID,"
                                                         "Account ID,Campaign ID,Seconds "))},
     tp_map(), "touchpoints", {"outcome": "clean", "summary": {"touchpoints": [1, 1, 0, 0]}})

case("case_different_headers", "header names in another case than the column map match case-insensitively",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", header=TP_HEADER.upper()))},
     tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [1, 1, 0, 0]}, "values": {"touchpoints": {"occurred_at": [T]}}})

case("missing_mapped_column",
     "the column map names a header the export does not have -> CleanError with file, header, canonical "
     "column and the headers found",
     {"touchpoints.csv": utf8(lines("t1,2026-03-01 15:00,Email,Email Click,c1,a1,,30",
                                    header=TP_HEADER.replace("Timestamp", "Activity Date")))},
     tp_map(), "touchpoints",
     {"outcome": "error", "error": ["touchpoints.csv", "'Timestamp'", "touchpoints.occurred_at",
                                    "Activity Date", "Fix the column map"]})

# ------------------------------------------------------------------ values: dates and times
case("excel_serial_dates",
     "dates as spreadsheet serial numbers (45292 = 2024-01-01; .5 = noon): read in the 1900 date system "
     "and every one recorded in repairs (excel_serial_date), so a mis-mapped number column shows up",
     {"opportunities.csv": utf8(lines("o1,a1,45292,45322,true,true,100", "o2,a1,45292.5,,false,false,100",
                                      header=OPP_HEADER))},
     table_map("opportunities", "opportunities.csv", OPP_COLUMNS), "opportunities",
     {"outcome": "repaired", "summary": {"opportunities": [2, 2, 0, 0]},
      "repairs": [["opportunities", 1, "created_at", "excel_serial_date"],
                  ["opportunities", 1, "closed_at", "excel_serial_date"],
                  ["opportunities", 2, "created_at", "excel_serial_date"]],
      "values": {"opportunities": {"created_at": ["2024-01-01T00:00:00+00:00", "2024-01-01T12:00:00+00:00"],
                                   "closed_at": ["2024-01-31T00:00:00+00:00", None]}},
      "kit_change": "Excel serial dates"})

case("dst_ambiguous_local_time",
     "America/New_York 2025-11-02 01:30 happens twice: read as the first occurrence (EDT, UTC-4) and "
     "recorded in repairs",
     {"touchpoints.csv": utf8(lines("t1,2025-11-02 01:30,Email,Email Click,c1,a1,,30",
                                    "t2,2025-11-02 03:30,Email,Email Click,c1,a1,,30"))},
     tp_map(timezone="America/New_York"), "touchpoints",
     {"outcome": "repaired", "summary": {"touchpoints": [2, 2, 0, 0]},
      "repairs": [["touchpoints", 1, "occurred_at", "ambiguous_local_time"]],
      "values": {"touchpoints": {"occurred_at": ["2025-11-02T05:30:00+00:00", "2025-11-02T08:30:00+00:00"]}},
      "kit_change": "DST repairs recorded"})

case("dst_nonexistent_local_time",
     "America/New_York 2025-03-09 02:30 does not exist (clocks jump 02:00 -> 03:00): shifted forward "
     "to 03:00 EDT and recorded in repairs",
     {"touchpoints.csv": utf8(lines("t1,2025-03-09 02:30,Email,Email Click,c1,a1,,30"))},
     tp_map(timezone="America/New_York"), "touchpoints",
     {"outcome": "repaired", "summary": {"touchpoints": [1, 1, 0, 0]},
      "repairs": [["touchpoints", 1, "occurred_at", "nonexistent_local_time"]],
      "values": {"touchpoints": {"occurred_at": ["2025-03-09T07:00:00+00:00"]}},
      "kit_change": "DST repairs recorded"})

case("twelve_hour_clock", "US 12-hour times: 2:05 PM, 12:30 AM (= 00:30), 12:05 PM (= 12:05); '13:05 PM' rejected",
     {"touchpoints.csv": utf8(lines("t1,3/1/2026 2:05 PM,Email,Email Click,c1,a1,,30",
                                    "t2,3/1/2026 12:30 AM,Email,Email Click,c1,a1,,30",
                                    "t3,3/1/2026 12:05 PM,Email,Email Click,c1,a1,,30",
                                    "t4,3/1/2026 13:05 PM,Email,Email Click,c1,a1,,30"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [4, 3, 1, 0]},
      "rejects": [["touchpoints", 4, "unparseable_timestamp: occurred_at='3/1/2026 13:05 PM'"]],
      "values": {"touchpoints": {"occurred_at": ["2026-03-01T14:05:00+00:00", "2026-03-01T00:30:00+00:00",
                                                 "2026-03-01T12:05:00+00:00"]}}})

case("epoch_seconds_and_ms", "Unix epoch seconds and milliseconds (UTC) in one column",
     {"touchpoints.csv": utf8(lines("t1,1772373900,Email,Email Click,c1,a1,,30",
                                    "t2,1772373900000,Email,Email Click,c1,a1,,30",
                                    "t3,1772373900.5,Email,Email Click,c1,a1,,30"))},
     tp_map(timezone="Europe/Berlin"), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [3, 3, 0, 0]},
      "values": {"touchpoints": {"occurred_at": ["2026-03-01T14:05:00+00:00", "2026-03-01T14:05:00+00:00",
                                                 "2026-03-01T14:05:00.500000+00:00"]}}})

case("dayfirst_ambiguity",
     "13/03/2026 in a month-first table is impossible -> rejected, never silently swapped; 03/13/2026 fine",
     {"touchpoints.csv": utf8(lines("t1,03/13/2026,Email,Email Click,c1,a1,,30",
                                    "t2,13/03/2026,Email,Email Click,c1,a1,,30"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [2, 1, 1, 0]},
      "rejects": [["touchpoints", 2, "unparseable_timestamp: occurred_at='13/03/2026'"]],
      "values": {"touchpoints": {"occurred_at": ["2026-03-13T00:00:00+00:00"]}}})

case("impossible_dates", "30 February and month 13 -> rejected with the value",
     {"touchpoints.csv": utf8(lines("t1,2026-02-30 10:00,Email,Email Click,c1,a1,,30",
                                    "t2,2026-13-01,Email,Email Click,c1,a1,,30", f"t3,{GOOD}"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [3, 1, 2, 0]},
      "rejects": [["touchpoints", 1, "unparseable_timestamp: occurred_at='2026-02-30 10:00'"],
                  ["touchpoints", 2, "unparseable_timestamp: occurred_at='2026-13-01'"]]})

case("future_dates",
     "a touch dated 2099 (typo / test record) -> rejected: it would move the data end (censoring date) "
     "to 2099",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", "t2,2099-03-01 15:00,Email,Email Click,c1,a1,,30"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [2, 1, 1, 0]},
      "rejects": [["touchpoints", 2, "future_timestamp: occurred_at='2099-03-01 15:00'"]],
      "kit_change": "future touch timestamps rejected"})

case("far_past_dates", "a touch dated 1899 (Excel's zero date) -> rejected as unparseable",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", "t2,1899-12-30,Email,Email Click,c1,a1,,30"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [2, 1, 1, 0]},
      "rejects": [["touchpoints", 2, "unparseable_timestamp: occurred_at='1899-12-30'"]]})

# ------------------------------------------------------------------ values: numbers, booleans, text
case("amount_formats",
     "amounts as '1.234,50 €', '$1,234.50', 'EUR 1 234,50', '12,5', '1,234' -> numbers; '(1,234.50)' is an "
     "accounting negative -> negative_amount",
     {"opportunities.csv": utf8(lines('o1,a1,2026-01-05,,,,"1.234,50 €"', 'o2,a1,2026-01-05,,,,"$1,234.50"',
                                      'o3,a1,2026-01-05,,,,"(1,234.50)"', 'o4,a1,2026-01-05,,,,"EUR 1 234,50"',
                                      'o5,a1,2026-01-05,,,,"12,5"', 'o6,a1,2026-01-05,,,,"1,234"',
                                      header=OPP_HEADER))},
     table_map("opportunities", "opportunities.csv", OPP_COLUMNS), "opportunities",
     {"outcome": "rejected", "summary": {"opportunities": [6, 5, 1, 0]},
      "rejects": [["opportunities", 3, "negative_amount: amount='(1,234.50)'"]],
      "values": {"opportunities": {"amount": [1234.5, 1234.5, 1234.5, 12.5, 1234.0]}}})

case("amount_decimal_comma_semicolon",
     "';' export with decimal commas declared in the map (decimal: ','): '1.234' is one thousand two "
     "hundred thirty-four, '1234,5' is 1234.5",
     {"opportunities.csv": utf8(lines("o1;a1;05.01.2026;;;;1.234", "o2;a1;05.01.2026;;;;1234,5",
                                      "o3;a1;05.01.2026;;;;abc", header=OPP_HEADER.replace(",", ";")))},
     table_map("opportunities", "opportunities.csv", OPP_COLUMNS, decimal=","), "opportunities",
     {"outcome": "rejected", "summary": {"opportunities": [3, 2, 1, 0]},
      "rejects": [["opportunities", 3, "unparseable_number: amount='abc'"]],
      "values": {"opportunities": {"amount": [1234.0, 1234.5],
                                   "created_at": ["2026-01-05T00:00:00+00:00", "2026-01-05T00:00:00+00:00"]}}})

case("percentages", "ICP fit written as '85%', '30 %', '0.3', 'yes'; '150%' is out of range -> blanked (repair)",
     {"accounts.csv": utf8(lines("a1,Acme,acme.com,,10,1,85%,Yes", "a2,Beta,beta.com,,10,1,30 %,No",
                                 "a3,Gamma,gamma.com,,10,1,0.3,Y", "a4,Delta,delta.com,,10,1,yes,N",
                                 "a5,Eps,eps.com,,10,1,150%,x", header=ACC_HEADER))},
     table_map("accounts", "accounts.csv", ACC_COLUMNS), "accounts",
     {"outcome": "repaired", "summary": {"accounts": [5, 5, 0, 0]},
      "repairs": [["accounts", 5, "icp_fit", "unparseable_number"]],
      "values": {"accounts": {"icp_fit": [0.85, 0.3, 0.3, 1.0, None],
                              "is_target": [True, False, True, False, True]}},
      "kit_change": "percentages parsed"})

case("boolean_variants", "Yes/No/Y/N/TRUE/false/1/0/x spellings of booleans; 'maybe' rejected",
     {"opportunities.csv": utf8(lines("o1,a1,2026-01-05,2026-02-01,Yes,Y,1", "o2,a1,2026-01-05,2026-02-01,No,N,1",
                                      "o3,a1,2026-01-05,2026-02-01,TRUE,x,1", "o4,a1,2026-01-05,,false,0,1",
                                      "o5,a1,2026-01-05,2026-02-01,1,1,1", "o6,a1,2026-01-05,,0,,1",
                                      "o7,a1,2026-01-05,,maybe,,1", header=OPP_HEADER))},
     table_map("opportunities", "opportunities.csv", OPP_COLUMNS), "opportunities",
     {"outcome": "rejected", "summary": {"opportunities": [7, 6, 1, 0]},
      "rejects": [["opportunities", 7, "unparseable_boolean: is_closed='maybe'"]],
      "values": {"opportunities": {"is_closed": [True, False, True, False, True, False],
                                   "is_won": [True, False, True, False, True, None]}}})

case("negative_engagement_seconds", "engagement_seconds = -30 -> negative_number (a fact row is rejected)",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", "t2,2026-03-01 15:00,Email,Email Click,c1,a1,,-30"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [2, 1, 1, 0]},
      "rejects": [["touchpoints", 2, "negative_number: engagement_seconds='-30'"]]})

case("unicode_emails",
     "e-mails with non-ASCII local parts and internationalised domains (IDN -> punycode registrable "
     "domain); a malformed one is blanked and recorded",
     {"contacts.csv": utf8(lines("c1,jürgen@müller.de,Jürgen,Müller,CEO,", "c2,josé.garcía@Acme.COM,José,García,VP,",
                                 "c3,пример@пример.рф,Иван,Петров,CTO,", "c4,jane(at)acme.com,Jane,Doe,VP,",
                                 header=CON_HEADER))},
     table_map("contacts", "contacts.csv", CON_COLUMNS), "contacts",
     {"outcome": "repaired", "summary": {"contacts": [4, 4, 0, 0]},
      "repairs": [["contacts", 4, "email", "invalid_email"]],
      "values": {"contacts": {"email": ["jürgen@müller.de", "josé.garcía@acme.com", "пример@пример.рф", None],
                              "email_domain": ["xn--mller-kva.de", "acme.com", "xn--e1afmkfd.xn--p1ai", None]}}})

CASES.append({"case": "big_single_field", "generator": "big_single_field",
              "description": "a 10 MB value in one quoted field (an HTML e-mail body pasted into Title): read "
                             "and kept intact (the file is generated at test time, not stored)",
              "files": {"contacts.csv": None}, "table": "contacts",
              "column_map": table_map("contacts", "contacts.csv", CON_COLUMNS),
              "expect": {"outcome": "clean", "summary": {"contacts": [2, 2, 0, 0]},
                         "values": {"contacts": {"contact_id": ["c1", "c2"]}},
                         "lengths": {"contacts": {"title": [10_000_000, 3]}}}})

CASES.append({"case": "big_field_with_ragged_row", "generator": "big_field_with_ragged_row",
              "description": "a 200 KB quoted field in a file that also has a ragged row (so the exact, slower "
                             "reader runs, whose csv module stops at 128 KB fields by default): the big row is "
                             "kept, the ragged one rejected (was a _csv.Error traceback; generated at test time)",
              "files": {"contacts.csv": None}, "table": "contacts",
              "column_map": table_map("contacts", "contacts.csv", CON_COLUMNS),
              "expect": {"outcome": "rejected", "summary": {"contacts": [3, 2, 1, 0]},
                         "rejects": [["contacts", 2, "malformed_row: 3 fields, header has 6"]],
                         "values": {"contacts": {"contact_id": ["c1", "c3"]}},
                         "lengths": {"contacts": {"title": [200_000, 3]}},
                         "kit_change": "csv field size limit lifted on the exact reader"}})

case("leading_zero_ids",
     "ids with leading zeros stay strings ('007' != '7'); '12.0' (a spreadsheet float) is id '12' and "
     "touches referencing it resolve",
     {"accounts.csv": utf8(lines("007,Bond Ltd,bond.co.uk,,,,,", "7,Seven Inc,seven.com,,,,,",
                                 "0012,Twelve Zero,twelve0.com,,,,,", "12.0,Twelve,twelve.com,,,,,",
                                 header=ACC_HEADER)),
      "touchpoints.csv": utf8(lines("0001,2026-03-01 15:00,Email,Email Click,,007,,30",
                                    "0002,2026-03-01 15:00,Email,Email Click,,12,,30",
                                    "0003,2026-03-01 15:00,Email,Email Click,,0012,,30"))},
     {"version": 1, "tables": {"accounts": {"file": "accounts.csv", "columns": ACC_COLUMNS},
                               "touchpoints": {"file": "touchpoints.csv", "columns": TP_COLUMNS}}},
     "accounts+touchpoints",
     {"outcome": "clean", "summary": {"accounts": [4, 4, 0, 0], "touchpoints": [3, 3, 0, 0]},
      "values": {"accounts": {"account_id": ["007", "7", "0012", "12"]},
                 "touchpoints": {"touchpoint_id": ["0001", "0002", "0003"], "account_id": ["007", "12", "0012"]}}})

case("excel_scientific_ids",
     "ids that Excel turned into 1.23E+15 (digits lost, ids collide) -> CleanError naming file, row, "
     "column and the fix (re-export without opening in Excel)",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", "1.23457E+15,2026-03-01 15:00,Email,Email Click,c1,a1,,30"))},
     tp_map(), "touchpoints",
     {"outcome": "error", "error": ["touchpoints.csv", "Touch ID", "row 2", "1.23457E+15", "scientific", "Excel"],
      "kit_change": "scientific-notation ids stop with an error"})

case("all_null_columns", "optional columns entirely empty or 'NULL': kept as missing, rows kept",
     {"touchpoints.csv": utf8(lines("t1,2026-03-01 15:00,Email,Email Click,NULL,a1,,",
                                    "t2,2026-03-01 15:00,Email,Email Click,NULL,a1,,"))},
     tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [2, 2, 0, 0]},
      "values": {"touchpoints": {"contact_id": [None, None], "campaign_id": [None, None],
                                 "engagement_seconds": [None, None]}}})

case("null_tokens", "N/A, #N/A, -, null in typed columns mean missing; the touch keeps its account",
     {"touchpoints.csv": utf8(lines("t1,2026-03-01 15:00,Email,Email Click,N/A,a1,-,#N/A",
                                    "t2,2026-03-01 15:00,Email,Email Click,c2,null,,n/a"))},
     tp_map(), "touchpoints",
     {"outcome": "clean", "summary": {"touchpoints": [2, 2, 0, 0]},
      "values": {"touchpoints": {"contact_id": [None, "c2"], "account_id": ["a1", None],
                                 "engagement_seconds": [None, None]}}})

case("unknown_channel_labels",
     "unknown channel / activity labels -> rejected with the label and listed in unmapped; known vendor "
     "labels map ('LinkedIn Ads' -> paid_social)",
     {"touchpoints.csv": utf8(lines("t1,2026-03-01 15:00,LinkedIn Ads,Ad Click,c1,a1,,",
                                    "t2,2026-03-01 15:00,Podcast Sponsorship,Ad Click,c1,a1,,",
                                    "t3,2026-03-01 15:00,Email,Carrier Pigeon,c1,a1,,"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [3, 1, 2, 0]},
      "rejects": [["touchpoints", 2, "unmapped_channel: Podcast Sponsorship"],
                  ["touchpoints", 3, "unmapped_touch_type: Carrier Pigeon"]],
      "unmapped": [["touchpoints", "channel", "Podcast Sponsorship"], ["touchpoints", "touch_type", "Carrier Pigeon"]],
      "values": {"touchpoints": {"channel": ["paid_social"], "touch_type": ["click"]}}})

case("touch_without_contact_or_account", "a touch with neither contact nor account -> no_contact_or_account",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", "t2,2026-03-01 15:00,Email,Email Click,,,,30"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [2, 1, 1, 0]},
      "rejects": [["touchpoints", 2, "no_contact_or_account: contact_id/account_id"]]})

case("missing_required_values", "empty touch id / timestamp / channel -> missing_required naming the column",
     {"touchpoints.csv": utf8(lines(",2026-03-01 15:00,Email,Email Click,c1,a1,,30",
                                    "t2,,Email,Email Click,c1,a1,,30", "t3,2026-03-01 15:00,,Email Click,c1,a1,,30"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [3, 0, 3, 0]},
      "rejects": [["touchpoints", 1, "missing_required: touchpoint_id"],
                  ["touchpoints", 2, "missing_required: occurred_at"],
                  ["touchpoints", 3, "missing_required: channel"]]})

# ------------------------------------------------------------------ duplicates
case("duplicate_rows_email_case",
     "the same contact exported twice with the e-mail in another case (and once more verbatim) -> merged "
     "as duplicates, not a conflict",
     {"contacts.csv": utf8(lines("c1,Jane.Doe@Acme.com,Jane,Doe,CMO,", "c1,jane.doe@acme.com,Jane,Doe,CMO,",
                                 "c1,Jane.Doe@Acme.com,Jane,Doe,CMO,", "c2,bo@acme.com,Bo,Ng,VP,",
                                 header=CON_HEADER))},
     table_map("contacts", "contacts.csv", CON_COLUMNS), "contacts",
     {"outcome": "merged", "summary": {"contacts": [4, 2, 0, 2]},
      "merged": [["contacts", 2, 1], ["contacts", 3, 1]],
      "values": {"contacts": {"contact_id": ["c1", "c2"], "email": ["Jane.Doe@acme.com", "bo@acme.com"]}},
      "kit_change": "e-mail case ignored when comparing duplicates"})

case("exact_duplicates_across_formats",
     "the same touch in two overlapping exports, once as UTC ISO and once as New York local 12-hour "
     "time -> merged, not rejected",
     {"touchpoints_jan.csv": utf8(lines("t1,2026-03-01T15:00:00Z,Email,Email Click,c1,a1,,30")),
      "touchpoints_feb.csv": utf8(lines("t1,03/01/2026 10:00 AM,email,email click,c1,a1,,30.0"))},
     tp_map(file=["touchpoints_jan.csv", "touchpoints_feb.csv"], timezone="America/New_York"), "touchpoints",
     {"outcome": "merged", "summary": {"touchpoints": [2, 1, 0, 1]},
      "merged": [["touchpoints", 1, 1]]})

case("conflicting_duplicate_ids",
     "the same touch id twice with different timestamps -> the first row kept, the second "
     "duplicate_key_conflict",
     {"touchpoints.csv": utf8(lines(f"t1,{GOOD}", "t1,2026-03-02 15:00,Email,Email Click,c1,a1,,30"))},
     tp_map(), "touchpoints",
     {"outcome": "rejected", "summary": {"touchpoints": [2, 1, 1, 0]},
      "rejects": [["touchpoints", 2, "duplicate_key_conflict: touchpoint_id='t1'"]],
      "values": {"touchpoints": {"occurred_at": [T]}}})

# ------------------------------------------------------------------ references across tables
REF_MAP = {"version": 1, "tables": {
    "accounts": {"file": "accounts.csv", "columns": ACC_COLUMNS},
    "contacts": {"file": "contacts.csv", "columns": CON_COLUMNS},
    "campaigns": {"file": "campaigns.csv", "columns": CAM_COLUMNS},
    "touchpoints": {"file": "touchpoints.csv", "columns": TP_COLUMNS},
    "opportunities": {"file": "opportunities.csv", "columns": OPP_COLUMNS}}}

case("orphan_references",
     "a touch pointing at an unknown contact and an opportunity at an unknown account -> orphan_reference; "
     "a contact's unknown CRM account and a touch's unknown campaign are blanked (repairs)",
     {"accounts.csv": utf8(lines("a1,Acme,acme.com,,,,,", header=ACC_HEADER)),
      "contacts.csv": utf8(lines("c1,ann@acme.com,Ann,Lee,CMO,a1", "c2,bo@acme.com,Bo,Ng,VP,a404",
                                 header=CON_HEADER)),
      "campaigns.csv": utf8(lines("k1,Spring,Email,2026-03-01,2026-03-31,100", header=CAM_HEADER)),
      "touchpoints.csv": utf8(lines("t1,2026-03-01 15:00,Email,Email Click,c1,a1,k1,30",
                                    "t2,2026-03-01 15:00,Email,Email Click,c9,,k1,30",
                                    "t3,2026-03-01 15:00,Email,Email Click,c2,,k404,30")),
      "opportunities.csv": utf8(lines("o1,a1,2026-03-05,,,,100", "o2,a404,2026-03-05,,,,100", header=OPP_HEADER))},
     REF_MAP, "all",
     {"outcome": "mixed",
      "summary": {"accounts": [1, 1, 0, 0], "contacts": [2, 2, 0, 0], "campaigns": [1, 1, 0, 0],
                  "touchpoints": [3, 2, 1, 0], "opportunities": [2, 1, 1, 0]},
      "rejects": [["opportunities", 2, "orphan_reference: account_id='a404'"],
                  ["touchpoints", 2, "orphan_reference: contact_id='c9'"]],
      "repairs": [["contacts", 2, "crm_account_id", "unknown_account"],
                  ["touchpoints", 3, "campaign_id", "unknown_campaign"]]})

case("touches_after_opportunity_closed",
     "touches after the opportunity closed are kept (they are real activity) but never credited to "
     "that deal: the journey window ends at the milestone",
     {"accounts.csv": utf8(lines("a1,Acme,acme.com,,,,,", header=ACC_HEADER)),
      "touchpoints.csv": utf8(lines("t1,2026-01-10 10:00,Email,Email Click,,a1,,30",
                                    "t2,2026-02-10 10:00,Webinar,Webinar Attended,,a1,,30",
                                    "t3,2026-04-10 10:00,Paid Social,Ad Click,,a1,,30")),
      "opportunities.csv": utf8(lines("o1,a1,2026-02-01,2026-03-01,true,true,1000", header=OPP_HEADER))},
     {"version": 1, "tables": {k: v for k, v in REF_MAP["tables"].items()
                               if k in ("accounts", "touchpoints", "opportunities")}},
     "all",
     {"outcome": "clean", "summary": {"accounts": [1, 1, 0, 0], "touchpoints": [3, 3, 0, 0],
                                      "opportunities": [1, 1, 0, 0]},
      "attribution": {"closed_won": {"linear": {"t1": 0.5, "t2": 0.5}},
                      "opportunity_created": {"linear": {"t1": 1.0}}}})

case("parent_account_cycle",
     "parent accounts in a cycle (a1 -> a2 -> a1, a3 -> a4 -> a5 -> a3): every parent link on the cycle "
     "is blanked and recorded (parent_cycle); a chain into the cycle and normal parents are kept",
     {"accounts.csv": utf8(lines("a1,A,a.com,a2,,,,", "a2,B,b.com,a1,,,,", "a3,C,c.com,a4,,,,", "a4,D,d.com,a5,,,,",
                                 "a5,E,e.com,a3,,,,", "a6,F,f.com,a1,,,,", "a7,G,g.com,,,,,", "a8,H,h.com,a7,,,,",
                                 header=ACC_HEADER))},
     table_map("accounts", "accounts.csv", ACC_COLUMNS), "accounts",
     {"outcome": "repaired", "summary": {"accounts": [8, 8, 0, 0]},
      "repairs": [["accounts", i, "parent_account_id", "parent_cycle"] for i in (1, 2, 3, 4, 5)],
      "values": {"accounts": {"parent_account_id": [None, None, None, None, None, "a1", None, "a7"]}},
      "kit_change": "parent cycles broken at cleaning"})

case("self_parented_account", "an account that is its own parent: the link is blanked and recorded (self_parent)",
     {"accounts.csv": utf8(lines("a1,A,a.com,a1,,,,", "a2,B,b.com,a1,,,,", header=ACC_HEADER))},
     table_map("accounts", "accounts.csv", ACC_COLUMNS), "accounts",
     {"outcome": "repaired", "summary": {"accounts": [2, 2, 0, 0]},
      "repairs": [["accounts", 1, "parent_account_id", "self_parent"]],
      "values": {"accounts": {"parent_account_id": [None, "a1"]}},
      "kit_change": "parent cycles broken at cleaning"})

case("campaign_end_before_start",
     "a campaign whose end date is before its start date: the end date is blanked and recorded "
     "(end_before_start); the campaign and its touches are kept",
     {"campaigns.csv": utf8(lines("k1,Spring,Email,2026-03-31,2026-03-01,100", "k2,Summer,Webinar,2026-06-01,2026-06-30,50",
                                  header=CAM_HEADER))},
     table_map("campaigns", "campaigns.csv", CAM_COLUMNS), "campaigns",
     {"outcome": "repaired", "summary": {"campaigns": [2, 2, 0, 0]},
      "repairs": [["campaigns", 1, "end_date", "end_before_start"]],
      "values": {"campaigns": {"end_date": [None, "2026-06-30T00:00:00+00:00"]}},
      "kit_change": "campaign end before start repaired"})


def build() -> None:
    manifest = []
    for c in CASES:
        if c is None:
            continue
        d = HERE / c["case"]
        if d.exists():
            shutil.rmtree(d)
        d.mkdir()
        for name, data in c["files"].items():
            if data is not None:
                (d / name).write_bytes(data)
        (d / "column_map.yaml").write_text(yaml.safe_dump(c["column_map"], sort_keys=False, allow_unicode=True),
                                           "utf-8")
        entry = {"case": c["case"], "description": c["description"], "files": sorted(c["files"]),
                 "table": c["table"], "column_map": f"{c['case']}/column_map.yaml", "expect": c["expect"]}
        if c.get("generator"):
            entry["generator"] = c["generator"]
        manifest.append(entry)
    header = ("# Bad-input corpus: one folder per case (raw file(s) + the column map used).\n"
              "# Generated by build_corpus.py (edit the cases there, then re-run it); asserted by\n"
              "# tests/test_bad_inputs.py. `kit_change` names the change to abmkit.clean the case drove.\n")
    (HERE / "MANIFEST.yaml").write_text(header + yaml.safe_dump({"cases": manifest}, sort_keys=False,
                                                                allow_unicode=True, width=110,
                                                                default_flow_style=None), "utf-8")
    print(f"{len(manifest)} cases written to {HERE}")


if __name__ == "__main__":
    build()
