"""RTMP 7.2.2.6 / 7.2.2.1: where a recorded stream lives, and names that may not leave it.

:func:`safe_record_path` maps an ``(app, stream name)`` pair to the file under
``ServerConfig.record_dir`` (``<record_dir>/<app>/<name>.flv``) and refuses names that
could leave that directory; :func:`find_recording` is the same lookup for playback.
The names come from the peer's ``publish``/``play``, so they are untrusted input.

Recordings made by ``record_all`` are split into *parts*, one file each, named after
the stream with a sortable suffix: ``<name>-<YYYYMMDDTHHMMSSZ>-<NNNN>.flv``, the UTC
time the part began and a per-stream sequence number (at least four digits) that keeps
growing across publishes (:func:`part_path`, :func:`list_parts`).  ``play name`` finds
``<name>.flv`` or else the newest part; ``play <name>-<stamp>-<NNNN>`` is that part.
"""

from __future__ import annotations

import os
import pathlib
import re
from typing import Iterator, List, Optional, Tuple, Union

__all__ = ["RECORD_SUFFIX", "PART_STAMP_FORMAT", "safe_record_path", "find_recording",
           "part_path", "list_parts", "safe_data_path"]

#: The file name suffix of recordings (nginx-rtmp's ``record_suffix`` default).
RECORD_SUFFIX = ".flv"

#: The longest single path component accepted (common file-system limit, in bytes).
_MAX_COMPONENT_BYTES = 255

#: Characters that never appear in a recorded stream's path: NUL and other C0 controls
#: (they break logs and some file systems) and the Windows separator.
_FORBIDDEN_CHARS = frozenset(chr(c) for c in range(0x20)) | {"\x7f", "\\"}
#: What Windows reads as a drive before ``:`` (``pathlib.PureWindowsPath``'s drive letters).
_DRIVE_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

#: ``time.strftime`` format of the UTC start time in a part's name (sorts as text).
PART_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
#: What follows ``<name>`` in a part's file name: ``-<stamp>-<index>.flv``.
_PART_SUFFIX = re.compile(r"-(\d{8}T\d{6}Z)-(\d{4,})" + re.escape(RECORD_SUFFIX) + r"\Z")



def _check_components(label: str, value: str) -> List[str]:
    """Split ``value`` on ``/`` and refuse anything but plain names (no ``.``/``..``/empty)."""
    if not value:
        raise ValueError(f"{label} is empty")
    bad = _FORBIDDEN_CHARS.intersection(value)
    if bad:
        shown = ", ".join(sorted(repr(c) for c in bad))
        raise ValueError(f"{label} {value!r} contains forbidden characters ({shown})")
    if value.startswith("/"):
        raise ValueError(f"{label} {value!r} is an absolute path")
    parts = value.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"{label} {value!r} has an empty, '.' or '..' path component")
        if part[1:2] == ":" and part[0] in _DRIVE_LETTERS:  # "C:x" names a drive on Windows
            raise ValueError(f"{label} {value!r} names a drive")
        if len(part.encode("utf-8", "surrogatepass")) > _MAX_COMPONENT_BYTES:
            raise ValueError(f"{label} {value!r} has a component over {_MAX_COMPONENT_BYTES} bytes")
    return parts


def safe_record_path(
    record_dir: Union[str, "os.PathLike[str]"], app: str, stream_name: str
) -> pathlib.Path:
    """RTMP 7.2.2.6 / 7.2.2.1: the FLV file of stream ``stream_name`` in application ``app``.

    The result is ``<record_dir>/<app>/<name>.flv``.  The name is what the peer sent in
    ``publish`` or ``play``, so it is untrusted:

    * a query string (``name?key=secret``, as ffmpeg and OBS append tokens) is dropped;
    * an ``flv:`` prefix (RTMP 7.2.2.1 names files by type prefix) is dropped, and a
      trailing ``.flv`` is not doubled;
    * ``app`` and the name may be nested (``a/b``) as long as every component is a plain
      name: empty, ``.``, ``..``, absolute paths, backslashes, NUL and other control
      characters, Windows drive names and components over 255 bytes raise
      :class:`ValueError`;
    * finally the resolved path (symbolic links followed) must still lie inside
      ``record_dir``, so a link planted in the directory cannot redirect a recording.
    """
    root, path = _record_path(record_dir, app, stream_name)
    _check_inside(root, path, app, stream_name)
    return path


def find_recording(
    record_dir: Union[str, "os.PathLike[str]"], app: str, stream_name: str
) -> Optional[pathlib.Path]:
    """RTMP 7.2.2.1: :func:`safe_record_path` if that file exists, else the newest part
    of the stream (:func:`list_parts`), else None.

    The folder is opened first: a ``play`` of a stream whose application has recorded
    nothing yet (the live case) costs one failing system call; one that has a folder
    costs a ``stat`` and a listing of that folder, not the resolution of every link.
    """
    parts = _record_parts(app, stream_name)
    try:
        entries = os.scandir(os.path.join(record_dir, *parts[:-1]))
    except OSError:  # no such folder (nothing recorded for the application) or unreadable
        return None
    with entries:
        if not os.path.isfile(os.path.join(record_dir, *parts)):  # no Path objects for a miss
            newest = _scan_parts(entries, record_dir, app, stream_name, parts)
            return newest[-1][1] if newest else None
    root = pathlib.Path(record_dir)
    path = root.joinpath(*parts)
    _check_inside(root, path, app, stream_name)
    return path


def part_path(
    record_dir: Union[str, "os.PathLike[str]"], app: str, stream_name: str, stamp: str,
    index: int,
) -> pathlib.Path:
    """RTMP 7.2.2.6: the file of part ``index`` of a ``record_all`` recording:
    ``<record_dir>/<app>/<name>-<stamp>-<index:04d>.flv``, checked as
    :func:`safe_record_path` checks a name (ValueError).  ``stamp`` is the part's UTC
    start time in :data:`PART_STAMP_FORMAT`."""
    if index < 0 or not re.fullmatch(r"\d{8}T\d{6}Z", stamp):
        raise ValueError(f"bad part stamp {stamp!r} or index {index}")
    parts = _record_parts(app, stream_name)
    parts[-1] = f"{_base(parts[-1])}-{stamp}-{index:04d}{RECORD_SUFFIX}"
    _check_components("part name", parts[-1])
    root = pathlib.Path(record_dir)
    path = root.joinpath(*parts)
    _check_inside(root, path, app, stream_name)
    return path


def list_parts(
    record_dir: Union[str, "os.PathLike[str]"], app: str, stream_name: str
) -> List[Tuple[int, pathlib.Path]]:
    """The parts of stream ``stream_name`` that exist, as ``(index, path)``, oldest first.

    Sorted by the sequence number (not by the time in the name, which a clock stepping
    back could disorder).  Only regular files count (no symbolic links), and a name
    whose folder could leave ``record_dir`` raises ValueError.
    """
    return _list_parts(record_dir, app, stream_name, _record_parts(app, stream_name))


def _list_parts(record_dir: Union[str, "os.PathLike[str]"], app: str, stream_name: str,
                parts: List[str]) -> List[Tuple[int, pathlib.Path]]:
    """:func:`list_parts` with the checked components of ``app/stream_name`` given."""
    try:
        entries = os.scandir(os.path.join(record_dir, *parts[:-1]))
    except OSError:  # no such directory (nothing recorded yet) or unreadable
        return []
    with entries:
        return _scan_parts(entries, record_dir, app, stream_name, parts)


def _scan_parts(entries: Iterator["os.DirEntry[str]"], record_dir: Union[str, "os.PathLike[str]"],
                app: str, stream_name: str, parts: List[str]) -> List[Tuple[int, pathlib.Path]]:
    """:func:`list_parts` over ``entries``, the listing of the parts' folder."""
    folder = os.path.join(record_dir, *parts[:-1])
    base = _base(parts[-1])
    found: List[Tuple[int, pathlib.Path]] = []
    for entry in entries:
        if not entry.name.startswith(base):
            continue
        match = _PART_SUFFIX.match(entry.name, len(base))
        # Regular files only: a link planted among the parts cannot lead elsewhere.
        if match is not None and entry.is_file(follow_symlinks=False):
            found.append((int(match.group(2)), pathlib.Path(folder, entry.name)))
    if found:
        _check_inside(pathlib.Path(record_dir), pathlib.Path(folder), app, stream_name)
    found.sort()
    return found


def _base(file_name: str) -> str:
    """A recording's file name without its ``.flv`` suffix."""
    return file_name[: -len(RECORD_SUFFIX)]


def safe_data_path(
    directory: Union[str, "os.PathLike[str]"], app: str, name: str, suffix: str, label: str
) -> pathlib.Path:
    """``<directory>/<app>/<name><suffix>`` for a flat ``name`` the peer chose (``label``
    names it in errors): the application may be nested, the name may not contain ``/``;
    both are checked as :func:`safe_record_path` checks (ValueError), the file's name
    (``name`` and ``suffix``) must fit in 255 bytes, and the resolved path must lie
    inside ``directory``."""
    if not isinstance(app, str) or not isinstance(name, str):
        raise TypeError("app and name must be str")
    if "/" in name:
        raise ValueError(f"{label} {name!r} contains '/'")
    parts = _check_components("application name", app) + _check_components(label, name)
    if len((parts[-1] + suffix).encode("utf-8", "surrogatepass")) > _MAX_COMPONENT_BYTES:
        raise ValueError(f"{label} {name!r} makes a file name over {_MAX_COMPONENT_BYTES} bytes")
    root = pathlib.Path(directory)
    path = root.joinpath(*parts[:-1], parts[-1] + suffix)
    _check_inside(root, path, app, name, label, "data")
    return path


def _record_path(
    record_dir: Union[str, "os.PathLike[str]"], app: str, stream_name: str
) -> Tuple[pathlib.Path, pathlib.Path]:
    """``(record_dir, <record_dir>/<app>/<name>.flv)`` with every component checked."""
    root = pathlib.Path(record_dir)
    return root, root.joinpath(*_record_parts(app, stream_name))


def _record_parts(app: str, stream_name: str) -> List[str]:
    """The checked path components of ``<app>/<name>.flv`` under the record directory."""
    if not isinstance(app, str) or not isinstance(stream_name, str):
        raise TypeError("app and stream_name must be str")
    name = stream_name.split("?", 1)[0]
    if name[:4].lower() == "flv:":
        name = name[4:]
    app_parts = _check_components("application name", app)
    name_parts = _check_components("stream name", name)
    if not name_parts[-1].lower().endswith(RECORD_SUFFIX):
        name_parts[-1] += RECORD_SUFFIX
    return app_parts + name_parts


def _check_inside(root: pathlib.Path, path: pathlib.Path, app: str, stream_name: str,
                  what: str = "stream", where: str = "record") -> None:
    """ValueError unless ``path``, links followed, lies inside ``root``."""
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise ValueError(f"{what} {app}/{stream_name!r} resolves outside the {where} directory")
