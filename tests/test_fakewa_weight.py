"""The stand-in page's weight: a JavaScript heap, a DOM and an IndexedDB of
chats of the sizes asked for, held for the page's life; none by default."""

from __future__ import annotations

import pytest

from support import wait_for
from wwnode.fakewa import Settings
from wwnode.fakewa.assets import page_html
from wwnode.fakewa.settings import REAL_WEIGHT

MB = 1024 * 1024

COUNT_JS = """
const done = arguments[arguments.length - 1];
(async () => {
  const names = (await indexedDB.databases()).map((d) => d.name);
  const out = {dom: document.querySelectorAll('#fakewa-weight *').length, chats: null, messages: null};
  if (!names.includes('fakewa-weight')) return out;
  const db = await new Promise((ok, no) => {
    const q = indexedDB.open('fakewa-weight'); q.onsuccess = () => ok(q.result); q.onerror = () => no(q.error);
  });
  const count = (s) => new Promise((ok, no) => {
    const q = db.transaction(s).objectStore(s).count(); q.onsuccess = () => ok(q.result); q.onerror = () => no(q.error);
  });
  out.chats = await count('chat');
  out.messages = await count('message');
  db.close();
  return out;
})().then(done, (e) => done('error: ' + e));
"""


def test_weight_is_off_by_default_and_bounded():
    assert b'"weight"' not in page_html(Settings(), "run")
    assert b'"heapMb":5' in page_html(Settings(weight_heap_mb=5), "run")
    for bad in ({"weight_heap_mb": -1}, {"weight_dom_nodes": 10**7}, {"weight_chats": 1.5},
                {"weight_messages": "10"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Settings(**bad)


def test_the_command_line_takes_a_weight_and_refuses_a_bad_one(capsys):
    from wwnode.fakewa.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--weight", "real", "--weight-heap-mb", "-1", "--port", "0"])
    assert done.value.code == 2 and "weight_heap_mb" in capsys.readouterr().err
    assert REAL_WEIGHT["weight_heap_mb"] > 0 and Settings(**REAL_WEIGHT).weight_chats > 0


def loaded(d, wa) -> None:
    d.get(wa.url)
    wait_for(lambda: d.execute_script("return window.Debug ? window.require('WAWebSocketModel').Socket.state : null")
             == "UNPAIRED", what="the page's QR state")


def heap_after_gc(d) -> int:
    d.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    return d.execute_cdp_cmd("Runtime.getHeapUsage", {})["usedSize"]


@pytest.mark.browser
def test_a_weighted_page_holds_its_heap_dom_and_chats(page, make_wa):
    loaded(page, make_wa())
    light = heap_after_gc(page)
    assert page.execute_async_script(COUNT_JS) == {"dom": 0, "chats": None, "messages": None}

    wa = make_wa(weight_heap_mb=40, weight_dom_nodes=3000, weight_chats=50, weight_messages=2000)
    full = {"dom": 3000, "chats": 50, "messages": 2000}
    loaded(page, wa)  # the QR code does not wait for the weight, which builds in order: heap, DOM, chats
    wait_for(lambda: page.execute_async_script(COUNT_JS) == full, timeout=60, what="the page's weight built")
    # Held, not garbage: a collection leaves it all in place.
    assert heap_after_gc(page) - light >= 36 * MB
    # The chats are kept in the profile: a reload finds them again.
    loaded(page, wa)
    wait_for(lambda: page.execute_async_script(COUNT_JS) == full, timeout=60, what="the page's weight built again")
