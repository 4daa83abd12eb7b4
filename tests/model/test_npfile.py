"""model/npfile.py: malformed .npy and .npz files, built here byte by byte, each refused in one line that
names the file and the member, before anything large is allocated or decompressed; good files read as
np.load reads them."""

import io
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npformat

from rramcim.model.mlp import NetError, Layer, Net, load_inputs, load_net, save_net
from rramcim.model.npfile import MAX_ARRAY_BYTES, NpFileError, NpzArchive, read_npy


def _npy_bytes(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _header_only(shape, descr="<i8", extra=b"\0" * 64) -> bytes:
    """A .npy whose header declares ``shape`` followed by a few bytes of data (not what it declares)."""
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + extra


def _zip(path, members: dict, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _good_net():
    rng = np.random.default_rng(1)
    return Net([Layer(rng.integers(-128, 128, (6, 5)).astype(np.int8), rng.integers(-9, 9, 5).astype(np.int32), 2, 1),
                Layer(rng.integers(-128, 128, (5, 3)).astype(np.int8), np.zeros(3, np.int32), None, 0)])


def _members(net):
    buf = io.BytesIO()
    save_net(buf, net)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        return {n: z.read(n) for n in z.namelist()}


def _refused(fn, *words):
    """``fn()`` raises one NpFileError/NetError line holding every word; returns the message."""
    with pytest.raises((NpFileError, NetError)) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


def _patch(path, offset, fmt, value):
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    path.write_bytes(bytes(data))


def _offsets(path, name):
    """(local header offset, central directory entry offset) of member ``name``."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as z:
        local = z.getinfo(name).header_offset
    central = data.index(b"PK\x01\x02")                  # the first central directory entry
    while data[central + 46:central + 46 + len(name)] != name.encode():
        central = data.index(b"PK\x01\x02", central + 4)
    return local, central


# -- good files -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("a", [np.arange(12, dtype=np.int16).reshape(3, 4),
                               np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4)),
                               np.zeros((0, 3), np.int8), np.array(7, np.uint8)])
def test_reads_what_np_load_reads(tmp_path, a):
    np.save(tmp_path / "a.npy", a)
    got = read_npy(tmp_path / "a.npy")
    assert got.dtype == a.dtype and got.shape == a.shape and np.array_equal(got, a)
    got[...] = 0                                            # an array the caller may write to


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_reads_an_npz_member_by_member(tmp_path, save):
    save(tmp_path / "n.npz", x=np.arange(1000), y=np.ones((2, 3), np.int8))
    with NpzArchive(tmp_path / "n.npz") as z:
        assert z.fields == ["x", "y"]
        assert z.header("y").shape == (2, 3) and z.header("x").dtype == np.arange(1).dtype
        assert np.array_equal(z.read("x"), np.arange(1000)) and np.array_equal(z.read("y"), np.ones((2, 3)))


def test_a_saved_net_loads(tmp_path):
    net = _good_net()
    save_net(tmp_path / "net.npz", net)
    back = load_net(tmp_path / "net.npz")
    assert [L.shift for L in back.layers] == [2, None]
    assert all(np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b) for a, b in zip(back.layers, net.layers))


# -- the wrong kind of file -------------------------------------------------------------------------------

def test_npy_given_as_a_net_and_npz_given_as_inputs(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 6), np.int8))
    _refused(lambda: load_net(tmp_path / "x.npy"), "x.npy", ".npy array", "not a .npz")
    save_net(tmp_path / "net.npz", _good_net())
    _refused(lambda: load_inputs(tmp_path / "net.npz", _good_net()), "net.npz", ".npz archive", "not a .npy")
    (tmp_path / "t.npz").write_text("hello")
    _refused(lambda: load_net(tmp_path / "t.npz"), "t.npz", "not a readable .npz")
    (tmp_path / "t.npy").write_text("1 2 3\n")
    _refused(lambda: read_npy(tmp_path / "t.npy"), "t.npy", "not a readable .npy")


def test_a_member_that_is_not_an_array(tmp_path):
    members = _members(_good_net())
    _refused(lambda: load_net(_zip(tmp_path / "a.npz", dict(members, **{"notes.txt": b"hi"}))),
             "a.npz", "notes.txt", "not a .npy array")
    _refused(lambda: load_net(_zip(tmp_path / "b.npz", dict(members, **{"w1.npy": b"plain text here"}))),
             "b.npz", "w1", "not a readable .npy")
    _refused(lambda: load_net(_zip(tmp_path / "c.npz", dict(members, **{"w1.npy": b""}))), "c.npz", "w1")


def test_missing_and_unknown_members(tmp_path):
    members = _members(_good_net())
    del members["b1.npy"]
    _refused(lambda: load_net(_zip(tmp_path / "m.npz", members)), "m.npz", "b1", "missing")
    members = _members(_good_net())
    members["w7.npy"] = members["w0.npy"]
    _refused(lambda: load_net(_zip(tmp_path / "u.npz", members)), "u.npz", "w7", "unexpected")


def test_a_member_twice(tmp_path):
    members = _members(_good_net())
    with pytest.warns(UserWarning):                 # zipfile warns on a duplicate name
        with zipfile.ZipFile(tmp_path / "d.npz", "w") as z:
            for n, d in members.items():
                z.writestr(n, d)
            z.writestr("w0.npy", members["w0.npy"])
    _refused(lambda: load_net(tmp_path / "d.npz"), "d.npz", "w0", "twice")


# -- zip damage -------------------------------------------------------------------------------------------

def test_corrupt_deflate_data(tmp_path):
    w0 = np.random.default_rng(2).integers(-3, 4, (2000, 10)).astype(np.int8)
    big = {"layers.npy": _npy_bytes(np.array(1)), "w0.npy": _npy_bytes(w0),
           "b0.npy": _npy_bytes(np.zeros(10, np.int32))}
    path = _zip(tmp_path / "z.npz", big, zipfile.ZIP_DEFLATED)
    local, _ = _offsets(path, "w0.npy")
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    start = local + 30 + name_len + extra_len
    with zipfile.ZipFile(path) as z:
        size = z.getinfo("w0.npy").compress_size
    for i in range(start + size // 3, start + size // 3 + 40):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    _refused(lambda: load_net(path), "z.npz", "w0", "cannot read its data")


def test_stored_data_with_a_bad_crc(tmp_path):
    members = _members(_good_net())
    path = _zip(tmp_path / "crc.npz", members)
    local, _ = _offsets(path, "w0.npy")
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    data[local + 30 + name_len + extra_len + len(members["w0.npy"]) - 1] ^= 1     # the last weight byte
    path.write_bytes(bytes(data))
    _refused(lambda: load_net(path), "crc.npz", "w0", "cannot read", "CRC")


@pytest.mark.parametrize("method, name", [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma")])
def test_unsupported_compression_method(tmp_path, method, name):
    path = _zip(tmp_path / "m.npz", _members(_good_net()), method)
    _refused(lambda: load_net(path), "m.npz", name, "not supported")


def test_encrypted_flag(tmp_path):
    path = _zip(tmp_path / "e.npz", _members(_good_net()))
    local, central = _offsets(path, "b0.npy")
    _patch(path, local + 6, "<H", 0x1)
    _patch(path, central + 8, "<H", 0x1)
    _refused(lambda: load_net(path), "e.npz", "b0", "encrypted")


# -- sizes: refused before the allocation -----------------------------------------------------------------

def _small_peak(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak} bytes allocated"


def test_a_header_declaring_a_huge_array(tmp_path):
    path = tmp_path / "huge.npy"
    path.write_bytes(_header_only((10**12, 64)))
    _small_peak(lambda: _refused(lambda: read_npy(path), "huge.npy", "(1000000000000, 64)", "256 MiB"))
    net = _members(_good_net())
    net["w0.npy"] = _header_only((10**12, 64), "|i1")
    zpath = _zip(tmp_path / "huge.npz", net, zipfile.ZIP_DEFLATED)
    _small_peak(lambda: _refused(lambda: load_net(zpath), "huge.npz", "w0", "limit"))


def test_a_member_declaring_two_gib_in_a_small_file(tmp_path):
    path = _zip(tmp_path / "bomb.npz", _members(_good_net()), zipfile.ZIP_DEFLATED)
    local, central = _offsets(path, "w0.npy")
    _patch(path, central + 24, "<I", 2 << 30)           # uncompressed size in the central directory
    _patch(path, local + 22, "<I", 2 << 30)             # and in the local header
    assert path.stat().st_size < 4096
    _small_peak(lambda: _refused(lambda: load_net(path), "bomb.npz", "w0", "2147483648", "256 MiB"))


def test_a_header_bigger_than_its_data(tmp_path):
    path = tmp_path / "short.npy"
    path.write_bytes(_header_only((1000, 10), "|i1", extra=b"\1" * 100))
    _refused(lambda: read_npy(path), "short.npy", "truncated", "10000")
    path.write_bytes(_npy_bytes(np.zeros(4, np.int8)) + b"junk")
    _refused(lambda: read_npy(path), "short.npy", "4 bytes after")


def test_limits_per_array_and_in_all(tmp_path):
    np.savez(tmp_path / "t.npz", a=np.zeros(3000, np.int8), b=np.zeros(3000, np.int8))
    _refused(lambda: NpzArchive(tmp_path / "t.npz", max_total_bytes=5000), "t.npz", "in all", "b")
    with NpzArchive(tmp_path / "t.npz", max_array_bytes=2000) as z:
        _refused(lambda: z.read("a"), "t.npz", "a", "3000 bytes", "limit of 2000 bytes")
    assert MAX_ARRAY_BYTES == 256 << 20


def test_object_arrays_are_never_unpickled(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    _refused(lambda: read_npy(tmp_path / "o.npy"), "o.npy", "object")
    net = _members(_good_net())
    net["b0.npy"] = _npy_bytes(np.array([1, 2, 3, 4, 5], dtype=object))
    _refused(lambda: load_net(_zip(tmp_path / "o.npz", net)), "o.npz", "b0", "object")
    np.save(tmp_path / "s.npy", np.zeros(3, dtype=[("a", "i1"), ("b", "i4")]))
    _refused(lambda: read_npy(tmp_path / "s.npy"), "s.npy", "structured")


def test_a_wrong_shape_is_refused_from_the_header(tmp_path):
    """A 200 MB w1 that does not chain is refused by its header: its data is never read."""
    net = _members(_good_net())
    net["w1.npy"] = _header_only((7, 3), "|i1", extra=b"")      # shape wrong, and no data at all
    _refused(lambda: load_net(_zip(tmp_path / "c.npz", net)), "c.npz", "w1", "chain")


def test_zero_byte_dtypes_and_special_files(tmp_path):
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": "|S0", "fortran_order": False, "shape": (3,)})
    (tmp_path / "s0.npy").write_bytes(buf.getvalue())
    _refused(lambda: read_npy(tmp_path / "s0.npy"), "s0.npy", "no bytes")
    (tmp_path / "dir.npz").mkdir()
    _refused(lambda: load_net(tmp_path / "dir.npz"), "dir.npz", "not a regular file")
    _refused(lambda: load_net(tmp_path / "none.npz"), "none.npz", "no such file")
