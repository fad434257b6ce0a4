"""Atomic file writes: a failed or interrupted write never leaves a partial or corrupted output file."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import InputError


def default_file_mode() -> int:
    """The mode a newly created file gets here: 0o666 less the process umask.

    The umask is read from /proc where it is available: setting it to read it back (the portable way) would, for
    an instant, change it for every thread of the process (ComfyUI's server threads included).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds, delete it otherwise.

    The temporary name keeps ``path``'s suffix (some writers pick the format from it) and starts with a dot, so
    file browsers and ComfyUI's output listing do not show it while it is being written. The finished file gets the
    mode of a normally created file (``mkstemp`` makes it private, 0600).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"Cannot create the output folder {path.parent} ({e}); choose a writable location.") \
            from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=str(path.parent))
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
