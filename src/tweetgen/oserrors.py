"""Why a path cannot be opened or created, in words (never
``[Errno 17] File exists: '/etc/hostname'``)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["explain_path_error"]


def _file_in_the_way(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists but is not a directory (``/etc/hostname`` of
    ``/etc/hostname/x``)."""
    for parent in reversed(path.parents):
        try:
            if parent.exists() and not parent.is_dir():
                return parent
        except OSError:
            return None
    return None


def _nearest_directory(path: Path) -> Path:
    """The deepest existing directory above ``path``: where a new file would have to be created."""
    for parent in path.parents:
        try:
            if parent.is_dir():
                return parent
        except OSError:
            continue
    return Path(path.anchor or ".")


_WORDS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ELOOP: "it goes through a loop of symbolic links",
    errno.EBUSY: "it is in use by the system",
    errno.ETXTBSY: "it is a program that is running",
}


def explain_path_error(error: BaseException, path: str | os.PathLike[str]) -> str:
    """Why ``path`` could not be opened, created or written, as a short phrase to follow
    ``cannot write X: ``.

    A file where a directory should be, a directory where a file should be, a missing directory, no
    permission and a read-only or full disk are said in words naming the path at fault; other errors
    give their own description, without the ``[Errno N]`` prefix.
    """
    target = Path(path)
    code = getattr(error, "errno", None)
    blocker = _file_in_the_way(target)
    if blocker is not None and code in (errno.EEXIST, errno.ENOTDIR, errno.ENOENT, None):
        return f"{blocker} is a file, not a directory"
    if code == errno.EISDIR or (code == errno.EEXIST and target.is_dir()):
        return f"{target} is a directory, not a file"
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"this user may not write {target} or create files in "
            f"{_nearest_directory(target)} (permission denied)"
        )
    if code == errno.EROFS:
        return f"{_nearest_directory(target)} is on a read-only file system"
    if code == errno.ENOENT:
        missing = target.parent
        if not missing.exists():
            return f"the directory {missing} does not exist and cannot be created here"
        return f"{target} cannot be created in {missing}"
    if code in _WORDS:
        return _WORDS[code]
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return reason[:1].lower() + reason[1:]
