"""Reading and writing the zip container of a `.gcx` file, defensively.

Reading treats the file as hostile. The central directory is refused unread when it is larger
than the allowed number of entries can need (zipfile keeps ~500 bytes per entry it lists). Before
anything is decompressed, every entry of the zip's central directory is checked: its kind (no
symbolic links), its name (no `..`, no absolute path, no backslash, only the names
graphc writes), its declared size, its compression ratio, the total declared size and the number
of entries. Entries are then read with a bound of their declared size, so a lying header cannot
make the reader decompress more. `.npy` entries are parsed from memory with
`allow_pickle=False` after their header (dtype, shape) has been checked against the size of the
payload and the dtype allow-list, so no object array and no pickle is ever loaded.
"""
from __future__ import annotations

import io
import json
import math
import os
import stat
import tempfile
import zipfile
from typing import Any

import numpy as np

from ..errors import GraphFileError
from .format import ARRAY_ENTRY, CENTRAL_ENTRY_BYTES, GRAPH_ENTRY, NPY_DESCR, Limits
from .jsoncost import check_parse_cost


# ------------------------------------------------------------------------------------ writing
def write_archive(path: str | os.PathLike, document: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write the document and arrays atomically (a temporary file renamed over `path`)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gcx-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as zf:
            text = json.dumps(document, indent=1, allow_nan=False, ensure_ascii=True)
            zf.writestr(_info(GRAPH_ENTRY, zipfile.ZIP_DEFLATED), text.encode("ascii"))
            for name, arr in arrays.items():
                buf = io.BytesIO()
                np.save(buf, np.asarray(arr, order="C"), allow_pickle=False)
                zf.writestr(_info(name, zipfile.ZIP_STORED), buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _info(name: str, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    return info


# ------------------------------------------------------------------------------------ reading
class Archive:
    """A validated view of a `.gcx` zip: `document()` and `array(name, dtype, shape)`."""

    def __init__(self, data: bytes, where: str, limits: Limits) -> None:
        self.where = where
        self.limits = limits
        self._check_central_directory(data)
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zf.infolist()
        except Exception as err:  # zipfile raises many kinds on corrupt input
            raise GraphFileError(f"{where}: not a valid .gcx file (not a readable zip archive: {err})") from None
        self.entries = self._check_entries(infos)

    def _check_central_directory(self, data: bytes) -> None:
        """Refuse a central directory bigger than max_entries entries can need before zipfile
        reads it: zipfile keeps an object of ~500 bytes per entry it lists (whatever the count
        the end record claims), so a file of bare directory entries costs ~10x its size."""
        try:
            end = zipfile._EndRecData(io.BytesIO(data))  # the end record (zip64 aware), as ZipFile reads it
        except Exception:
            end = None   # ZipFile itself reports what is wrong
        if not end:
            return
        limit = self.limits.max_entries * CENTRAL_ENTRY_BYTES
        if end[zipfile._ECD_SIZE] > limit or end[zipfile._ECD_ENTRIES_TOTAL] > self.limits.max_entries:
            raise GraphFileError(f"{self.where}: the archive's central directory lists "
                                 f"{end[zipfile._ECD_ENTRIES_TOTAL]} entries in {end[zipfile._ECD_SIZE]} bytes, "
                                 f"more than the limit of {self.limits.max_entries} entries ({limit} bytes)")

    def _check_entries(self, infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
        lim, where = self.limits, self.where
        if len(infos) > lim.max_entries:
            raise GraphFileError(f"{where}: the archive has {len(infos)} entries, more than the limit "
                                 f"{lim.max_entries}")
        entries: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = info.filename
            check_entry_name(name, where)
            if name in entries:
                raise GraphFileError(f"{where}: entry {name!r} appears twice in the archive")
            if stat.S_ISLNK(info.external_attr >> 16) or info.is_dir():
                raise GraphFileError(f"{where}: entry {name!r} is a symbolic link or a folder, not a file")
            if info.flag_bits & 0x1:
                raise GraphFileError(f"{where}: entry {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise GraphFileError(f"{where}: entry {name!r} uses an unsupported compression method "
                                     f"({info.compress_type})")
            limit = lim.max_json_size if name == GRAPH_ENTRY else lim.max_entry_size
            if info.file_size > limit:
                raise GraphFileError(f"{where}: entry {name!r} declares {info.file_size} bytes uncompressed, "
                                     f"more than the limit {limit}")
            if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > 1024:
                ratio = info.file_size / max(info.compress_size, 1)
                if ratio > lim.max_compression_ratio:
                    raise GraphFileError(f"{where}: entry {name!r} has a compression ratio of {ratio:.0f}:1, "
                                         f"more than the limit {lim.max_compression_ratio}:1 (a zip bomb?)")
            elif info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise GraphFileError(f"{where}: stored entry {name!r} has inconsistent sizes")
            total += info.file_size
            if total > lim.max_total_uncompressed:
                raise GraphFileError(f"{where}: the archive declares more than {lim.max_total_uncompressed} bytes "
                                     f"uncompressed in all")
            entries[name] = info
        if GRAPH_ENTRY not in entries:
            raise GraphFileError(f"{where}: the archive has no {GRAPH_ENTRY!r} entry; it is not a .gcx file")
        return entries

    def read(self, name: str) -> bytes:
        """The bytes of an entry, reading no more than its declared size."""
        info = self.entries.get(name)
        if info is None:
            raise GraphFileError(f"{self.where}: the archive has no entry {name!r}")
        try:
            with self.zf.open(info) as f:
                data = f.read(info.file_size + 1)
                if len(data) == info.file_size:
                    f.read(1)  # reaching the end makes zipfile check the CRC
        except Exception as err:
            raise GraphFileError(f"{self.where}: entry {name!r} is corrupt ({err})") from None
        if len(data) != info.file_size:
            raise GraphFileError(f"{self.where}: entry {name!r} holds {len(data)} bytes, not the declared "
                                 f"{info.file_size}")
        return data

    def document(self) -> Any:
        """The parsed graph.json (any JSON value: the caller validates it)."""
        data = self.read(GRAPH_ENTRY)
        check_parse_cost(data, self.entries[GRAPH_ENTRY].compress_size, self.limits, self.where)
        try:
            return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except RecursionError:
            raise GraphFileError(f"{self.where}: {GRAPH_ENTRY} nests too deeply") from None
        except (ValueError, UnicodeDecodeError) as err:
            raise GraphFileError(f"{self.where}: {GRAPH_ENTRY} is not valid JSON ({err})") from None

    def array(self, name: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        """The array in entry `name`, checked to have this dtype and shape."""
        return parse_npy(self.read(name), f"{self.where}: array entry {name!r}", dtype, shape)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def check_entry_name(name: str, where: str) -> None:
    """Refuse path tricks with a precise message, then anything graphc does not write."""
    if "\\" in name:
        raise GraphFileError(f"{where}: entry name {name!r} contains a backslash")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise GraphFileError(f"{where}: entry name {name!r} is an absolute path")
    if ".." in name.split("/"):
        raise GraphFileError(f"{where}: entry name {name!r} climbs out of the archive ('..')")
    if "\x00" in name:
        raise GraphFileError(f"{where}: entry name {name!r} contains a NUL character")
    if name != GRAPH_ENTRY and not ARRAY_ENTRY.match(name):
        raise GraphFileError(f"{where}: unexpected entry {name!r} (a .gcx archive holds {GRAPH_ENTRY} and "
                             f"arrays/<n>.npy only)")


def parse_npy(data: bytes, where: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Parse .npy bytes whose header must say `dtype` and `shape`; never unpickles."""
    buf = io.BytesIO(data)
    try:
        major, _minor = np.lib.format.read_magic(buf)
        if major == 1:
            header_shape, fortran, descr = np.lib.format.read_array_header_1_0(buf)
        elif major in (2, 3):
            header_shape, fortran, descr = np.lib.format.read_array_header_2_0(buf)
        else:
            raise ValueError(f"unknown .npy version {major}")
    except Exception as err:
        raise GraphFileError(f"{where} is not a valid .npy file ({err})") from None
    descr_str = descr.str if isinstance(descr, np.dtype) else str(descr)
    if descr.hasobject or descr_str not in NPY_DESCR:
        raise GraphFileError(f"{where} has dtype {descr_str!r}; only {sorted(NPY_DESCR.values())} "
                             f"(little-endian) are allowed, never objects or pickles")
    if NPY_DESCR[descr_str] != dtype:
        raise GraphFileError(f"{where} holds {NPY_DESCR[descr_str]} but the graph document declares {dtype}")
    if tuple(header_shape) != tuple(shape):
        raise GraphFileError(f"{where} has shape {tuple(header_shape)} but the graph document declares "
                             f"{tuple(shape)}")
    expected = math.prod(shape) * descr.itemsize
    payload = len(data) - buf.tell()
    if payload != expected:
        raise GraphFileError(f"{where} holds {payload} bytes of data; shape {tuple(shape)} of {dtype} needs {expected}")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as err:
        raise GraphFileError(f"{where} could not be read ({err})") from None
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")
    if arr.dtype == np.bool_ and arr.size and arr.view(np.uint8).max() > 1:
        raise GraphFileError(f"{where} is a bool array holding bytes other than 0 and 1")
    arr.flags.writeable = False  # shared by every node that refers to the entry
    return arr
