"""The test suite stops only what it started: no step kills processes by name or title.

On a shared machine other users run their own Ray nodes, servers and browsers. Stopping
Ray by command stops every Ray on the host; killing by name or process title hits
processes of anyone. Tests find what to stop through the pids of what they started.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Each pattern is built from pieces, so that this file does not match itself.
FORBIDDEN = {
    "stops every Ray on the host": re.compile(r"\bray\W{1,4}" r"st" r"op\b", re.IGNORECASE),
    "kills by process name": re.compile(r"\b(pk" r"ill|kill" r"all)\b"),
    "finds processes by name": re.compile(r"\b(pg" r"rep|pid" r"of)\b"),
    "matches a process title": re.compile(
        r"Implicit" r"Func|ray" r"::|\bcmd" r"line\b|/co" r"mm\b|process" r"_iter"
    ),
    "signals every process the user may signal": re.compile(r"\bkill\(\s*-" r"1\b"),
}


def _scanned_files() -> list[Path]:
    """The suite and everything that runs it: tests/, the Makefile and the CI scripts."""
    files = [ROOT / "Makefile", *(ROOT / ".ci").rglob("*"), *(ROOT / "tests").rglob("*")]
    return sorted(f for f in files if f.is_file() and "__pycache__" not in f.parts)


def forbidden_lines(files: list[Path]) -> list[str]:
    """``path:line: why: text`` for every line that stops processes it may not own."""
    found = []
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            continue  # not a script
        for number, line in enumerate(lines, start=1):
            for why, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                    found.append(f"{where}:{number}: {why}: {line.strip()}")
    return found


def test_the_suite_stops_only_what_it_started():
    files = _scanned_files()
    assert ROOT / "Makefile" in files and ROOT / ".ci" / "run" in files
    assert Path(__file__).resolve() in files  # the patterns do not match their own pieces
    found = forbidden_lines(files)
    assert not found, "\n".join(found)


def test_the_check_finds_each_way_of_killing_by_name(tmp_path):
    planted = [
        "\t" + "ray" + " stop --force",
        '    subprocess.run([RAY, "' + "st" + 'op", "--force"])',
        "p" + "kill -f mlflow",
        "kill" + "all chromium",
        "pid" + "of raylet",
        "    if title.startswith(b'Implicit" + "Func'):",
        "    if title.startswith(b'ray:" + ":IDLE'):",
        "    (entry / 'cmd" + "line').read_bytes()",
        "    os.kill(" + "-1, signal.SIGKILL)",
        "    os.killpg(node.pid, signal.SIGTERM)  # fine: a group this test started",
    ]
    script = tmp_path / "script.py"
    script.write_text("\n".join(planted) + "\n")
    found = forbidden_lines([script])
    lines = [int(hit.split(":")[1]) for hit in found]
    assert sorted(set(lines)) == list(range(1, len(planted))), found
