"""The MNIST loader, used from Chapter 3 onward ("Chapter 3: Backpropagation by hand").

``load_mnist()`` finds the four official MNIST files, checks each against its published MD5,
parses the IDX format with NumPy and returns images as float32 in [0, 1] with shape (N, 784)
and labels as int64 with shape (N,).

Where the files are looked for, in this order (in each folder, directly or in a ``mnist/``
subfolder):

1. the ``data_dir`` argument;
2. the folder named by the ``LOOPY_EDU_DATA`` environment variable;
3. the user cache, ``$XDG_CACHE_HOME/loopy_edu/mnist`` (default ``~/.cache/loopy_edu/mnist``).

Missing files are downloaded into the user cache when ``download=True``. When only the
10,000-image test set can be had (say, on an offline machine), the loader falls back to a fixed
8,000/2,000 split of it and warns loudly with ``MNISTFallbackWarning``; see ``fallback_split``.
``warn=False`` silences that warning (the returned ``MNIST`` still records the fallback), and
``MNIST.summary()`` says in one line, without local paths, which data was loaded and why.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges, published under
CC BY-SA 3.0.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import re
import tempfile
import urllib.request
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "MNIST",
    "MNISTChecksumError",
    "MNISTDownloadError",
    "MNISTFallbackWarning",
    "IDXFormatError",
    "load_mnist",
    "download_file",
    "parse_idx",
    "fallback_split",
    "search_dirs",
    "cache_dir",
]

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# Published MD5 of each gzip file, as distributed by the mirrors below.
MD5 = {
    TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
    TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
    TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
}

# Official mirrors, tried in order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

TIMEOUT = 30.0  # seconds, for connecting and for each read from the network
ENV_VAR = "LOOPY_EDU_DATA"

IMAGES_MAGIC = 2051  # IDX: unsigned bytes, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 2049  # IDX: unsigned bytes, 1 dimension (N,)
N_PIXELS = 28 * 28
N_CLASSES = 10


class MNISTChecksumError(ValueError):
    """A file (on disk or just downloaded) does not match its published MD5."""


class IDXFormatError(ValueError):
    """A file is not a valid gzip-compressed IDX file of the expected kind."""


class MNISTDownloadError(OSError):
    """Every mirror failed to deliver a file with the right MD5."""


class MNISTFallbackWarning(UserWarning):
    """Full MNIST was not available; the data is a split of the 10k test set only."""


@dataclass(frozen=True, eq=False)
class MNIST:
    """MNIST as arrays.

    Full MNIST has N_train = 60,000 and N_test = 10,000; the fallback has 8,000 and 2,000.
    ``summary()`` puts ``fallback`` and ``reason`` into one line fit for a published page.

    Attributes
    ----------
    x_train : np.ndarray, shape (N_train, 784)
        Training images, float32 in [0, 1], each 28x28 image row by row.
    y_train : np.ndarray, shape (N_train,)
        Training labels, int64 in 0..9.
    x_test : np.ndarray, shape (N_test, 784)
        Test images, float32 in [0, 1].
    y_test : np.ndarray, shape (N_test,)
        Test labels, int64 in 0..9.
    source : str
        Where the data came from (with local folders).
    fallback : bool
        True for the test-set-only split.
    reason : str
        Why these files were used, without local paths.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    fallback: bool = False
    reason: str = ""

    def __repr__(self):
        return (
            f"MNIST(x_train={self.x_train.shape}, y_train={self.y_train.shape}, "
            f"x_test={self.x_test.shape}, y_test={self.y_test.shape}, "
            f"fallback={self.fallback}, source={self.source!r})"
        )

    def summary(self) -> str:
        """One line saying which data this is and why, with no local paths (safe to publish).

        For example: "MNIST: fixed 8,000/2,000 split of the official 10,000-image test set (the
        training files were not found locally and could not be downloaded); accuracies are not
        comparable with published full-MNIST figures".

        Returns
        -------
        str
            The line, without a trailing newline.
        """
        n_train, n_test = len(self.y_train), len(self.y_test)
        why = f" ({self.reason})" if self.reason else ""
        if self.fallback:
            return (
                f"MNIST: fixed {n_train:,}/{n_test:,} split of the official "
                f"{n_train + n_test:,}-image test set{why}; accuracies are not comparable with "
                f"published full-MNIST figures"
            )
        return f"MNIST: the official {n_train:,}/{n_test:,} train/test split{why}"


# ---------------------------------------------------------------------------------------------
# Where to look


def cache_dir() -> Path:
    """The user cache folder for MNIST: ``$XDG_CACHE_HOME/loopy_edu/mnist`` or
    ``~/.cache/loopy_edu/mnist``.

    Returns
    -------
    pathlib.Path
        The folder; it may not exist yet.
    """
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "loopy_edu" / "mnist"


def _as_path(value, name):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a path (str or os.PathLike) or None, got {value!r}")
    return Path(value).expanduser()


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched, in order: data_dir, $LOOPY_EDU_DATA, the user cache; each then its
    ``mnist/``.

    Parameters
    ----------
    data_dir : str or os.PathLike or None
        A folder to search first.

    Returns
    -------
    list of pathlib.Path
        The folders, without repeats; they need not exist.

    Raises
    ------
    TypeError
        If ``data_dir`` is not a path or None.
    """
    roots = []
    if data_dir is not None:
        roots.append(_as_path(data_dir, "data_dir"))
    env = os.environ.get(ENV_VAR)
    if env:
        roots.append(Path(env).expanduser())
    roots.append(cache_dir())
    dirs = []
    for root in roots:
        for d in (root, root / "mnist"):
            if d not in dirs:
                dirs.append(d)
    return dirs


def _find(name, dirs):
    for d in dirs:
        path = d / name
        if path.is_file():
            return path
    return None


# ---------------------------------------------------------------------------------------------
# Checking and parsing


def _md5(data):
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _read_verified(path):
    """Read a file found on disk and check its MD5; return its bytes."""
    raw = path.read_bytes()
    want, got = MD5[path.name], _md5(raw)
    if got != want:
        raise MNISTChecksumError(
            f"{path}: expected MD5 {want}, got {got} ({len(raw):,} bytes); the file is corrupt "
            f"or incomplete. Delete it so that load_mnist(download=True) downloads it again, "
            f"or replace it with the official file."
        )
    return raw


def parse_idx(data: bytes, expected_magic: int,
              name: str | os.PathLike = "data") -> np.ndarray:
    """Parse the bytes of an uncompressed IDX file into a uint8 array of its dimensions.

    Layout: a big-endian int32 magic number (0x0000 08 nd: unsigned bytes, nd dimensions), nd
    big-endian uint32 sizes, then the values in C order.

    Parameters
    ----------
    data : bytes
        The file's bytes, uncompressed.
    expected_magic : int
        2051 for images (N, rows, cols) or 2049 for labels (N,).
    name : str or os.PathLike
        The file's name, used in error messages.

    Returns
    -------
    np.ndarray
        uint8 values in the shape the header gives, a read-only view of ``data``.

    Raises
    ------
    IDXFormatError
        If the magic number differs, or the data is shorter or longer than its header says.
    """
    if len(data) < 4:
        raise IDXFormatError(f"{name}: expected an IDX file of at least 4 bytes, "
                             f"got {len(data)} bytes")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        kinds = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}
        hint = f" (an IDX {kinds[magic]} file)" if magic in kinds else ""
        raise IDXFormatError(
            f"{name}: expected IDX magic number {expected_magic} "
            f"({kinds.get(expected_magic, 'IDX')}), got {magic}{hint}"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f"{name}: expected a {header}-byte IDX header, "
                             f"got {len(data)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    n_values = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != n_values:
        raise IDXFormatError(
            f"{name}: expected {n_values:,} data bytes for dimensions {dims}, "
            f"got {len(data) - header:,}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _gunzip(raw, name):
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise IDXFormatError(f"{name}: expected a gzip-compressed IDX file, "
                             f"got unreadable data ({err})") from err


def _load_pair(images_path, labels_path, raw_images, raw_labels):
    """Decode one images/labels pair to uint8 images (N, 784) and int64 labels (N,)."""
    images = parse_idx(_gunzip(raw_images, images_path), IMAGES_MAGIC, images_path)
    labels = parse_idx(_gunzip(raw_labels, labels_path), LABELS_MAGIC, labels_path)
    if images.shape[1] * images.shape[2] != N_PIXELS:
        raise IDXFormatError(f"{images_path}: expected 28x28 images, "
                             f"got {images.shape[1]}x{images.shape[2]}")
    if labels.shape[0] != images.shape[0]:
        raise IDXFormatError(
            f"{labels_path}: expected {images.shape[0]:,} labels "
            f"(one per image in {images_path}), got {labels.shape[0]:,}"
        )
    if labels.size and labels.max() >= N_CLASSES:
        raise IDXFormatError(f"{labels_path}: expected labels in [0, 9], "
                             f"got a maximum of {int(labels.max())}")
    return images.reshape(images.shape[0], N_PIXELS), labels.astype(np.int64)


def _to_float(images_u8):
    """uint8 (N, 784) -> float32 (N, 784) in [0, 1], with a single float32 copy."""
    x = images_u8.astype(np.float32)
    x /= np.float32(255.0)
    return x


# ---------------------------------------------------------------------------------------------
# Downloading


def _fetch(url, out, timeout):
    """Stream ``url`` into the open binary file ``out``, with a tqdm progress bar."""
    from tqdm.auto import tqdm

    if not url.startswith("https://"):
        raise ValueError(f"url: expected an https:// address, got {url!r}")
    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=url.rsplit("/", 1)[-1], leave=False) as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))


def download_file(name: str, dest_dir: str | os.PathLike | None = None,
                  mirrors: Sequence[str] = MIRRORS, timeout: float = TIMEOUT) -> Path:
    """Download the MNIST file ``name`` into ``dest_dir`` (default: the user cache); return its
    path.

    Each mirror is tried in order. The bytes go to a temporary file in ``dest_dir`` that is
    renamed to ``name`` only once its MD5 matches the published one, so a partial or corrupt
    download is never used or kept.

    Parameters
    ----------
    name : str
        One of the four file names, e.g. ``"t10k-images-idx3-ubyte.gz"``.
    dest_dir : str or os.PathLike or None
        The folder to download into, created if needed; None means :func:`cache_dir`.
    mirrors : sequence of str
        ``https://`` base addresses, tried in order.
    timeout : float
        Seconds allowed for connecting and for each read.

    Returns
    -------
    pathlib.Path
        ``dest_dir / name``.

    Raises
    ------
    ValueError
        If ``name`` is not one of the four files.
    TypeError
        If ``dest_dir`` is not a path or None.
    MNISTDownloadError
        Listing each mirror's failure, if none succeeds, or if ``dest_dir`` cannot be created.
    """
    if name not in MD5:
        raise ValueError(f"name: expected one of {sorted(MD5)}, got {name!r}")
    dest_dir = cache_dir() if dest_dir is None else _as_path(dest_dir, "dest_dir")
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MNISTDownloadError(f"{name}: could not create the download folder {dest_dir} "
                                 f"({err})") from err
    want = MD5[name]
    failures = []
    last = None
    for base in mirrors:
        url = base + name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out, timeout)
            got = _md5(Path(tmp).read_bytes())
            if got != want:
                raise MNISTChecksumError(f"{url}: expected MD5 {want}, got {got}")
            os.replace(tmp, dest_dir / name)
            return dest_dir / name
        except (OSError, ValueError, http.client.HTTPException) as err:
            failures.append(f"{url}: {type(err).__name__}: {err}")
            last = err
        finally:
            # Gone already after a successful os.replace; otherwise never leave a partial file
            # behind.
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    raise MNISTDownloadError(
        f"{name}: could not download a file with MD5 {want} from any mirror:\n  "
        + "\n  ".join(failures)
    ) from last


# ---------------------------------------------------------------------------------------------
# The fallback split


def fallback_split(n: int) -> np.ndarray:
    """The fixed fallback split of ``n`` test-set images: True for the fallback TEST split.

    Test-set index i goes to the fallback test split when i % 5 == 4, else to the fallback train
    split: 8,000 train / 2,000 test for the 10,000 t10k images. The first 5,000 t10k images come
    from NIST's cleaner SD-3 writers and the last 5,000 from the harder SD-1 writers; taking
    every fifth image keeps that 50/50 mix in both splits, and the split never changes between
    runs.

    Parameters
    ----------
    n : int
        The number of test-set images.

    Returns
    -------
    np.ndarray, shape (n,)
        A boolean mask, True for the images of the fallback test split.
    """
    return np.arange(n) % 5 == 4


# ---------------------------------------------------------------------------------------------
# The loader


# An absolute POSIX path outside a URL (no ':' or '/' just before it), or a Windows drive path.
_LOCAL_PATH = re.compile(r"(?<![\w:/.~])/[^\s'\"<>|,;()]+|\b[A-Za-z]:\\[^\s'\"<>|,;()]+")


def _without_paths(text):
    """``text`` with local paths replaced by '<path>': warnings end up in published pages."""
    return _LOCAL_PATH.sub("<path>", text)


def _describe(origins):
    """'folder: /a' or 'folder: /a; downloaded: /b' from a list of (kind, folder) pairs."""
    seen = []
    for kind, folder in origins:
        text = f"{kind}: {folder}"
        if text not in seen:
            seen.append(text)
    return "; ".join(seen)


def load_mnist(data_dir: str | os.PathLike | None = None, download: bool = True,
               warn: bool = True) -> MNIST:
    """Load MNIST (used from Chapter 3 onward); return an ``MNIST`` with x_train, y_train,
    x_test, y_test.

    Images are float32 in [0, 1], shape (N, 784) (28x28 images, row by row); labels are int64 in
    0..9, shape (N,). Full MNIST: 60,000 train and 10,000 test images.

    Files are looked for in ``data_dir``, then ``$LOOPY_EDU_DATA``, then the user cache (each
    folder directly or in its ``mnist/`` subfolder) and MD5-checked; a corrupt file raises
    MNISTChecksumError. Missing files are downloaded into the user cache when ``download`` is
    True.

    Fallback: if the training files cannot be had but the t10k test files can, the 10,000 test
    images are split 8,000 train / 2,000 test (index i goes to test when i % 5 == 4; see
    ``fallback_split``), with an MNISTFallbackWarning unless ``warn`` is False (the result's
    ``fallback``, ``source`` and ``reason`` record it either way, and its ``summary()`` says it
    in one line). Accuracies on this split are not comparable with published full-MNIST figures.
    If even the test files are missing, raises FileNotFoundError.

    Parameters
    ----------
    data_dir : str or os.PathLike or None
        A folder to search before ``$LOOPY_EDU_DATA`` and the user cache.
    download : bool
        Whether to download missing files into the user cache.
    warn : bool
        Whether the fallback split warns with MNISTFallbackWarning.

    Returns
    -------
    MNIST
        The arrays, where they came from, and whether they are the fallback split.

    Raises
    ------
    TypeError
        If ``data_dir`` is not a path or None, or ``download`` or ``warn`` is not a bool.
    FileNotFoundError
        If the test files can be neither found nor downloaded.
    MNISTChecksumError
        If a file found on disk does not match its published MD5.
    IDXFormatError
        If a file is not a valid gzip-compressed IDX file of its kind.
    """
    if not isinstance(download, (bool, np.bool_)):
        raise TypeError(f"download: expected True or False, got {download!r}")
    if not isinstance(warn, (bool, np.bool_)):
        raise TypeError(f"warn: expected True or False, got {warn!r}")
    dirs = search_dirs(data_dir)
    found = {name: _find(name, dirs) for name in FILES}
    origins = {name: ("folder", path.parent)
               for name, path in found.items() if path is not None}

    download_errors = {}

    def fetch_missing(names):
        for name in names:
            if found[name] is None and download:
                try:
                    found[name] = download_file(name)
                    origins[name] = ("downloaded", found[name].parent)
                except OSError as err:
                    download_errors[name] = err
                    return  # the pair is incomplete anyway; do not try its other file

    # The test files are needed in every case; get them first.
    test_names = (TEST_IMAGES, TEST_LABELS)
    fetch_missing(test_names)
    missing_test = [name for name in test_names if found[name] is None]
    if missing_test:
        listing = "\n  ".join(str(d) for d in dirs)
        why = "download=False" if not download else "download failed:\n  " + "\n  ".join(
            str(e) for e in download_errors.values()
        )
        raise FileNotFoundError(
            f"MNIST: expected the test files {', '.join(missing_test)}, but they were not "
            f"found in any of these folders:\n  {listing}\nand could not be downloaded "
            f"({why}).\nTo get the data: set {ENV_VAR} to a folder holding the MNIST .gz files "
            f"(directly or in a mnist/ subfolder), pass data_dir=..., or call "
            f"load_mnist(download=True) on a machine with network access to download them "
            f"into {cache_dir()}."
        ) from next(iter(download_errors.values()), None)

    train_names = (TRAIN_IMAGES, TRAIN_LABELS)
    fetch_missing(train_names)
    missing_train = [name for name in train_names if found[name] is None]

    # Verify everything on disk before decoding anything: a corrupt file always raises.
    raw = {name: _read_verified(path) for name, path in found.items() if path is not None}

    x_test_u8, y_test = _load_pair(found[TEST_IMAGES], found[TEST_LABELS], raw.pop(TEST_IMAGES),
                                   raw.pop(TEST_LABELS))

    if not missing_train:
        x_train_u8, y_train = _load_pair(found[TRAIN_IMAGES], found[TRAIN_LABELS],
                                         raw.pop(TRAIN_IMAGES), raw.pop(TRAIN_LABELS))
        return MNIST(
            x_train=_to_float(x_train_u8),
            y_train=y_train,
            x_test=_to_float(x_test_u8),
            y_test=y_test,
            source=_describe(origins[name] for name in FILES),
            fallback=False,
            reason=_full_reason(origins[name][0] for name in FILES),
        )

    # Fallback: a fixed split of the t10k set. The warning names no local folder (it is printed
    # into notebooks that get published); `source` keeps the folders for whoever needs them.
    where = f"data_dir, ${ENV_VAR} or the user cache"
    if download_errors:
        why = "download failed: " + "; ".join(
            _without_paths(str(e)).replace("\n  ", " | ") for e in download_errors.values()
        )
        reason = "the training files were not found locally and could not be downloaded"
    else:
        why = f"download=False and {', '.join(missing_train)} not found in {where}"
        reason = "the training files were not found locally and download=False"
    is_test = fallback_split(x_test_u8.shape[0])
    n_test = int(is_test.sum())
    n_train = x_test_u8.shape[0] - n_test
    test_from = _describe(origins[name] for name in test_names)
    if warn:
        warnings.warn(
            f"Full MNIST was not available ({why}). FALLING BACK to a fixed split of the "
            f"10,000-image MNIST test set (t10k): {n_train:,} train / {n_test:,} test images. "
            f"Accuracies on this split are NOT comparable with published full-MNIST figures "
            f"(60,000 train / 10,000 test). To get full MNIST, set {ENV_VAR} to a folder with "
            f"all four files or run load_mnist(download=True) with network access.",
            MNISTFallbackWarning,
            stacklevel=2,
        )
    return MNIST(
        x_train=_to_float(x_test_u8[~is_test]),
        y_train=y_test[~is_test],
        x_test=_to_float(x_test_u8[is_test]),
        y_test=y_test[is_test],
        source=(f"fallback: {n_train}/{n_test} split of t10k (index % 5 == 4 is test) "
                f"from {test_from}"),
        fallback=True,
        reason=reason,
    )


def _full_reason(kinds):
    """Why full MNIST came from where it did, given each file's origin: folder or downloaded."""
    kinds = set(kinds)
    if kinds == {"folder"}:
        return "all four files found locally"
    if kinds == {"downloaded"}:
        return "downloaded from an official mirror"
    return "found locally or downloaded from an official mirror"
