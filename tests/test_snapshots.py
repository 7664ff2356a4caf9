"""Snapshots of a login: what goes in, restoring, fences (units, both blob
store kinds); a snapshot taken while the page writes restores (Chromium
and the stand-in)."""

from __future__ import annotations

import tarfile

import pytest

from sessionproc.protocol import LINKED_MARKER
from support import wait_for
from wwnode.blobstore import open_blob_store
from wwnode.snapshots import SnapshotError, SnapshotName, Snapshots, StaleFence, Tampered, capture, extract


def fake_profile(root):
    """A profile laid out as Chromium's, login parts and caches."""
    files = {
        LINKED_MARKER: b"5511@c.us",
        "Local State": b"{}",
        "Default/IndexedDB/http_x_1.indexeddb.leveldb/000003.log": b"idb-log",
        "Default/IndexedDB/http_x_1.indexeddb.leveldb/MANIFEST-000001": b"manifest",
        "Default/IndexedDB/http_x_1.indexeddb.leveldb/CURRENT": b"MANIFEST-000001\n",
        "Default/IndexedDB/http_x_1.indexeddb.leveldb/LOCK": b"",
        "Default/IndexedDB/http_x_1.indexeddb.leveldb/LOG": b"chatter",
        "Default/Local Storage/leveldb/000003.log": b"ls",
        "Default/Cookies": b"sqlite",
        "Default/Cache/Cache_Data/data_0": b"c" * 1000,
        "Default/Code Cache/js/index": b"c",
        "Default/GPUCache/data_0": b"g",
        "Default/Service Worker/CacheStorage/x": b"s",
        "Default/History": b"h",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_capture_keeps_the_login_and_leaves_caches_out(tmp_path):
    profile = fake_profile(tmp_path / "profile")
    size = capture(profile, tmp_path / "s.tgz")
    assert size == (tmp_path / "s.tgz").stat().st_size
    with tarfile.open(tmp_path / "s.tgz") as tar:
        names = {m.name.removeprefix("./") for m in tar.getmembers() if m.isfile()}
    assert names == {LINKED_MARKER, "Local State", "Default/Cookies", "Default/Local Storage/leveldb/000003.log",
                     "Default/IndexedDB/http_x_1.indexeddb.leveldb/000003.log",
                     "Default/IndexedDB/http_x_1.indexeddb.leveldb/MANIFEST-000001",
                     "Default/IndexedDB/http_x_1.indexeddb.leveldb/CURRENT"}


def test_capture_needs_a_linked_profile(tmp_path):
    (tmp_path / "profile").mkdir()
    with pytest.raises(SnapshotError):
        capture(tmp_path / "profile", tmp_path / "s.tgz")


def test_extract_replaces_the_profile(tmp_path):
    capture(fake_profile(tmp_path / "a"), tmp_path / "s.tgz")
    target = tmp_path / "b" / "profile"
    target.mkdir(parents=True)
    (target / "stale").write_text("old")
    extract(tmp_path / "s.tgz", target)
    assert (target / LINKED_MARKER).read_bytes() == b"5511@c.us"
    assert (target / "Default/IndexedDB/http_x_1.indexeddb.leveldb/000003.log").read_bytes() == b"idb-log"
    assert not (target / "stale").exists()
    assert not (target / "Default/Cache").exists()
    assert (target.stat().st_mode & 0o777) == 0o700
    assert sorted(p.name for p in target.parent.iterdir()) == ["profile"]  # nothing left beside it


def test_extract_refuses_what_leaves_the_profile(tmp_path):
    evil = tmp_path / "evil.tgz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../outside")
        data = b"x"
        info.size = len(data)
        import io
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(SnapshotError):
        extract(evil, tmp_path / "p" / "profile")
    assert not (tmp_path / "p" / "outside").exists()
    assert not (tmp_path / "outside").exists()
    link = tmp_path / "link.tgz"
    with tarfile.open(link, "w:gz") as tar:
        info = tarfile.TarInfo("x")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(SnapshotError):
        extract(link, tmp_path / "q" / "profile")


@pytest.fixture(params=["file", "s3"])
def snapshots(request, tmp_path):
    if request.param == "file":
        return Snapshots(open_blob_store((tmp_path / "blobs").as_uri(), tmp_path))
    url, _ = request.getfixturevalue("s3_env")
    return Snapshots(open_blob_store(url, tmp_path))


def test_an_old_fence_never_overwrites_a_newer_snapshot(snapshots, tmp_path):
    archive = tmp_path / "s.tgz"
    capture(fake_profile(tmp_path / "profile"), archive)
    first = snapshots.put("k1", 3, archive)
    second = snapshots.put("k1", 3, archive)  # the same owner again: newer, the first one deleted
    assert second > first and snapshots.names("k1") == [second]
    newer = snapshots.put("k1", 5, archive)
    with pytest.raises(StaleFence):
        snapshots.put("k1", 4, archive)  # a node whose lease was taken over
    assert snapshots.names("k1") == [newer]
    assert snapshots.newest("k1").fence == 5
    out = tmp_path / "back.tgz"
    snapshots.fetch("k1", newer, out)
    assert out.read_bytes() == archive.read_bytes()
    snapshots.put("k2", 1, archive)
    snapshots.delete_all("k1")
    assert snapshots.names("k1") == [] and snapshots.newest("k2").fence == 1


# ------------------------------------------------------------ sealed
SECRET = b"fleet-secret-for-tests"


def sealed_store(tmp_path, secret=SECRET) -> Snapshots:
    return Snapshots(open_blob_store((tmp_path / "blobs").as_uri(), tmp_path), secret=secret)


def raw(snapshots, blob_id, tmp_path) -> bytes:
    return snapshots.blobs.get_bytes(blob_id)


def test_a_sealed_snapshot_restores_only_as_itself(tmp_path):
    """Whole, its key's, under its own name, sealed under the secret: or
    Tampered before a byte is extracted."""
    store = sealed_store(tmp_path)
    archive = tmp_path / "s.tgz"
    capture(fake_profile(tmp_path / "profile"), archive)
    victim = store.put("victim", 7, archive)
    blob = raw(store, victim.blob_id("victim"), tmp_path)
    assert blob.startswith(b"WWSNAP1 ") and b"fleet-secret" not in blob
    out = tmp_path / "back.tgz"
    store.fetch("victim", victim, out)
    assert out.read_bytes() == archive.read_bytes()

    def refused(key, name, data, why):
        store.blobs.put_bytes(name.blob_id(key), data)
        with pytest.raises(Tampered, match=why):
            store.fetch(key, name, tmp_path / "x.tgz")
        assert not (tmp_path / "x.tgz").exists()

    # The victim's copied under another key, or renamed to sort first.
    refused("attacker", victim, blob, "sealed as 'victim'")
    refused("victim", SnapshotName(99, victim.ms), blob, "fence 7")
    # Cut short, or a byte of the archive changed.
    refused("victim", victim, blob[:-10], "not whole")
    refused("victim", victim, blob[:-1] + bytes([blob[-1] ^ 1]), "differ")
    # Sealed as the key says, but not under the secret (a forger who can
    # write the store), or not sealed at all.
    forger = sealed_store(tmp_path / "forger", secret=b"another")
    forged = forger.put("victim", 9, archive)
    refused("victim", forged, raw(forger, forged.blob_id("victim"), tmp_path), "secret")
    refused("victim", victim, archive.read_bytes(), "not a sealed snapshot")


def test_without_a_secret_the_seal_still_binds_and_old_archives_restore(tmp_path):
    store = sealed_store(tmp_path, secret=None)
    archive = tmp_path / "s.tgz"
    capture(fake_profile(tmp_path / "profile"), archive)
    name = store.put("k", 3, archive)
    store.blobs.put_bytes(name.blob_id("other"), raw(store, name.blob_id("k"), tmp_path))
    with pytest.raises(Tampered):
        store.fetch("other", name, tmp_path / "x.tgz")
    legacy = SnapshotName(4, 1)  # written before snapshots were sealed: a bare archive
    store.blobs.put_file(legacy.blob_id("k"), archive)
    store.fetch("k", legacy, tmp_path / "old.tgz")
    assert (tmp_path / "old.tgz").read_bytes() == archive.read_bytes()


def test_a_snapshot_that_fails_its_check_is_set_aside(tmp_path):
    store = sealed_store(tmp_path)
    archive = tmp_path / "s.tgz"
    capture(fake_profile(tmp_path / "profile"), archive)
    name = store.put("k", 3, archive)
    aside = store.set_aside("k", name)
    assert aside == f"snapshots-rejected/k/{name.fence:020d}-{name.ms:013d}.tgz"
    assert store.names("k") == [] and store.blobs.exists(aside)


# --------------------------------------------------- while the page writes
WRITER_JS = """
// Write into the page's own database as fast as the page can, with
// values big enough that LevelDB switches logs and compacts meanwhile.
window.__writing = true; window.__writes = 0;
const open = indexedDB.open('fakewa', 1);
open.onsuccess = () => {
  const db = open.result;
  const blob = 'x'.repeat(64 * 1024);
  const step = () => {
    if (!window.__writing) return;
    const tx = db.transaction('kv', 'readwrite');
    tx.objectStore('kv').put(blob + window.__writes, 'noise-' + (window.__writes % 200));
    tx.oncomplete = () => { window.__writes++; step(); };
  };
  step();
};
"""


@pytest.mark.browser
def test_a_snapshot_taken_while_the_page_writes_restores(tmp_path, wa, control, browsers):
    """The page paired, then writing into IndexedDB without pause: each
    snapshot taken meanwhile, restored into a new profile, opens linked
    (the page connects without a QR code)."""
    from support import new_phone

    phone = new_phone()
    driver = browsers("live")
    driver.get(wa.url)
    wait_for(lambda: control.pending_qr(), timeout=20, what="a QR code")
    control.scan(control.pending_qr()[0]["qr"], phone)
    wait_for(lambda: driver.execute_script("return window.require('WAWebSocketModel').Socket.state") == "CONNECTED",
             timeout=20, what="the page to connect")
    (tmp_path / "live" / LINKED_MARKER).write_text(f"{phone}@c.us")
    driver.execute_script(WRITER_JS)
    wait_for(lambda: driver.execute_script("return window.__writes") > 20, timeout=30, what="the page to write")
    before = driver.execute_script("return window.__writes")
    archives = []
    for i in range(2):
        archive = tmp_path / f"s{i}.tgz"
        capture(tmp_path / "live", archive)
        archives.append(archive)
    writes = driver.execute_script("window.__writing = false; return window.__writes")
    assert writes > before  # it wrote while the snapshots were taken
    driver.quit()
    for i, archive in enumerate(archives):
        profile = tmp_path / f"restored{i}" / "profile"
        extract(archive, profile)
        restored = browsers(f"restored{i}/profile")
        restored.get(wa.url)
        wait_for(lambda: restored.execute_script(
            "return window.require && window.require('WAWebSocketModel').Socket.state") == "CONNECTED",
            timeout=20, what=f"snapshot {i} to come back linked")
        assert restored.execute_script("return window.require('WAWebConnModel').Conn.wid._serialized") \
            == f"{phone}@c.us"
        restored.quit()
    assert not control.pending_qr()
