// Runs in WhatsApp Web's page at the start of every document (installed with
// Page.addScriptToEvaluateOnNewDocument, after message.js, both inside one
// function so nothing of them is a global of the page) and reports to the session process
// through the page binding `__wwnodeEmit`, one JSON string per call.
//
// It only listens: it waits for the page's module system
// (`window.Debug.VERSION`, then `window.require`), reports `loaded`, and
// subscribes to the models the session needs only when the session calls
// `__wwnodeAttach()` -- after it has checked that the page has every module
// and member used here (sessionproc/pageapi.py lists them).  It takes no data
// from the session process, so nothing of a message or chat id is ever
// pasted into script source.  How long the page may take to load is the
// session's business (its boot deadline), not this script's.
(function () {
  'use strict';
  if (window.__wwnodeHooked || typeof window.__wwnodeEmit !== 'function') return;
  window.__wwnodeHooked = true;
  const emitRaw = window.__wwnodeEmit;
  const emit = (obj) => emitRaw(JSON.stringify(obj));
  const WAITING = ['OPENING', 'UNLAUNCHED', 'PAIRING'];

  emit({ type: 'page', url: String(window.location.href) });

  const isLoaded = () => !!(window.Debug && window.Debug.VERSION && typeof window.require === 'function');

  // The ids of messages this session sends: its send scripts
  // (pagescripts.py) name each here before the page adds it.  The page adds
  // every message of the account to Msg, ours included; only those written
  // on another device (the phone) are reported, as the account's own.  Kept
  // after they are seen (a page that adds a model again reports nothing
  // twice); the oldest go past a bound.
  const ownSends = new Set();
  Object.defineProperty(window, '__wwnodeSending', {
    value: (id) => {
      ownSends.add(String(id));
      if (ownSends.size > 1000) ownSends.delete(ownSends.values().next().value);
    },
  });

  // The module system appears when the page's bundle has run; until then
  // there is nothing to subscribe to.  Looked for every 10 ms (three
  // property reads): every 50 ms, it was found 46 ms after the document
  // started, median of 10 boots against the stand-in, and 17 ms at 10 ms,
  // the boots taking turns in one run.
  function whenLoaded(fn) {
    if (isLoaded()) { fn(); return; }
    const timer = setInterval(() => {
      if (isLoaded()) {
        clearInterval(timer);
        fn();
      }
    }, 10);
  }

  // The first of the modules the session checked that the page has.
  function firstPresent(req, names, member) {
    for (const name of names) {
      let mod;
      try { mod = req(name); } catch (e) { continue; }  // not on this page
      if (mod && typeof mod[member] === 'function') return mod;
    }
    throw new Error('none of ' + names.join(', ') + ' has ' + member);
  }

  function attach() {
    const req = window.require;
    const Socket = req('WAWebSocketModel').Socket;
    const Conn = req('WAWebConnModel').Conn;
    const Cmd = req('WAWebCmd').Cmd;
    const Msg = req('WAWebCollections').Msg;
    const Me = req('WAWebUserPrefsMeUser');
    // Required when a message comes, as whatsapp-web.js does: the session
    // checks for it only once the page has synced (pageapi.WHEN_SYNCED).
    const findLinks = (text) => req('WALinkify').findLinks(text);

    async function qrString(ref) {
      const b64 = req('WABase64').encodeB64;
      const registration = await req('WAWebSignalStoreApi').waSignalStore.getRegistrationInfo();
      const noise = await req('WAWebUserPrefsInfoStore').waNoiseInfo.get();
      // As whatsapp-web.js: the synchronous read of the prefs first; the
      // older asynchronous wrapper where a page has only that.
      const adv = firstPresent(req, ['WAWebUserPrefsMultiDevice', 'WAWebAdvSignatureApi'], 'getADVSecretKey');
      return [ref, b64(noise.staticKeyPair.pubKey), b64(registration.identityKeyPair.pubKey),
        await adv.getADVSecretKey(), req('WAWebCompanionRegClientUtils').DEVICE_PLATFORM].join(',');
    }
    const sendQr = (ref) => {
      if (!ref) return;
      qrString(ref).then((qr) => emit({ type: 'qr', qr }),
        (e) => emit({ type: 'error', reason: 'qr_unreadable', detail: String(e) }));
    };
    // A person's other id, where the page knows it (as whatsapp-web.js
    // finds it, WWebJS.enforceLidAndPnRetrieval): the number of a LID, the
    // LID of a number.  Required when a message comes; a page without the
    // module still reports its messages, with the ids as they are, and the
    // session logs why once.
    let contactsMissing = false;
    const otherIdOf = (wid) => {
      let contacts;
      try { contacts = req('WAWebApiContact'); } catch (e) {
        if (!contactsMissing) emit({ type: 'error', reason: 'lid_mapping_unavailable', detail: String(e) });
        contactsMissing = true;
        return null;
      }
      const w = typeof wid === 'string' ? req('WAWebWidFactory').createWid(wid) : wid;
      return widString(w.server === 'lid' ? contacts.getPhoneNumber(w) : contacts.getCurrentLid(w)) || null;
    };
    const synced = () => {
      const me = Me.getMaybeMePnUser() || Me.getMaybeMeLidUser();
      emit({ type: 'synced', me: widString(me), me_lid: widString(Me.getMaybeMeLidUser()) || null });
    };

    Socket.on('change:state', (_model, state) => emit({ type: 'state', state }));
    Socket.on('change:hasSynced', (_model, value) => { if (value) synced(); });
    Conn.on('change:ref', (_model, ref) => { if (!WAITING.includes(Socket.state)) sendQr(ref); });
    // The page fires one or the other depending on where the logout came from.
    Cmd.on('logout', () => emit({ type: 'logout' }));
    Cmd.on('logout_from_bridge', () => emit({ type: 'logout' }));
    // Messages from others, and the account's own written on another
    // device (fromMe, reported as such); never this session's own sends.
    const report = (m) => emit({ type: 'message', message: toClientMessage(m, findLinks, emit, otherIdOf) });
    const onNewMessage = (msg) => {
      if (!msg.isNewMsg) return;
      if (msg.type === 'gp2') {
        // A group's change, not a message of the conversation (groupevents.js).
        emit(groupUpdateReport(msg, otherIdOf));
        return;
      }
      if (msg.id && msg.id.fromMe && ownSends.has(String(msg.id._serialized))) return;
      if (msg.type === 'ciphertext') {
        // Not decrypted yet: it becomes readable with a change of type.
        msg.once('change:type', report);
        return;
      }
      report(msg);
    };
    Msg.on('add', onNewMessage);
    listenForAcks(Msg, emit);  // receipts.js
    listenForReactions(req, emit, otherIdOf);  // receipts.js
    listenForVotes(req, emit, otherIdOf);  // polls.js
    listenForCalls(req, emit, otherIdOf);  // calls.js
    listenForChanges(Msg, emit, (m) => toClientMessage(m, findLinks, emit, otherIdOf));
    // New messages the page took before this script could listen (it
    // starts when the module system appears; the page may already be
    // receiving by then).
    const present = typeof Msg.getModelsArray === 'function' ? Msg.getModelsArray() : (Msg.models || []);
    present.forEach(onNewMessage);

    // Where the page is now, for a session process that attached late.
    const settle = () => {
      emit({ type: 'state', state: Socket.state });
      if (Socket.state === 'UNPAIRED' || Socket.state === 'UNPAIRED_IDLE') sendQr(Conn.ref);
      if (Socket.hasSynced) synced();
    };
    if (WAITING.includes(Socket.state)) {
      const wait = (_model, state) => {
        if (WAITING.includes(state)) return;
        Socket.off('change:state', wait);
        if (state === 'UNPAIRED' || state === 'UNPAIRED_IDLE') sendQr(Conn.ref);
      };
      Socket.on('change:state', wait);
    } else {
      settle();
    }
  }

  let attached = false;
  // Called by the session once the page passed its check.
  Object.defineProperty(window, '__wwnodeAttach', {
    value: () => {
      if (attached) return;
      attached = true;
      try { attach(); } catch (e) { emit({ type: 'error', reason: 'hook_failed', detail: String(e && e.stack || e) }); }
    },
  });

  whenLoaded(() => emit({
    type: 'loaded',
    version: String(window.Debug.VERSION),
    user_agent: String(navigator.userAgent),
    webdriver: navigator.webdriver === true,
  }));
})();
