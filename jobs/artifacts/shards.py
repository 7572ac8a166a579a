"""The preprocessed-dataset format: shards of .npy parts, their writer and a streaming reader.

A preprocess root location holds one sub-location per shard, ``shard-00000-of-00004`` ...; each is
a committed stage output (``_manifest.json``) with::

    index.json          which image is where, what was rejected, what the labels file names that is missing, the recipe
    part-00000.npy      [n, 3, 224, 224] float32 or uint8, at most images_per_part rows
    part-00001.npy      ...

Concatenating the shards 0..N-1 and their parts in order gives the dataset in natural-sort order.
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np

from jobs import errors
from jobs import store as store_mod
from jobs.artifacts import commit

FORMAT_VERSION = 1
INDEX = "index.json"
MODES = {"float32": np.dtype(np.float32), "uint8": np.dtype(np.uint8)}
DEFAULT_IMAGES_PER_PART = 500
_SHARD_RE = re.compile(r"^shard-(\d{5})-of-(\d{5})$")
REJECT_KINDS = ("undecodable", "unlabelled", "too_large")
"""Why an image is not in a shard (``index.json``'s ``counts``): PIL cannot decode it or its pixels have no 8-bit
scale, the labels file has no label for it, or it has more pixels than the limit."""
MISSING_NAMED = 20
"""Missing images (labelled, not among the images) that ``index.json`` names."""
_HEADER_LEN = 128  # the whole .npy preamble (magic, length, dict, padding): fixed, so it can be rewritten


def shard_dir_name(i: int, n: int) -> str:
    return f"shard-{i:05d}-of-{n:05d}"


def part_name(p: int) -> str:
    return f"part-{p:05d}.npy"


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A version 1.0 .npy preamble padded to exactly ``_HEADER_LEN`` bytes (64-byte aligned)."""
    descr = np.lib.format.dtype_to_descr(dtype)
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    magic = np.lib.format.magic(1, 0)
    pad = _HEADER_LEN - len(magic) - 2 - len(text) - 1
    if pad < 0:
        raise ValueError(f"shape {shape} does not fit a {_HEADER_LEN}-byte .npy header")
    text = text + " " * pad + "\n"
    return magic + struct.pack("<H", len(text)) + text.encode("latin1")


class ShardWriter:
    """Writes one shard into a local directory, streaming: memory stays at one image.

    ``add`` appends an accepted image to the current part file (its header says 0 rows until the
    part is closed, then is rewritten in place with the real count); ``reject`` lists one that was
    not; ``close`` writes index.json and returns it.
    """

    def __init__(self, directory: pathlib.Path, shard: int, num_shards: int, mode: str,
                 image_shape: tuple[int, ...], recipe: dict[str, Any],
                 images_per_part: int = DEFAULT_IMAGES_PER_PART):
        if mode not in MODES:
            raise errors.BadInput(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        if images_per_part < 1:
            raise errors.BadInput(f"images_per_part {images_per_part}: must be at least 1")
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.shard, self.num_shards, self.mode = shard, num_shards, mode
        self.dtype = MODES[mode]
        self.image_shape = tuple(int(d) for d in image_shape)
        self.recipe = recipe
        self.images_per_part = images_per_part
        self.images: list[dict[str, Any]] = []
        self.rejected: list[dict[str, str]] = []
        self.counts = {"seen": 0, "accepted": 0, **{kind: 0 for kind in REJECT_KINDS}}
        # images the labels file names that are not among the images (the whole listing, the same in every
        # shard): how many, and the first MISSING_NAMED; the stage sets it
        self.missing: dict[str, Any] = {"count": 0, "names": []}
        self._part = -1
        self._rows = 0
        self._file: BinaryIO | None = None
        self.bytes_written = 0

    def _open_part(self) -> None:
        self._close_part()
        self._part += 1
        self._rows = 0
        self._file = open(self.dir / part_name(self._part), "wb")  # noqa: SIM115 (closed in _close_part)
        self._file.write(_npy_header(self.dtype, (0,) + self.image_shape))

    def _close_part(self) -> None:
        if self._file is None:
            return
        self._file.seek(0)
        self._file.write(_npy_header(self.dtype, (self._rows,) + self.image_shape))
        self._file.close()
        self._file = None

    def add(self, name: str, label: int | None, array: np.ndarray) -> None:
        """Append one image (already in this shard's dtype and shape) in dataset order."""
        if array.dtype != self.dtype or array.shape != self.image_shape:
            raise ValueError(f"{name}: got {array.dtype} {array.shape}, "
                             f"shard holds {self.dtype} {self.image_shape}")
        if self._file is None or self._rows >= self.images_per_part:
            self._open_part()
        assert self._file is not None
        data = memoryview(np.ascontiguousarray(array)).cast("B")
        self._file.write(data)
        self.bytes_written += data.nbytes
        self.images.append({"name": name, "label": label, "part": self._part, "row": self._rows})
        self._rows += 1
        self.counts["seen"] += 1
        self.counts["accepted"] += 1

    def reject(self, name: str, reason: str, kind: str) -> None:
        """List an image that is not in the shard; ``kind`` is one of ``REJECT_KINDS``."""
        if kind not in REJECT_KINDS:
            raise ValueError(f"reject kind {kind!r}")
        self.rejected.append({"name": name, "reason": reason})
        self.counts["seen"] += 1
        self.counts[kind] += 1

    def close(self) -> dict[str, Any]:
        self._close_part()
        index = {
            "format": FORMAT_VERSION,
            "shard": self.shard,
            "num_shards": self.num_shards,
            "mode": self.mode,
            "dtype": self.dtype.name,
            "image_shape": list(self.image_shape),
            "recipe": self.recipe,
            "num_images": len(self.images),
            "num_parts": self._part + 1,
            "images_per_part": self.images_per_part,
            "images": self.images,
            "rejected": self.rejected,
            "counts": self.counts,
            "missing": self.missing,
        }
        (self.dir / INDEX).write_text(_dump_index(index))
        return index

    def abort(self) -> None:
        """Close the open part file without finishing the shard (the directory is thrown away)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _dump_index(index: dict[str, Any]) -> str:
    """JSON with one line per top-level key and one line per image: readable, and small at 50,000 images."""
    fields = []
    for key, value in index.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            body = ",\n  ".join(json.dumps(v, separators=(", ", ": ")) for v in value)
            fields.append(f"{json.dumps(key)}: [\n  {body}\n ]")
        else:
            fields.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{\n " + ",\n ".join(fields) + "\n}\n"


# ----------------------------------------------------------------------------------------------
# Reading


class _CountingReader:
    """Reads through to a stream, counting bytes: numpy's header parser only calls ``read``."""

    def __init__(self, f: BinaryIO):
        self._f = f
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.count += len(data)
        return data


def read_npy_header(f: BinaryIO, what: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Parse a .npy preamble from a stream: (shape, dtype, bytes read); leaves the stream at the first data byte."""
    f = _CountingReader(f)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy version {version} is not supported")
    except ValueError as e:
        raise errors.BadInput(f"{what}: not a readable .npy file ({e})") from e
    if fortran:
        raise errors.BadInput(f"{what}: Fortran-ordered arrays are not supported")
    return tuple(shape), dtype, f.count


def _read_exact(f: BinaryIO, view: memoryview, what: str) -> None:
    done = 0
    total = view.nbytes
    while done < total:
        n = f.readinto(view[done:])
        if not n:
            raise errors.BadInput(f"{what}: ends early ({done} of {total} bytes in this read)")
        done += n


class Dataset:
    """A committed, preprocessed dataset: all shards of a preprocess root, read in order."""

    def __init__(self, uri: str, root: store_mod.Store, shards: list[store_mod.Store],
                 index: list[dict[str, Any]]):
        self.uri = uri
        self._root = root
        self._shards = shards
        self.index = index
        first = index[0]
        self.mode: str = first["mode"]
        self.dtype: np.dtype = np.dtype(first["dtype"])
        self.image_shape: tuple[int, ...] = tuple(first["image_shape"])
        self.recipe: dict[str, Any] = first["recipe"]
        self.num_shards = len(shards)
        self.names: list[str] = [im["name"] for ix in index for im in ix["images"]]
        self.labels = np.array([-1 if im["label"] is None else im["label"]
                                for ix in index for im in ix["images"]], dtype=np.int64)
        self.num_images = len(self.names)
        self.bytes_per_image = int(np.prod(self.image_shape)) * self.dtype.itemsize
        self.bytes_read = 0  # from the store, all passes: .npy headers and rows
        self._rings: dict[tuple[int, int], list[np.ndarray]] = {}
        # (shard number, part number, rows in the file, rows skipped first, rows taken) in reading order
        self._parts: list[tuple[int, int, int, int, int]] = []
        for s, ix in enumerate(index):
            rows: dict[int, int] = {}
            for im in ix["images"]:
                rows[im["part"]] = rows.get(im["part"], 0) + 1
            for p in sorted(rows):
                self._parts.append((s, p, rows[p], 0, rows[p]))
        self.first = 0
        """Index (in the whole dataset) of this dataset's first image: 0, or where a ``part`` starts."""

    def __repr__(self) -> str:
        return (f"Dataset({self.uri!r}, {self.num_images} images, {self.mode}, "
                f"{self.num_shards} shards)")

    def part(self, start: int, stop: int) -> Dataset:
        """Images ``start`` .. ``stop - 1`` (in dataset order) as a dataset of their own, read from the same files
        (the rows before ``start`` in a file are read past, not kept); ``first`` is ``start``. ``BadInput`` for an
        empty or out-of-range slice."""
        if not 0 <= start < stop <= self.num_images:
            raise errors.BadInput(f"{self.uri}: images {start}..{stop - 1} are not a part of {self.num_images} images")
        view = copy.copy(self)
        view.names, view.labels = self.names[start:stop], self.labels[start:stop]
        view.num_images, view.first = stop - start, self.first + start
        view.bytes_read, view._rings, view._parts = 0, {}, []
        at = 0  # images before the current file, within this dataset
        for s, p, rows, skip, take in self._parts:
            lo, hi = max(start, at), min(stop, at + take)
            if lo < hi:
                view._parts.append((s, p, rows, skip + lo - at, hi - lo))
            at += take
        return view

    def __len__(self) -> int:
        return self.num_images

    def _ring(self, batch_size: int, buffers: int) -> list[np.ndarray]:
        """The dataset's own batch buffers for this batch size, kept across passes and touched once when made: a
        pass (the timed one after a warm-up) does not pay their page faults again (38 MB a buffer at batch 256 of
        uint8 images; the first pass paid about as much as the device's time, measured)."""
        key = (batch_size, buffers)
        if key not in self._rings:
            ring = [np.empty((batch_size,) + self.image_shape, dtype=self.dtype) for _ in range(buffers)]
            for buf in ring:
                buf.fill(0)
            self._rings[key] = ring
        return self._rings[key]

    def iter_batches(self, batch_size: int, reuse: bool = True, buffers: int = 1) -> Iterator[tuple[np.ndarray, int]]:
        """Yield ``(array [batch_size, *image_shape], real_rows)`` in dataset order.

        Every array has exactly ``batch_size`` rows; the last one is zero-padded after its real
        rows. Reads stream from the store ``batch_size`` images at a time. With ``reuse`` (the
        default) ``buffers`` arrays, the dataset's own for that batch size (kept across passes), are
        filled in turn: each stays valid until ``buffers`` more batches have been asked for, in this
        pass or the next, so copy it to keep it longer. Without ``reuse`` every batch is a new array.
        Each call starts a new pass.
        """
        if batch_size < 1:
            raise errors.BadInput(f"batch size {batch_size}: must be at least 1")
        bpi = self.bytes_per_image
        ring = self._ring(batch_size, max(1, buffers)) if reuse else [np.empty((batch_size,) + self.image_shape,
                                                                               dtype=self.dtype)]
        turn = 0
        buf = ring[0]
        flat = memoryview(buf).cast("B")
        filled = 0
        for s, p, rows, skip, take in self._parts:
            store = self._shards[s]
            name = part_name(p)
            what = f"{store.uri}/{name}"
            with store.open_read(name) as f:
                shape, dtype, header_bytes = read_npy_header(f, what)
                self.bytes_read += header_bytes
                if shape != (rows,) + self.image_shape or dtype != self.dtype:
                    raise errors.BadInput(f"{what}: holds {dtype} {shape}, index.json says "
                                          f"{self.dtype} {(rows,) + self.image_shape}")
                self._read_past(f, skip, what)
                left = take
                while left:
                    take = min(left, batch_size - filled)
                    _read_exact(f, flat[filled * bpi:(filled + take) * bpi], what)
                    self.bytes_read += take * bpi
                    filled += take
                    left -= take
                    if filled == batch_size:
                        yield buf, batch_size
                        if reuse:
                            turn = (turn + 1) % len(ring)
                            buf = ring[turn]
                        else:
                            buf = np.empty_like(buf)
                        flat = memoryview(buf).cast("B")
                        filled = 0
        if filled:
            buf[filled:] = 0
            yield buf, filled


    def _read_past(self, f: BinaryIO, rows: int, what: str) -> None:
        """Skip ``rows`` images of an open part file (a ``part`` starting inside it): read into a scratch row."""
        if rows <= 0:
            return
        scratch = memoryview(np.empty(self.bytes_per_image, dtype=np.uint8)).cast("B")
        for _ in range(rows):
            _read_exact(f, scratch, what)
            self.bytes_read += self.bytes_per_image


def _shard_stores(root: store_mod.Store) -> dict[int, dict[int, store_mod.Store]]:
    """{num_shards: {shard: store}} for every shard-XXXXX-of-YYYYY folder holding any object."""
    found: dict[int, dict[int, store_mod.Store]] = {}
    for name in root.list():
        top = name.split("/", 1)[0]
        m = _SHARD_RE.match(top)
        if m and "/" in name:
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = root.child(top)
    return found


def open_dataset(uri: str) -> Dataset:
    """Open the preprocess root at ``uri``: every shard must be committed and consistent."""
    root = store_mod.open_store(uri)
    found = _shard_stores(root)
    if not found:
        raise errors.NotCommitted(f"preprocessed dataset {root.uri}: no shard-XXXXX-of-YYYYY outputs there")
    if len(found) > 1:
        raise errors.BadInput(f"preprocessed dataset {root.uri}: shards of different runs "
                              f"(num_shards {', '.join(str(n) for n in sorted(found))}); use a fresh location")
    (num_shards, present), = found.items()
    shards = [root.child(shard_dir_name(i, num_shards)) for i in range(num_shards)]
    missing = [i for i in range(num_shards) if i not in present or commit.read_manifest(shards[i]) is None]
    if missing:
        listed = ", ".join(shard_dir_name(i, num_shards) for i in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise errors.NotCommitted(f"preprocessed dataset {root.uri}: {len(missing)} of {num_shards} shards "
                                  f"not committed: {listed}{more}")
    index = []
    for i, store in enumerate(shards):
        what = f"{store.uri}/{INDEX}"
        try:
            ix = json.loads(store.read_text(INDEX))
        except errors.StoreError as e:
            raise errors.BadInput(f"{what}: missing from a committed shard") from e
        except ValueError as e:
            raise errors.BadInput(f"{what}: not valid JSON ({e})") from e
        if not isinstance(ix, dict) or ix.get("format") != FORMAT_VERSION:
            raise errors.BadInput(f"{what}: format {ix.get('format') if isinstance(ix, dict) else None!r}, "
                                  f"expected {FORMAT_VERSION}")
        if ix.get("shard") != i or ix.get("num_shards") != num_shards:
            raise errors.BadInput(f"{what}: says shard {ix.get('shard')} of {ix.get('num_shards')}, "
                                  f"expected {i} of {num_shards}")
        if ix.get("mode") not in MODES or ix.get("dtype") != MODES[ix["mode"]].name:
            raise errors.BadInput(f"{what}: mode {ix.get('mode')!r} dtype {ix.get('dtype')!r} not valid")
        if index:
            for key in ("mode", "dtype", "image_shape", "recipe"):
                if ix.get(key) != index[0].get(key):
                    raise errors.BadInput(f"{what}: {key} {ix.get(key)!r} differs from shard 0's "
                                          f"{index[0].get(key)!r}")
        index.append(ix)
    return Dataset(uri, root, shards, index)
