"""Dates inside file contents are clamped to the lock's epoch (builder/store/dated.py)."""

from __future__ import annotations

from builder.store.dated import clamp_dates

EPOCH = 1_783_764_997  # a lock's source_date_epoch: day 20645
DAY = EPOCH // 86400
SHADOW = (
    b"root:*:20794:0:99999:7:::\n"  # written by pwconv on the build's day
    b"daemon:*:19000:0:99999:7:::\n"  # a base image's own account, older than the epoch
    b"nobody:!::0:99999:7:::\n"  # aging off
    b"agent:!:20800:0:99999:7:::\n"
)


def test_days_after_the_epoch_become_the_epochs_day() -> None:
    lines = clamp_dates(SHADOW, EPOCH).decode().splitlines()

    assert lines[0] == f"root:*:{DAY}:0:99999:7:::"
    assert lines[3] == f"agent:!:{DAY}:0:99999:7:::"


def test_older_days_and_empty_fields_are_kept() -> None:
    lines = clamp_dates(SHADOW, EPOCH).decode().splitlines()

    assert lines[1] == "daemon:*:19000:0:99999:7:::"
    assert lines[2] == "nobody:!::0:99999:7:::"


def test_a_build_on_any_later_day_gives_the_same_bytes() -> None:
    tomorrow = SHADOW.replace(b"20794", b"20795").replace(b"20800", b"20801")

    assert clamp_dates(SHADOW, EPOCH) == clamp_dates(tomorrow, EPOCH)


def test_an_epoch_of_zero_turns_aging_off_rather_than_forcing_a_password_change() -> None:
    # day 0 means "change the password at next login" (pam_unix): shadow writes "" instead
    assert clamp_dates(b"root:*:20794:0:99999:7:::\n", 0) == b"root:*::0:99999:7:::\n"


def test_other_lines_pass_through_unchanged() -> None:
    text = b"# not an entry\n\nshort:line\nweird:*:x1:0::::\n"

    assert clamp_dates(text, EPOCH) == text
