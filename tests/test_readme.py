"""The README works when followed literally from a fresh clone: every command names the
project's virtual environment (``.venv/bin/...``), the papermill example creates the folder
it writes to, and ``make lab`` passes ``LAB_ARGS`` and adds ``--allow-root`` only as root."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")
#: executables that live in the project's virtual environment, never on a fresh PATH
VENV_TOOLS = ("python", "python3", "papermill", "jupyter", "pytest", "abmkit")


def _shell_blocks() -> list[str]:
    return re.findall(r"```(?:bash|sh|cron)\n(.*?)```", README, re.S)


def _commands(block: str) -> list[str]:
    """Command lines of a block (continuations joined, comments dropped)."""
    text = block.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _programs(command: str) -> list[str]:
    """The program of every simple command of a line (``a && b; c | d``)."""
    progs = []
    for part in re.split(r"&&|\|\||;|\|", command):
        words = shlex.split(part, comments=True)
        words = [w for w in words if not re.fullmatch(r"\w+=\S*", w)]   # VAR=value prefixes
        if words:
            progs.append(words[0])
    return progs


def test_every_command_uses_the_virtual_environment():
    blocks = _shell_blocks()
    assert len(blocks) >= 5
    bad = []
    for block in blocks:
        for cmd in _commands(block):
            if re.match(r"^[0-9*/,]+ ", cmd):   # a crontab line: its command after the five fields
                cmd = cmd.split(None, 5)[5]
            for prog in _programs(cmd):
                if Path(prog).name in VENV_TOOLS and not re.search(r"(^|/)\.venv/bin/", prog):
                    bad.append(cmd)
    assert bad == []
    # inline commands in the prose too
    inline = re.findall(r"`((?:python3?|papermill|jupyter) [^`]*)`", README)
    assert inline == [], inline


def test_papermill_example_creates_its_output_folder():
    block = next(b for b in _shell_blocks() if "bin/papermill " in b)
    cmds = _commands(block)
    made = [w for c in cmds for w in shlex.split(c) if "mkdir" in c and not w.startswith("-") and w != "mkdir"]
    pm = next(c for c in cmds if "papermill" in c)
    cwd = Path(".")
    for c in cmds:
        m = re.search(r"cd (\S+)", c)
        if m:
            cwd = cwd / m.group(1)
    words = shlex.split(pm)
    out_nb = Path(words[words.index(next(w for w in words if w.endswith("papermill"))) + 2])
    out_dir = Path(words[words.index("output_dir") + 1])
    created = {os.path.normpath(m) for m in made}
    for p in (out_nb.parent, out_dir):
        assert os.path.normpath(cwd / p) in created, (p, created)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_passes_lab_args_and_allows_root_only_as_root():
    run = subprocess.run(["make", "-n", "lab", "LAB_ARGS=--no-browser --port 8899"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lab = [line for line in run.stdout.splitlines() if "jupyter lab notebooks/" in line]
    assert len(lab) == 1 and lab[0].startswith(".venv/bin/jupyter lab")
    assert lab[0].rstrip().endswith("--no-browser --port 8899")
    assert ("--allow-root" in lab[0]) == (os.geteuid() == 0)
    assert "make lab LAB_ARGS=" in README
