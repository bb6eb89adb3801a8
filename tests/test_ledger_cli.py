"""``voicekiosk usage`` and ``voicekiosk calls`` on a real call record in tmp_path, written by the
book as the server writes it (and read while it is open, as the CLI reads a running server's)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from pathlib import Path

from click.testing import CliRunner, Result

from voicekiosk.cli import cli
from voicekiosk.fake.wire import usage
from voicekiosk.ledger.book import CallBook
from voicekiosk.ledger.store import FILE, MIGRATIONS, Store
from voicekiosk.settings import Settings
from voicekiosk.upstream.record import CallRecord


def run(*args: str) -> Result:
    env = {"OPENAI_API_KEY": "", "VOICEKIOSK_CONFIG": "", "COLUMNS": "200"}  # a wide terminal: no folding
    return CliRunner().invoke(cli, list(args), env=env)


def fill(data_dir: Path, model: str = "gpt-realtime-2.1") -> CallBook:
    """Three calls today: two from a kiosk (one priced, one of a model with no price), one running."""
    book = CallBook(Store.open(data_dir), Settings(data_dir=data_dir))  # type: ignore[arg-type]
    for n, client in enumerate(("192.0.2.7", "192.0.2.7")):
        call = CallRecord(f"rtc_{n}", client, started=time.monotonic() - 90)
        call.tokens.add(usage(3.0, 12, 4.0, 1))
        call.counted_here = True
        book.call_started(call)
        book.call_ended(call, "idle" if n == 0 else "limit")
    book.call_started(CallRecord("rtc_running", "192.0.2.8"))
    return book


def test_usage_per_day_and_client_as_a_table_json_and_csv(tmp_path: Path) -> None:
    book = fill(tmp_path)  # still open: the server writing while the CLI reads
    table = run("usage", "--data-dir", str(tmp_path))
    assert table.exit_code == 0, table.output
    assert "192.0.2.7" in table.output and "3.0" in table.output and "Total: $" in table.output
    rows = json.loads(run("usage", "--data-dir", str(tmp_path), "--json").output)
    by_client = {row["client"]: row for row in rows}
    kiosk = by_client["192.0.2.7"]
    assert kiosk["calls"] == 2 and round(kiosk["minutes"], 2) == 3.0 and kiosk["unknown"] == 0 and kiosk["cost"] > 0
    assert by_client["192.0.2.8"]["calls"] == 1  # running: counted, no minutes yet
    parsed = list(csv.DictReader(io.StringIO(run("usage", "--data-dir", str(tmp_path), "--csv").output)))
    assert {row["client"] for row in parsed} == {"192.0.2.7", "192.0.2.8"}
    assert run("usage", "--data-dir", str(tmp_path), "--json", "--csv").exit_code == 2
    book.close()


def test_calls_show_end_reasons_costs_and_unknown(tmp_path: Path) -> None:
    fill(tmp_path).close()
    book = CallBook(Store.open(tmp_path), Settings(data_dir=tmp_path, model="my-deployment"))  # type: ignore[arg-type]
    call = CallRecord("rtc_azure", "192.0.2.9")
    call.tokens.add(usage(1.0, 3, 1.0, 0))
    book.call_started(call)
    book.call_ended(call, "page")
    book.close()
    result = run("calls", "--data-dir", str(tmp_path), "--last", "10")
    assert result.exit_code == 0, result.output
    for word in ("idle", "limit", "crash", "page", "unknown", "rtc_azure"):  # rtc_running: the restart's crash
        assert word in result.output, word
    lines = json.loads(run("calls", "--data-dir", str(tmp_path), "--json", "--last", "2").output)
    assert [line["call_id"] for line in lines] == ["rtc_azure", "rtc_running"]
    assert lines[0]["cost"] is None and lines[1]["reason"] == "crash"


def test_no_record_yet_is_a_clear_line_and_a_corrupt_one_exit_1(tmp_path: Path) -> None:
    for command in ("usage", "calls"):
        result = run(command, "--data-dir", str(tmp_path))
        assert result.exit_code == 0 and "No calls recorded yet" in result.output
    assert not (tmp_path / FILE).exists()  # reading made no file
    (tmp_path / FILE).write_bytes(b"\x00garbage" * 512)
    for command in ("usage", "calls"):
        result = run(command, "--data-dir", str(tmp_path))
        assert result.exit_code == 1 and "unreadable" in result.output and "Traceback" not in result.output


def test_the_cli_reads_read_only_leaves_no_file_and_never_migrates(tmp_path: Path) -> None:
    from tests.test_ledger import first_schema

    fill(tmp_path).close()  # the server stopped cleanly: no -wal or -shm
    beside = [tmp_path / f"{FILE}{end}" for end in ("-wal", "-shm")]
    assert not any(path.exists() for path in beside)
    for command in ("usage", "calls"):
        assert run(command, "--data-dir", str(tmp_path)).exit_code == 0
    assert not any(path.exists() for path in beside)  # none made (``sudo voicekiosk calls``: root's)

    older = tmp_path / "older"
    older.mkdir()
    first_schema(older)
    result = run("calls", "--data-dir", str(older))
    assert result.exit_code == 0 and "rtc_old" in result.output  # read as it is
    assert run("usage", "--data-dir", str(older), "--days", "3660").exit_code == 0
    with sqlite3.connect(older / FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1 < len(MIGRATIONS)  # not migrated

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / FILE).touch()
    result = run("calls", "--data-dir", str(empty))
    assert result.exit_code == 1 and "run the server once to upgrade it" in result.output
