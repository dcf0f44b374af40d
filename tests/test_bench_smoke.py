"""The benchmark still runs: seed a tiny SQLite database, time every page a few times.

Only the shape of the output is checked (every page has a row, query counts are sane and
constant), never timings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import bench

TICKETS = 200
#: The most statements a page may run (tests/test_query_counts.py); a reply POST writes too.
MOST_STATEMENTS = 10
MOST_STATEMENTS_POST = 20


def table_rows(output: str) -> dict[str, list[str]]:
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 6 and cells[0] not in ("page", "---"):
            rows[cells[0]] = cells
    return rows


def test_bench_seeds_sqlite_and_prints_a_row_per_page_with_constant_query_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--db", "sqlite", "--tickets", str(TICKETS), "--data-dir", str(tmp_path)]
    assert bench.main([*argv, "--warmup", "1", "--requests", "3"]) == 0
    output = capsys.readouterr().out
    assert "Seeded in" in output
    assert f"{TICKETS:,} tickets" in output

    rows = table_rows(output)
    pages = bench.probes(bench.Plan(TICKETS))
    assert sorted(rows) == sorted(page.name for page in pages)
    for page in pages:
        queries = rows[page.name][5]
        assert re.fullmatch(r"\d+", queries), f"{page.name}: query count varies ({queries})"
        most = MOST_STATEMENTS_POST if page.method == "POST" else MOST_STATEMENTS
        if page.user:
            assert 1 <= int(queries) <= most, (page.name, queries)
        else:
            assert int(queries) == 0, "the floor view touches no database"
    assert "messages received" in output

    # A second run re-uses the seeded file instead of seeding again.
    assert bench.main([*argv, "--warmup", "0", "--requests", "1", "--only", "floor"]) == 0
    assert "re-used database" in capsys.readouterr().out
