// The page's weight: what the real page holds besides the modules clients
// use (its JavaScript heap, its DOM, its IndexedDB of chats and messages),
// so that a browser measured on the stand-in costs what one on the real
// page costs.  Off unless the server's settings ask for it; what is built
// is held for the page's life.

const WEIGHT_DB = 'fakewa-weight';
const WEIGHT_TEXT = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ';
// Referenced by the pagehide handler below, so the page's script context
// (and with it all of this) stays alive as long as the page does.
let weightHeld = null;

function weightText(i, length) {
  // Distinct strings (a shared one would be stored once, weighing nothing).
  let s = i.toString(36) + ' ';
  while (s.length < length) s += WEIGHT_TEXT;
  return s.slice(0, length);
}

// About `mb` megabytes of live JavaScript objects shaped like messages: an
// object of a few fields and a 200-character text each, 340 bytes of heap
// for one (V8's used heap size after a collection, Chromium 156).
async function buildHeap(mb) {
  const count = Math.round((mb * 1024 * 1024) / 340);
  const SLICE = 20000;  // objects built between two yields to the page's other work
  const rows = new Array(count);
  for (let start = 0; start < count; start += SLICE) {
    for (let i = start; i < Math.min(count, start + SLICE); i++) {
      rows[i] = { id: 'w' + i, t: 1700000000 + i, ack: i % 4, body: weightText(i, 200), star: false };
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return rows;
}

// `n` elements in the document, in rows of a list as the chat list draws
// them: one row of three elements (row, title, preview) per three.
function buildDom(n) {
  const list = document.createElement('div');
  list.id = 'fakewa-weight';
  list.setAttribute('aria-hidden', 'true');
  list.style.cssText = 'height:0;overflow:hidden';
  const fragment = document.createDocumentFragment();
  for (let i = 0; i < n; i += 3) {
    const row = document.createElement('div');
    const title = document.createElement('span');
    title.textContent = 'Chat ' + i;
    const preview = document.createElement('span');
    preview.textContent = weightText(i, 60);
    row.append(title, preview);
    fragment.append(row);
  }
  list.append(fragment);
  document.body.append(list);
  return list;
}

function idbRequest(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

// `chats` chats and `messages` messages (spread over the chats) in an
// IndexedDB of the profile, written on the first boot and found again on
// the next ones, as the real page keeps its chats between runs.
async function buildStore(chats, messages) {
  const open = indexedDB.open(WEIGHT_DB, 1);
  open.onupgradeneeded = () => {
    open.result.createObjectStore('chat', { keyPath: 'id' });
    open.result.createObjectStore('message', { keyPath: 'id' }).createIndex('chat', 'chat');
  };
  const db = await idbRequest(open);
  const have = await idbRequest(db.transaction('message').objectStore('message').count());
  const haveChats = await idbRequest(db.transaction('chat').objectStore('chat').count());
  if (have !== messages || haveChats !== chats) {
    const BATCH = 2000;  // messages a transaction writes
    const tx = db.transaction(['chat', 'message'], 'readwrite');
    tx.objectStore('chat').clear();
    tx.objectStore('message').clear();
    for (let c = 0; c < chats; c++) {
      tx.objectStore('chat').put({ id: 'c' + c, name: 'Chat ' + c, t: 1700000000 + c, unreadCount: 0 });
    }
    await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
    for (let start = 0; start < messages; start += BATCH) {
      const mtx = db.transaction('message', 'readwrite');
      const store = mtx.objectStore('message');
      for (let i = start; i < Math.min(messages, start + BATCH); i++) {
        store.put({ id: 'm' + i, chat: 'c' + (i % Math.max(chats, 1)), t: 1700000000 + i, body: weightText(i, 200) });
      }
      await new Promise((resolve, reject) => { mtx.oncomplete = resolve; mtx.onerror = () => reject(mtx.error); });
    }
  }
  return db;
}

async function loadWeight(weight) {
  if (!weight) return;
  const held = weightHeld = {};
  if (weight.heapMb > 0) held.heap = await buildHeap(weight.heapMb);
  if (weight.domNodes > 0) held.dom = buildDom(weight.domNodes);
  if (weight.chats > 0 || weight.messages > 0) held.store = await buildStore(weight.chats, weight.messages);
  held.done = true;
}

window.addEventListener('pagehide', () => { weightHeld = null; });
