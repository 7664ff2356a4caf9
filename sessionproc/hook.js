// Runs in WhatsApp Web's page at the start of every document (installed with
// Page.addScriptToEvaluateOnNewDocument) and reports to the session process
// through the page binding `__wwnodeEmit`, one JSON string per call.
//
// It only listens: it waits for the page's module system
// (`window.Debug.VERSION`, then `window.require`), subscribes to the models
// the session needs, and forwards their events.  It takes no data from the
// session process, so nothing of a message or chat id is ever pasted into
// script source.
(function () {
  'use strict';
  if (window.__wwnodeHooked || typeof window.__wwnodeEmit !== 'function') return;
  window.__wwnodeHooked = true;
  const emitRaw = window.__wwnodeEmit;
  const emit = (obj) => emitRaw(JSON.stringify(obj));
  const WAITING = ['OPENING', 'UNLAUNCHED', 'PAIRING'];

  emit({ type: 'page', url: String(window.location.href) });

  // The module system appears when the page's bundle has run; until then
  // there is nothing to subscribe to.  A short wait at start-up only.
  function whenLoaded(fn) {
    if (window.Debug && window.Debug.VERSION && typeof window.require === 'function') { fn(); return; }
    let tries = 0;
    const timer = setInterval(() => {
      tries += 1;
      if (window.Debug && window.Debug.VERSION && typeof window.require === 'function') {
        clearInterval(timer);
        fn();
      } else if (tries === 1200) {  // 60 s
        clearInterval(timer);
        emit({ type: 'error', reason: 'page_not_loaded', detail: 'window.Debug.VERSION never appeared' });
      }
    }, 50);
  }

  const wid = (x) => (x && typeof x === 'object' ? x._serialized : x);

  // A message in the shape whatsapp-web.js gives a serialized Message.
  function toClientMessage(model) {
    const m = typeof model.serialize === 'function' ? model.serialize() : model;
    const rawId = m.id || {};
    const id = {
      fromMe: !!rawId.fromMe,
      remote: wid(rawId.remote),
      id: rawId.id,
      _serialized: rawId._serialized,
    };
    const hasMedia = Boolean(m.mediaKey && m.directPath);
    const shortId = String(id.id || '');
    return {
      id,
      ack: m.ack ?? 0,
      hasMedia,
      body: hasMedia ? (m.caption || '') : (m.body || m.pollName || ''),
      type: m.type,
      timestamp: m.t,
      from: wid(m.from),
      to: wid(m.to),
      author: wid(m.author) ?? null,  // kept when absent: clients read the field
      deviceType: shortId.length > 21 ? 'android' : shortId.startsWith('3A') ? 'ios' : 'web',
      isForwarded: !!m.isForwarded,
      forwardingScore: m.forwardingScore || 0,
      isStatus: !!m.isStatusV3 || id.remote === 'status@broadcast',
      isStarred: !!m.star,
      broadcast: !!m.broadcast,
      fromMe: id.fromMe,
      hasQuotedMsg: !!m.quotedMsg,
      mentionedIds: (m.mentionedJidList || []).map(wid),
      links: m.links || [],
      notifyName: m.notifyName ?? '',
    };
  }

  function attach() {
    const req = window.require;
    const Socket = req('WAWebSocketModel').Socket;
    const Conn = req('WAWebConnModel').Conn;
    const Cmd = req('WAWebCmd').Cmd;
    const Msg = req('WAWebCollections').Msg;
    const Me = req('WAWebUserPrefsMeUser');
    emit({ type: 'loaded', version: String(window.Debug.VERSION) });

    async function qrString(ref) {
      const reg = Object.assign({},
        req('WAWebCompanionRegClientUtils'), req('WAWebAdvSignatureApi'),
        req('WAWebUserPrefsInfoStore'), req('WAWebSignalStoreApi'));
      const b64 = req('WABase64').encodeB64;
      const registration = await reg.waSignalStore.getRegistrationInfo();
      const noise = await reg.waNoiseInfo.get();
      return [ref, b64(noise.staticKeyPair.pubKey), b64(registration.identityKeyPair.pubKey),
        await reg.getADVSecretKey(), reg.DEVICE_PLATFORM].join(',');
    }
    const sendQr = (ref) => {
      if (!ref) return;
      qrString(ref).then((qr) => emit({ type: 'qr', qr }),
        (e) => emit({ type: 'error', reason: 'qr_unreadable', detail: String(e) }));
    };
    const synced = () => {
      const me = Me.getMaybeMePnUser() || Me.getMaybeMeLidUser();
      emit({ type: 'synced', me: wid(me) });
    };

    Socket.on('change:state', (_model, state) => emit({ type: 'state', state }));
    Socket.on('change:hasSynced', (_model, value) => { if (value) synced(); });
    Conn.on('change:ref', (_model, ref) => { if (!WAITING.includes(Socket.state)) sendQr(ref); });
    Cmd.on('logout', () => emit({ type: 'logout' }));
    const onNewMessage = (msg) => {
      if (!msg.isNewMsg || (msg.id && msg.id.fromMe)) return;
      if (msg.type === 'ciphertext') {
        // Not decrypted yet: it becomes readable with a change of type.
        msg.once('change:type', (m) => emit({ type: 'message', message: toClientMessage(m) }));
        return;
      }
      emit({ type: 'message', message: toClientMessage(msg) });
    };
    Msg.on('add', onNewMessage);
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

  whenLoaded(() => {
    try { attach(); } catch (e) { emit({ type: 'error', reason: 'hook_failed', detail: String(e && e.stack || e) }); }
  });
})();
