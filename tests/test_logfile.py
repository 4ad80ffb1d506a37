"""Tests for the log file (tweetgen.logfile): logrotate, size rotation, several writers, full and
unwritable disks, other libraries' records."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from logtools import (
    assert_shape,
    emit,
    parse,
    read,
    read_seqs,
    restore_logging,  # noqa: F401 - autouse: undoes setup_logging after each test
    setup,
)

from tweetgen.errors import ConfigurationError
from tweetgen.logs import (
    WatchedRotatingFileHandler,
    get_logger,
    setup_logging,
)

# --- the log file --------------------------------------------------------------------------------


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _file_handler_with_clock() -> tuple[WatchedRotatingFileHandler, _Clock]:
    [handler] = [
        h for h in logging.getLogger().handlers if isinstance(h, WatchedRotatingFileHandler)
    ]
    clock = _Clock()
    handler.clock, handler._next_check = clock, 0.0
    return handler, clock


@pytest.mark.parametrize("action", ["rename", "delete"])
def test_log_file_survives_logrotate(tmp_path: Path, action: str) -> None:
    log_file, _ = setup(tmp_path, console=False)
    handler, clock = _file_handler_with_clock()
    seen: list[int] = []
    for cycle in range(3):
        emit(range(cycle * 5, cycle * 5 + 5))
        if action == "rename":
            os.rename(log_file, tmp_path / f"rotated.{cycle}")
        else:
            seen += read_seqs(log_file)
            log_file.unlink()
        clock.now += handler.check_interval  # the next record checks the file
    emit(range(15, 20))
    if action == "rename":
        seen = [seq for cycle in range(3) for seq in read_seqs(tmp_path / f"rotated.{cycle}")]
    assert seen + read_seqs(log_file) == list(range(20))


def test_logrotate_check_is_not_made_per_record_and_loses_nothing(tmp_path: Path) -> None:
    """Between two checks, records go on into the renamed file (kept there); the first record after
    the interval, or any WARNING at once, opens the new file."""
    log_file, _ = setup(tmp_path, console=False)
    handler, clock = _file_handler_with_clock()
    emit(range(0, 3))
    os.rename(log_file, tmp_path / "rotated.0")
    emit(range(3, 6))  # no check yet: written to the renamed file
    assert not log_file.exists()
    clock.now += handler.check_interval
    emit(range(6, 9))
    os.rename(log_file, tmp_path / "rotated.1")
    get_logger().warning("tick", seq=9)  # a warning checks at once
    assert read_seqs(tmp_path / "rotated.0") == list(range(6))
    assert read_seqs(tmp_path / "rotated.1") == list(range(6, 9))
    assert read_seqs(log_file) == [9]


@pytest.mark.parametrize("backup_count", [50, 3])
def test_size_rotation_loses_nothing_within_retained_backups(
    tmp_path: Path, backup_count: int
) -> None:
    max_bytes, total = 1024, 60
    log_file, _ = setup(tmp_path, console=False, max_bytes=max_bytes, backup_count=backup_count)
    emit(range(total), pad="x" * 60)
    backups = [log_file.with_name(f"{log_file.name}.{n}") for n in range(backup_count, 0, -1)]
    files = [f for f in [*backups, log_file] if f.exists()]
    assert all(f.stat().st_size <= max_bytes for f in files)
    assert not log_file.with_name(f"{log_file.name}.{backup_count + 1}").exists()
    seqs = [seq for f in files for seq in read_seqs(f)]
    if backup_count == 50:
        assert len(files) > 3
        assert seqs == list(range(total))
    else:
        assert len(files) == backup_count + 1
        assert seqs == list(range(total - len(seqs), total))


def test_missing_log_directory_is_created(tmp_path: Path) -> None:
    log_file = tmp_path / "a" / "b" / "tweetgen.jsonl"
    setup_logging("INFO", str(log_file), console=False)
    get_logger().info("hello")
    assert [r["event"] for r in read(log_file)] == ["hello"]


@pytest.mark.parametrize("where", ["under-a-file", "is-a-directory"])
def test_unwritable_log_path_raises_configuration_error(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a directory", encoding="utf-8")
    target = blocker / "logs" / "tweetgen.jsonl" if where == "under-a-file" else tmp_path
    with pytest.raises(ConfigurationError, match="cannot write log file") as caught:
        setup_logging("INFO", str(target), console=False)
    assert str(target) in str(caught.value)
    assert "TWEETGEN_LOG_FILE" in str(caught.value)
    assert (
        caught.value.setting == "log_file"
    )  # the CLI names --log-file; the message no Python parameter
    reason = (
        f"{blocker} is a file, not a directory"
        if where == "under-a-file"
        else f"{target} is a directory"
    )
    assert reason in str(caught.value)


def test_third_party_records_are_json_with_the_same_shape(tmp_path: Path) -> None:
    log_file, stream = setup(tmp_path)
    lib = logging.getLogger("somelib")
    lib.warning("disk %s is %d%% full", "sda", 93)
    try:
        raise ValueError("kaput")
    except ValueError:
        lib.error("could not parse", exc_info=True)
    with structlog.contextvars.bound_contextvars(request_id="r-1"):
        lib.warning("inside a call")
    for records in (read(log_file), parse(stream.getvalue())):
        plain, failed, inside = records
        for record in records:
            assert_shape(record)
            assert record["logger"] == "somelib"
        assert (plain["event"], plain["level"]) == ("disk sda is 93% full", "warning")
        assert (failed["event"], failed["level"]) == ("could not parse", "error")
        lines = failed["exception"].splitlines()
        assert (lines[0], lines[-1]) == ("Traceback (most recent call last):", "ValueError: kaput")
        assert inside["request_id"] == "r-1"


# --- hostile disks, several writers, secrets in other forms ---------------------------------------


def test_a_log_file_that_cannot_be_written_is_reported_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("this system has no /dev/full to stand for a full disk")
    setup_logging("INFO", "/dev/full", console=False)
    emit(range(240))
    err = capsys.readouterr().err
    assert err.count("tweetgen: cannot write the log file /dev/full") == 1
    assert "No space left on device" in err
    assert "Traceback" not in err


def test_a_full_log_disk_leaves_the_cli_result_and_exit_code_alone(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("this system has no /dev/full to stand for a full disk")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "tweetgen", "generate", "--topic", "AI", "--provider", "sandbox",
         "--log-file", "/dev/full"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert result.stderr.count("cannot write the log file /dev/full") == 1
    assert "Traceback" not in result.stderr


_WRITER = """
import sys
from tweetgen.logs import get_logger, setup_logging
setup_logging("INFO", sys.argv[1], console=False, max_bytes=2048, backup_count=1000)
log = get_logger()
for seq in range(int(sys.argv[3])):
    log.info("tick", writer=sys.argv[2], seq=seq)
"""


def test_two_processes_rotating_one_file_lose_nothing(tmp_path: Path) -> None:
    log_file, per_writer = tmp_path / "shared.jsonl", 400
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(log_file), name, str(per_writer)])
        for name in "ab"
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    files = [
        p
        for p in tmp_path.iterdir()
        if p.name.startswith("shared.jsonl") and not p.name.endswith(".lock")
    ]
    records = [r for f in files for r in read(f)]
    assert len(files) > 10  # it really rotated, many times
    for name in "ab":
        assert sorted(r["seq"] for r in records if r["writer"] == name) == list(range(per_writer))
