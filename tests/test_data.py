"""Tests for the MNIST loader. No network: the low-level fetch is replaced in every test."""
import gzip
import hashlib
import os
import urllib.error
import warnings
from pathlib import Path

import numpy as np
import pytest

from loopy_edu import data
from loopy_edu.data import (
    IDXFormatError,
    MNISTChecksumError,
    MNISTDownloadError,
    MNISTFallbackWarning,
    load_mnist,
)

REAL_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
PUBLISHED_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
N_TRAIN, N_TEST = 12, 20
REAL_FETCH = data._fetch  # the autouse fixture below replaces it in every test


# --- helpers --------------------------------------------------------------------------------


def idx_bytes(arr, magic):
    """Encode a uint8 array as an uncompressed IDX file."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def gz(raw):
    return gzip.compress(raw, mtime=0)


def make_files(seed=0):
    """Synthetic MNIST: {file name: gzip bytes} and the arrays behind them."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255  # the full range, so [0, 1] is reached exactly
        labels = (np.arange(n) * 7 + seed) % 10
        arrays[split] = (images, labels.astype(np.uint8))
    files = {
        "train-images-idx3-ubyte.gz": gz(idx_bytes(arrays["train"][0], 2051)),
        "train-labels-idx1-ubyte.gz": gz(idx_bytes(arrays["train"][1], 2049)),
        "t10k-images-idx3-ubyte.gz": gz(idx_bytes(arrays["t10k"][0], 2051)),
        "t10k-labels-idx1-ubyte.gz": gz(idx_bytes(arrays["t10k"][1], 2049)),
    }
    return files, arrays


FILES, ARRAYS = make_files()
TEST_NAMES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def write(folder, names=tuple(FILES), content=None):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(FILES[name] if content is None else content)
    return folder


def listing(folder):
    """Every entry in a folder, hidden ones included ([] if it does not exist)."""
    return sorted(os.listdir(folder)) if folder.exists() else []


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache, no LOOPY_EDU_DATA, and a fetch that fails loudly if anything tries the network."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LOOPY_EDU_DATA", raising=False)

    def no_network(url, out, timeout):
        raise AssertionError(f"test tried the network: {url}")

    monkeypatch.setattr(data, "_fetch", no_network)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "xdg" / "loopy_edu" / "mnist"


@pytest.fixture
def fake_md5(monkeypatch):
    """Make the synthetic files the ones that verify."""
    table = {name: hashlib.md5(content).hexdigest() for name, content in FILES.items()}
    monkeypatch.setattr(data, "MD5", table)
    return table


@pytest.fixture
def fetcher(monkeypatch):
    """Replace the network fetch; ``fetcher.plan`` maps a mirror index to bytes, or to an exception."""

    class Fetcher:
        def __init__(self):
            self.calls = []
            self.plan = {}

        def __call__(self, url, out, timeout):
            self.calls.append((url, timeout))
            name = url.rsplit("/", 1)[-1]
            mirror = next(i for i, base in enumerate(data.MIRRORS) if url == base + name)
            action = self.plan.get(mirror, FILES[name])
            if callable(action):
                action = action(name)
            if isinstance(action, BaseException):
                out.write(FILES[name][: len(FILES[name]) // 2])  # half a file, then the failure
                out.flush()
                raise action
            out.write(action)

    f = Fetcher()
    monkeypatch.setattr(data, "_fetch", f)
    return f


# --- loading from disk ----------------------------------------------------------------------


def test_full_load_shapes_dtypes_values(tmp_path, fake_md5):
    write(tmp_path / "d")
    ds = load_mnist(tmp_path / "d", download=False)
    assert ds.x_train.shape == (N_TRAIN, 784) and ds.x_test.shape == (N_TEST, 784)
    assert ds.y_train.shape == (N_TRAIN,) and ds.y_test.shape == (N_TEST,)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    images, labels = ARRAYS["train"]
    np.testing.assert_allclose(ds.x_train, images.reshape(N_TRAIN, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, labels)
    np.testing.assert_array_equal(ds.y_test, ARRAYS["t10k"][1])
    assert ds.fallback is False
    assert isinstance(ds.source, str) and ds.source.startswith("folder") and str(tmp_path / "d") in ds.source


def test_search_order_data_dir_then_env_then_cache(tmp_path, monkeypatch, fake_md5, cache):
    # Garbage in the losing folders: touching them would raise a checksum error.
    write(tmp_path / "arg")
    write(tmp_path / "env", content=b"not mnist")
    write(cache, content=b"not mnist")
    monkeypatch.setenv("LOOPY_EDU_DATA", str(tmp_path / "env"))
    ds = load_mnist(tmp_path / "arg", download=False)
    assert str(tmp_path / "arg") in ds.source and str(tmp_path / "env") not in ds.source

    write(tmp_path / "env")
    ds = load_mnist(download=False)
    assert str(tmp_path / "env") in ds.source and str(cache) not in ds.source

    monkeypatch.delenv("LOOPY_EDU_DATA")
    write(cache)
    ds = load_mnist(download=False)
    assert ds.source == f"folder: {cache}"


def test_mnist_subfolder_is_accepted_and_root_comes_first(tmp_path, fake_md5):
    write(tmp_path / "root" / "mnist")
    ds = load_mnist(str(tmp_path / "root"), download=False)
    assert ds.source == f"folder: {tmp_path / 'root' / 'mnist'}" and not ds.fallback

    write(tmp_path / "root")
    ds = load_mnist(tmp_path / "root", download=False)
    assert ds.source == f"folder: {tmp_path / 'root'}"


def test_corrupt_file_on_disk_names_the_file(tmp_path, fake_md5, fetcher):
    folder = write(tmp_path / "d")
    bad = folder / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(MNISTChecksumError) as info:
        load_mnist(folder)  # download allowed, but a corrupt file is never silently replaced
    msg = str(info.value)
    assert str(bad) in msg and fake_md5[bad.name] in msg
    assert hashlib.md5(b"\x1f\x8b truncated").hexdigest() in msg and "Delete" in msg
    assert isinstance(info.value, ValueError) and fetcher.calls == []


def test_real_md5_table_is_the_published_one():
    assert data.MD5 == PUBLISHED_MD5
    assert data.MIRRORS == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    )


# --- IDX parsing ----------------------------------------------------------------------------


def test_parse_idx_roundtrip():
    images = ARRAYS["t10k"][0]
    np.testing.assert_array_equal(data.parse_idx(idx_bytes(images, 2051), 2051), images)


@pytest.mark.parametrize(
    "raw, expected, match",
    [
        (idx_bytes(np.zeros(3, np.uint8), 2049), 2051, "expected IDX magic number 2051.*got 2049"),
        (idx_bytes(np.zeros((2, 28, 28), np.uint8), 2051)[:-1], 2051, "expected 1,568 data bytes"),
        (idx_bytes(np.zeros((2, 28, 28), np.uint8), 2051) + b"x", 2051, "expected 1,568 data bytes"),
        ((2051).to_bytes(4, "big") + b"\0\0", 2051, "expected a 16-byte IDX header"),
        (b"\0\0", 2049, "at least 4 bytes"),
    ],
)
def test_parse_idx_rejects_bad_input(raw, expected, match):
    with pytest.raises(IDXFormatError, match=match):
        data.parse_idx(raw, expected, "f.gz")


def test_bad_idx_contents_raise_clear_errors(tmp_path, monkeypatch):
    folder = tmp_path / "d"
    cases = {
        "swapped": {"t10k-images-idx3-ubyte.gz": FILES["t10k-labels-idx1-ubyte.gz"]},
        "not gzip": {"t10k-images-idx3-ubyte.gz": idx_bytes(ARRAYS["t10k"][0], 2051)},
        "count": {"t10k-labels-idx1-ubyte.gz": gz(idx_bytes(np.zeros(N_TEST - 1, np.uint8), 2049))},
        "range": {"t10k-labels-idx1-ubyte.gz": gz(idx_bytes(np.full(N_TEST, 10, np.uint8), 2049))},
        "size": {"t10k-images-idx3-ubyte.gz": gz(idx_bytes(np.zeros((N_TEST, 27, 28), np.uint8), 2051))},
    }
    messages = {"swapped": "magic number 2051", "not gzip": "gzip", "count": f"expected {N_TEST} labels",
                "range": r"labels in \[0, 9\]", "size": "28x28"}
    for case, replaced in cases.items():
        files = dict(FILES, **replaced)
        write(folder, names=TEST_NAMES)
        for name, content in replaced.items():
            (folder / name).write_bytes(content)
        monkeypatch.setattr(data, "MD5", {name: hashlib.md5(c).hexdigest() for name, c in files.items()})
        with pytest.raises(IDXFormatError, match=messages[case]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MNISTFallbackWarning)
                load_mnist(folder, download=False)


# --- the fallback ---------------------------------------------------------------------------


def test_fallback_split_from_test_files_only(tmp_path, fake_md5, fetcher):
    write(tmp_path / "shared" / "mnist", names=TEST_NAMES)
    with pytest.warns(MNISTFallbackWarning) as record:
        ds = load_mnist(tmp_path / "shared", download=False)
    msg = str(record[0].message)
    assert "not available" in msg and "download=False" in msg and "NOT comparable" in msg
    assert issubclass(MNISTFallbackWarning, UserWarning)
    n_test = (N_TEST + 1) // 5  # indices with i % 5 == 4
    assert n_test == N_TEST // 5 == 4
    assert ds.x_train.shape == (N_TEST - n_test, 784) and ds.x_test.shape == (n_test, 784)
    assert ds.y_train.shape == (N_TEST - n_test,) and ds.y_test.shape == (n_test,)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    images, labels = ARRAYS["t10k"]
    keep = np.arange(N_TEST) % 5 != 4
    np.testing.assert_array_equal(ds.y_test, labels[4::5])
    np.testing.assert_array_equal(ds.y_train, labels[keep])
    np.testing.assert_allclose(ds.x_test, images[4::5].reshape(-1, 784) / 255.0, rtol=1e-6)
    assert ds.fallback is True and ds.source.startswith("fallback")
    assert fetcher.calls == []  # download=False means no network at all


def test_fallback_split_is_8000_2000_for_10k():
    is_test = data.fallback_split(10_000)
    assert is_test.sum() == 2000 and (~is_test).sum() == 8000
    assert is_test[:5000].sum() == is_test[5000:].sum() == 1000  # both halves of t10k in each split
    assert list(np.flatnonzero(is_test[:10])) == [4, 9]


def test_fallback_when_training_download_fails(tmp_path, fake_md5, fetcher, cache):
    write(tmp_path / "d", names=TEST_NAMES)
    fetcher.plan = {0: urllib.error.URLError("no route"), 1: TimeoutError("timed out")}
    with pytest.warns(MNISTFallbackWarning, match="download failed.*no route"):
        ds = load_mnist(tmp_path / "d")
    assert ds.fallback and ds.source.startswith("fallback")
    assert [url for url, _ in fetcher.calls] == [data.MIRRORS[0] + "train-images-idx3-ubyte.gz",
                                                 data.MIRRORS[1] + "train-images-idx3-ubyte.gz"]
    assert listing(cache) == []


def test_nothing_found_raises_file_not_found_listing_folders(tmp_path, monkeypatch, cache, fetcher):
    monkeypatch.setenv("LOOPY_EDU_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path / "arg", download=False)
    msg = str(info.value)
    for folder in (tmp_path / "arg", tmp_path / "arg" / "mnist", tmp_path / "env", cache):
        assert str(folder) in msg
    assert "LOOPY_EDU_DATA" in msg and "download=True" in msg
    assert fetcher.calls == []


# --- downloading ----------------------------------------------------------------------------


def test_download_renames_good_data_into_cache(tmp_path, fake_md5, fetcher, cache):
    ds = load_mnist(tmp_path / "empty")
    assert listing(cache) == sorted(FILES)  # the four files and nothing else (no temp files)
    for name, content in FILES.items():
        assert (cache / name).read_bytes() == content
    assert ds.source == f"downloaded: {cache}" and not ds.fallback
    assert ds.x_train.shape == (N_TRAIN, 784)
    assert all(url.startswith("https://") and 0 < timeout <= 120 for url, timeout in fetcher.calls)
    assert len(fetcher.calls) == 4

    fetcher.calls.clear()
    ds = load_mnist(download=True)  # now cached: no network
    assert fetcher.calls == [] and ds.source == f"folder: {cache}"


def test_download_tries_the_next_mirror(tmp_path, fake_md5, fetcher, cache):
    fetcher.plan = {0: ConnectionResetError("reset by peer")}
    path = data.download_file("t10k-labels-idx1-ubyte.gz")
    assert path == cache / "t10k-labels-idx1-ubyte.gz" and path.read_bytes() == FILES[path.name]
    assert [url for url, _ in fetcher.calls] == [m + path.name for m in data.MIRRORS]
    assert listing(cache) == [path.name]


def test_corrupt_download_raises_and_leaves_nothing(tmp_path, fake_md5, fetcher, cache):
    fetcher.plan = {0: b"<html>captive portal</html>", 1: b"\x1f\x8b garbage"}
    with pytest.raises(MNISTDownloadError) as info:
        data.download_file("t10k-images-idx3-ubyte.gz")
    msg = str(info.value)
    assert "expected MD5 " + fake_md5["t10k-images-idx3-ubyte.gz"] in msg
    assert all(m in msg for m in data.MIRRORS)
    assert isinstance(info.value.__cause__, MNISTChecksumError)
    assert listing(cache) == []

    # Through the loader, with no test files anywhere: a clear FileNotFoundError, still nothing cached.
    with pytest.raises(FileNotFoundError, match="download failed"):
        load_mnist(tmp_path / "empty")
    assert listing(cache) == []


@pytest.mark.parametrize("error", [ConnectionResetError("connection lost"), KeyboardInterrupt()])
def test_interrupted_download_leaves_nothing(fake_md5, fetcher, cache, error):
    fetcher.plan = {0: error, 1: error}
    expected = KeyboardInterrupt if isinstance(error, KeyboardInterrupt) else MNISTDownloadError
    with pytest.raises(expected):
        data.download_file("train-images-idx3-ubyte.gz")
    assert listing(cache) == []


def test_fetch_streams_over_https_with_a_timeout(tmp_path, monkeypatch):
    payload = bytes(range(256)) * 1000
    seen = {}

    class FakeResponse:
        headers = {"Content-Length": str(len(payload))}

        def __init__(self):
            self.pos = 0

        def read(self, n):
            chunk = payload[self.pos: self.pos + n]
            self.pos += len(chunk)
            return chunk

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def fake_urlopen(url, timeout=None):
        seen.update(url=url, timeout=timeout)
        return FakeResponse()

    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    with open(tmp_path / "out", "wb") as out:
        REAL_FETCH("https://example.invalid/f.gz", out, timeout=7.5)
        with pytest.raises(ValueError, match="https"):
            REAL_FETCH("http://example.invalid/f.gz", out, timeout=1)
    assert (tmp_path / "out").read_bytes() == payload
    assert seen == {"url": "https://example.invalid/f.gz", "timeout": 7.5}


def test_bad_arguments_name_themselves():
    with pytest.raises(TypeError, match="download: expected True or False, got 'yes'"):
        load_mnist(download="yes")
    with pytest.raises(TypeError, match="data_dir: expected a path"):
        load_mnist(data_dir=3, download=False)


# --- the real data, when this machine has it --------------------------------------------------


@pytest.mark.skipif(not (REAL_DATA / "mnist").is_dir(), reason=f"no offline MNIST folder at {REAL_DATA}")
def test_real_offline_folder_gives_the_8000_2000_fallback():
    for name in TEST_NAMES:
        assert hashlib.md5((REAL_DATA / "mnist" / name).read_bytes()).hexdigest() == PUBLISHED_MD5[name]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = load_mnist(REAL_DATA, download=False)
    if not ds.fallback:  # someone placed the full set there: check that instead
        assert ds.x_train.shape == (60_000, 784) and ds.x_test.shape == (10_000, 784)
        return
    assert any(issubclass(w.category, MNISTFallbackWarning) for w in record)
    assert ds.x_train.shape == (8000, 784) and ds.x_test.shape == (2000, 784)
    assert ds.y_train.shape == (8000,) and ds.y_test.shape == (2000,)
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    for y in (ds.y_train, ds.y_test):
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    assert ds.y_train[:4].tolist() == [7, 2, 1, 0]  # t10k starts 7 2 1 0 4; index 4 goes to test
    assert ds.y_test[0] == 4
    assert ds.source.startswith("fallback") and str(REAL_DATA / "mnist") in ds.source


# --- quiet loading and a one-line summary (pages are published: no local paths) ---------------


def test_warn_false_is_silent_but_the_fallback_is_still_recorded(tmp_path, fake_md5, fetcher):
    write(tmp_path / "d", names=TEST_NAMES)
    with pytest.warns(MNISTFallbackWarning):
        loud = load_mnist(tmp_path / "d", download=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning at all fails the test
        quiet = load_mnist(tmp_path / "d", download=False, warn=False)
    assert quiet.fallback is True and quiet.source == loud.source
    assert quiet.reason == loud.reason
    assert "download=False" in quiet.reason
    np.testing.assert_array_equal(quiet.x_train, loud.x_train)
    np.testing.assert_array_equal(quiet.y_test, loud.y_test)


def test_warn_false_changes_nothing_for_full_mnist(tmp_path, fake_md5):
    write(tmp_path / "d")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_mnist(tmp_path / "d", download=False, warn=False)
    assert ds.fallback is False and ds.x_train.shape == (N_TRAIN, 784)


def test_summary_is_one_line_without_local_paths(tmp_path, fake_md5, fetcher, cache):
    write(tmp_path / "d", names=TEST_NAMES)
    offline = load_mnist(tmp_path / "d", download=False, warn=False)
    fetcher.plan = {0: urllib.error.URLError("no route"), 1: TimeoutError("timed out")}
    failed = load_mnist(tmp_path / "d", warn=False)
    write(tmp_path / "full")
    full = load_mnist(tmp_path / "full", download=False)
    n_test = len(ARRAYS["t10k"][1][4::5])
    for ds in (offline, failed, full):
        line = ds.summary()
        assert isinstance(line, str) and line.startswith("MNIST: ") and "\n" not in line
        assert str(tmp_path) not in line and str(cache) not in line and ds.reason in line
        assert str(tmp_path) in ds.source  # the folders stay available in the fields
    assert f"{N_TEST - n_test:,}/{n_test:,} split" in offline.summary()
    assert "test set" in offline.summary() and "not comparable" in offline.summary()
    assert "download=False" in offline.summary()
    assert "could not be downloaded" in failed.summary()
    assert f"official {N_TRAIN:,}/{N_TEST:,} train/test split" in full.summary()
    assert "found locally" in full.summary() and "not comparable" not in full.summary()


def test_fallback_warning_names_no_local_path(tmp_path, fake_md5, fetcher, cache):
    write(tmp_path / "d", names=TEST_NAMES)
    with pytest.warns(MNISTFallbackWarning) as record:
        load_mnist(tmp_path / "d", download=False)
    # A download error whose text holds a path (a full disk, say) must not leak it.
    fetcher.plan = {0: OSError(f"[Errno 28] No space left on device: '{cache}/x.part'"),
                    1: urllib.error.URLError("no route")}
    with pytest.warns(MNISTFallbackWarning) as record_failed:
        load_mnist(tmp_path / "d")
    for rec in (record, record_failed):
        msg = str(rec[0].message)
        assert str(tmp_path) not in msg and str(cache) not in msg and "FALLING BACK" in msg
    failed = str(record_failed[0].message)
    assert "No space left on device" in failed and "no route" in failed and "<path>" in failed
    assert data.MIRRORS[0] in failed  # URLs are not local paths and stay


def test_warn_must_be_a_bool():
    with pytest.raises(TypeError, match="warn: expected True or False, got 'no'"):
        load_mnist(download=False, warn="no")
