"""The blob store, both kinds: a folder (``file://``) and S3 (moto's server,
started by the ``s3_server`` fixture); and an S3 service that fails (a
closed port, a port that accepts and never answers, error answers)."""

from __future__ import annotations

import time
import traceback

import pytest

from support import SilentServer, closed_port, run_cli
from wwnode.blobstore import (ATTEMPTS, CONNECT_TIMEOUT, READ_TIMEOUT, BlobError, BlobNotFound, FileBlobStore,
                              S3BlobStore, check_id, open_blob_store)


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
        return subprocess.run([sys.executable, "-m", "wwnode.tools.cli", "blob", "get", *args], env=run_env,
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


def test_cli_blob_get_says_what_is_wrong_with_the_output_or_the_id(tmp_path):
    """A folder as the output, or a file in no folder, used to end in a
    traceback, or in "no blob" for a blob that is there."""
    store = open_blob_store((tmp_path / "blobs").as_uri(), tmp_path)
    store.put_bytes("media/k/f1", b"blob bytes")
    env = {"BLOB_STORE_URL": (tmp_path / "blobs").as_uri()}
    (tmp_path / "out").mkdir()
    for args, code, says in [
        (("media/k/f1", "-o", str(tmp_path / "out")), 2, "it is a folder"),
        (("media/k/f1", "-o", str(tmp_path / "no" / "such" / "f")), 2, f"there is no folder {tmp_path / 'no' / 'such'}"),
        (("media/k",), 1, "no blob 'media/k'"),  # a folder of the store is no blob
        (("media/k/",), 2, "not a valid blob id"),
    ]:
        done = run_cli("blob", "get", *args, env=env)
        assert (done.returncode, "Traceback" in done.stderr) == (code, False), (args, done.stderr)
        assert says in done.stderr, (args, done.stderr)
    assert list((tmp_path / "out").iterdir()) == [] and not (tmp_path / "no").exists()
    done = run_cli("blob", "get", "media/k/f1", "-o", str(tmp_path / "out" / "f"), env=env)
    assert done.returncode == 0 and (tmp_path / "out" / "f").read_bytes() == b"blob bytes"


# ---------------------------------------------------------- a failing S3
def every_call(store, tmp_path):
    """Each call of the store, by name, ready to be made."""
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 1000)
    return {
        "put_file": lambda: store.put_file("media/k/a", src),
        "put_bytes": lambda: store.put_bytes("media/k/a", b"x"),
        "get_file": lambda: store.get_file("media/k/a", tmp_path / "out"),
        "get_bytes": lambda: store.get_bytes("media/k/a"),
        "exists": lambda: store.exists("media/k/a"),
        "delete": lambda: store.delete("media/k/a"),
        "delete_prefix": lambda: store.delete_prefix("media/k/"),
        "list_prefix": lambda: store.list_prefix("media/k/"),
    }


def test_a_refusing_store_fails_every_call_with_a_blob_error_without_its_password(aws_credentials, tmp_path):
    closed = closed_port()
    try:
        endpoint = f"http://wwnode:s3cret-pw@127.0.0.1:{closed.getsockname()[1]}"
        store = S3BlobStore("bucket", "pre", endpoint, attempts=2)
        for name, call in every_call(store, tmp_path).items():
            with pytest.raises(BlobError) as caught:
                call()
            error = caught.value
            assert not isinstance(error, BlobNotFound), name  # the store is down, not the blob gone
            assert "EndpointConnectionError" in str(error), name
            printed = "".join(traceback.format_exception(error))
            assert "s3cret-pw" not in printed, (name, printed)
        assert not (tmp_path / "out").exists()
    finally:
        closed.close()


def test_a_silent_store_fails_each_call_after_its_timeouts_and_attempts(aws_credentials, tmp_path):
    """A timeout is a BlobError (it carries no service answer), after as
    many requests as the attempts allow."""
    silent = SilentServer()
    try:
        store = S3BlobStore("bucket", "pre", silent.endpoint, connect_timeout=1, read_timeout=0.5, attempts=2)
        calls = every_call(store, tmp_path)
        for name, method in (("put_bytes", "PUT"), ("get_bytes", "GET"), ("exists", "HEAD"),
                             ("list_prefix", "GET")):
            before = silent.count(method)
            with pytest.raises(BlobError) as caught:
                calls[name]()
            assert "ReadTimeoutError" in str(caught.value), name
            assert silent.count(method) - before == 2, (name, silent.requests)
    finally:
        silent.close()


def test_a_download_that_stalls_is_not_tried_again_around_the_client_s_attempts(aws_credentials, tmp_path):
    """The object's HEAD is answered, its GET never: two GETs (the client's
    attempts), not ten (the transfer manager's five tries of two)."""
    silent = SilentServer(head_size=10)
    try:
        store = S3BlobStore("bucket", "pre", silent.endpoint, connect_timeout=1, read_timeout=0.5, attempts=2)
        with pytest.raises(BlobError):
            store.get_file("media/k/a", tmp_path / "out")
        assert silent.requests == ["HEAD", "GET", "GET"]
        assert not (tmp_path / "out").exists()
    finally:
        silent.close()


def test_by_default_a_call_gives_up_well_within_a_minute(aws_credentials):
    store = S3BlobStore("bucket", "pre", "http://127.0.0.1:9")
    config = store.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT, READ_TIMEOUT)
    assert config.retries["total_max_attempts"] == ATTEMPTS
    # Silent after accepting, or dropping connections; plus the backoffs (1 s, then 2 s).
    assert ATTEMPTS * max(CONNECT_TIMEOUT, READ_TIMEOUT) + 3 <= 40


def test_an_error_answer_is_a_blob_error_not_a_missing_blob(s3_env, tmp_path):
    """A bucket that is not there: the service answers NoSuchBucket, to a
    put of a file too (which boto3 reports as an upload failure)."""
    store = open_blob_store("s3://no-such-bucket-here/pre", tmp_path)
    for name, call in every_call(store, tmp_path).items():
        if name in ("exists", "get_file"):
            continue  # both begin with a HEAD, whose bare 404 says only "not there"
        started = time.monotonic()
        with pytest.raises(BlobError) as caught:
            call()
        assert not isinstance(caught.value, BlobNotFound), name
        assert "NoSuchBucket" in str(caught.value), (name, str(caught.value))
        assert time.monotonic() - started < 10, name  # an answer is not tried again


def test_cli_blob_get_from_a_refusing_store_says_so_in_one_line(aws_credentials):
    closed = closed_port()
    try:
        done = run_cli("blob", "get", "media/k/a", env={
            "BLOB_STORE_URL": "s3://bucket/pre",
            "BLOB_STORE_ENDPOINT": f"http://wwnode:s3cret-pw@127.0.0.1:{closed.getsockname()[1]}"})
    finally:
        closed.close()
    assert done.returncode == 3, done.stderr
    assert "EndpointConnectionError" in done.stderr and "Traceback" not in done.stderr
    assert "s3cret-pw" not in done.stderr


def test_cli_blob_put_makes_one_of_the_keys_media(tmp_path):
    import os
    import subprocess
    import sys

    from wwnode.media.blobs import sendable

    url = (tmp_path / "blobs").as_uri()
    doc = tmp_path / "Rechnung.pdf"
    doc.write_bytes(b"%PDF-1.7 payload")
    run_env = {**os.environ, "BLOB_STORE_URL": url}

    def put(*args):
        return subprocess.run([sys.executable, "-m", "wwnode.tools.cli", "blob", "put", *args], env=run_env,
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
