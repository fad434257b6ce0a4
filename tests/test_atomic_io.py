"""atomic_io.atomic_path: all-or-nothing writes whose result has the mode of a normally created file."""

from __future__ import annotations

import os
import stat

import pytest

from facelift_models.atomic_io import atomic_path, default_file_mode


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one afterwards."""
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_written_file_gets_the_umask_mode(tmp_path, umask, mask):
    umask(mask)
    target = tmp_path / "head.ply"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"ply\n")
    normal = tmp_path / "normal.bin"
    normal.write_bytes(b"x")  # how a plain open() would create it under the same umask
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(normal.stat().st_mode) == 0o666 & ~mask
    assert default_file_mode() == 0o666 & ~mask


def test_replacing_a_file_keeps_the_umask_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "out.splat"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "head.ply"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("writer failed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
