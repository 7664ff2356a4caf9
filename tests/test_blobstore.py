"""The blob store, both kinds: a folder (``file://``) and S3 (moto's server,
started by the ``s3_server`` fixture)."""

from __future__ import annotations

import pytest

from wwnode.blobstore import BlobError, BlobNotFound, FileBlobStore, S3BlobStore, check_id, open_blob_store


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    if request.param == "file":
        return open_blob_store((tmp_path / "blobs").as_uri(), tmp_path / "data")
    url, _ = request.getfixturevalue("s3_env")
    return open_blob_store(url, tmp_path / "data")


def test_default_is_a_folder_under_the_data_dir(tmp_path):
    store = open_blob_store("", tmp_path / "data")
    assert isinstance(store, FileBlobStore)
    store.put_bytes("a/b", b"x")
    assert (tmp_path / "data" / "blobs" / "a" / "b").read_bytes() == b"x"


def test_urls_are_checked(tmp_path):
    for bad in ("http://x/y", "file://host/p", "file:relative", "s3:///prefix", "s3://bucket/../x"):
        with pytest.raises(BlobError):
            open_blob_store(bad, tmp_path)


def test_s3_url_names_bucket_and_prefix(s3_env, tmp_path):
    url, _ = s3_env
    store = open_blob_store(url, tmp_path)
    assert isinstance(store, S3BlobStore)
    assert store.prefix == "wwnode/"


@pytest.mark.parametrize("bad", ["", "/abs", "../x", "a/../b", "a//b", "a/./b", "a b", "a\\b", "x" * 513, "é"])
def test_bad_ids_are_refused(bad):
    with pytest.raises(BlobError):
        check_id(bad)


def test_bad_id_touches_nothing(store, tmp_path):
    with pytest.raises(BlobError):
        store.put_bytes("../escape", b"x")
    assert not (tmp_path / "escape").exists()


def test_bytes_and_files_round_trip(store, tmp_path):
    store.put_bytes("media/one", b"\x00\x01hello")
    assert store.exists("media/one")
    assert store.get_bytes("media/one") == b"\x00\x01hello"
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 5000)
    store.put_file("media/two.bin", src)
    out = tmp_path / "out.bin"
    store.get_file("media/two.bin", out)
    assert out.read_bytes() == src.read_bytes()
    store.put_bytes("media/one", b"replaced")
    assert store.get_bytes("media/one") == b"replaced"


def test_missing_blob(store, tmp_path):
    assert not store.exists("nope")
    with pytest.raises(BlobNotFound):
        store.get_bytes("nope")
    with pytest.raises(BlobNotFound):
        store.get_file("nope", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    store.delete("nope")  # deleting what is not there is not an error


def test_a_folder_is_no_blob(store, tmp_path):
    """A folder answers as a missing blob does (S3 has no folders)."""
    store.put_bytes("media/k/album/one", b"x")
    for folder in ("media/k/album", "media/k", "media/k/album/one/under-a-blob"):
        assert not store.exists(folder)
        with pytest.raises(BlobNotFound):
            store.get_bytes(folder)
        with pytest.raises(BlobNotFound):
            store.get_file(folder, tmp_path / "out")
        assert not (tmp_path / "out").exists()


def test_delete_and_prefixes(store):
    for blob_id in ("s/k1/1", "s/k1/2", "s/k10/1", "s/k2/1"):
        store.put_bytes(blob_id, b"x")
    assert store.list_prefix("s/k1/") == ["s/k1/1", "s/k1/2"]
    assert store.list_prefix("s/k1") == ["s/k1/1", "s/k1/2", "s/k10/1"]
    store.delete("s/k1/1")
    assert not store.exists("s/k1/1")
    store.delete_prefix("s/k1/")
    assert store.list_prefix("s/") == ["s/k10/1", "s/k2/1"]


def test_cli_blob_get(s3_env, tmp_path):
    import subprocess
    import sys

    url, env = s3_env
    store = open_blob_store(url, tmp_path)
    store.put_bytes("media/abc", b"payload\x00")
    run_env = {**__import__("os").environ, **env, "BLOB_STORE_URL": url}

    def blob(*args):
        return subprocess.run([sys.executable, "-m", "wwnode.cli", "blob", "get", *args], env=run_env,
                              capture_output=True, cwd=tmp_path, timeout=60)

    done = blob("media/abc", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out").read_bytes() == b"payload\x00"
    done = blob("media/abc")
    assert done.returncode == 0 and done.stdout == b"payload\x00"
    done = blob("media/none")
    assert done.returncode == 1 and b"no blob" in done.stderr
    done = blob("../etc/passwd")
    assert done.returncode == 2 and b"not a valid blob id" in done.stderr


def test_cli_blob_put_makes_one_of_the_keys_media(tmp_path):
    import os
    import subprocess
    import sys

    from wwnode.mediablobs import sendable

    url = (tmp_path / "blobs").as_uri()
    doc = tmp_path / "Rechnung.pdf"
    doc.write_bytes(b"%PDF-1.7 payload")
    run_env = {**os.environ, "BLOB_STORE_URL": url}

    def put(*args):
        return subprocess.run([sys.executable, "-m", "wwnode.cli", "blob", "put", *args], env=run_env,
                              capture_output=True, cwd=tmp_path, timeout=60)

    done = put("shop-1", str(doc))
    assert done.returncode == 0, done.stderr
    blob_id = done.stdout.decode().strip()
    assert sendable("shop-1", blob_id) and not sendable("shop-2", blob_id)
    assert open_blob_store(url, tmp_path).get_bytes(blob_id) == doc.read_bytes()
    again = put("shop-1", str(doc)).stdout.decode().strip()
    assert again != blob_id  # a new id each time, never one to guess
    done = put("shop/1", str(doc))
    assert done.returncode == 2 and b"bad_key" in done.stderr
    done = put("shop-1", str(tmp_path / "none.pdf"))
    assert done.returncode == 2 and b"cannot read" in done.stderr
    assert len(open_blob_store(url, tmp_path).list_prefix("")) == 2  # what was refused wrote nothing
