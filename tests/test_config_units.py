"""Durations and sizes: every accepted spelling, and errors that name the bad value."""

from __future__ import annotations

import pytest

from unified_system.config.units import parse_duration, parse_size


@pytest.mark.parametrize("text, seconds", [
    (0, 0.0), (5, 5.0), (2.5, 2.5), ("10", 10.0), ("0.5", 0.5),
    ("250ms", 0.25), ("10s", 10.0), ("1.5s", 1.5), ("5m", 300.0), ("1h", 3600.0),
    ("1d", 86400.0), ("1m30s", 90.0), ("1h0m5s", 3605.0), (" 10s ", 10.0), ("10S", 10.0),
    ("0s", 0.0), (".5s", 0.5),
])
def test_duration_accepts(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, fragment", [
    ("10x", "invalid duration '10x'"), ("s", "invalid duration 's'"), ("", "invalid duration ''"),
    ("ten seconds", "invalid duration"), ("5 m", "invalid duration"), (True, "invalid duration True"),
    (None, "invalid duration None"), ([1], "invalid duration"),
    (-1, "must not be negative, got -1"), ("-1s", "must not be negative, got '-1s'"),
    ("-250ms", "must not be negative"), (float("inf"), "must be finite"),
])
def test_duration_rejects(text, fragment):
    with pytest.raises(ValueError, match=None) as info:
        parse_duration(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize("text, size", [
    (0, 0), (1024, 1024), ("1024", 1024), ("100B", 100), ("512KB", 512_000),
    ("10MB", 10_000_000), ("1GB", 1_000_000_000), ("1.5GB", 1_500_000_000), ("1TB", 10**12),
    ("1KiB", 1024), ("512MiB", 512 * 1024**2), ("2GiB", 2 * 1024**3), ("10mb", 10_000_000),
    ("10 MB", 10_000_000), (1e6, 1_000_000),
])
def test_size_accepts(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text, fragment", [
    ("12XB", "invalid size '12XB'"), ("MB", "invalid size 'MB'"), ("10M", "invalid size '10M'"),
    (True, "invalid size True"), ("-5MB", "must not be negative, got '-5MB'"),
    (-1, "must not be negative"), ("1.5B", "whole number of bytes"), (0.5, "whole number"),
])
def test_size_rejects(text, fragment):
    with pytest.raises(ValueError) as info:
        parse_size(text)
    assert fragment in str(info.value)
