// The stand-in's page: the part of WhatsApp Web that sessions use.
//
// It exposes `window.Debug.VERSION` and `window.require(name)` with the
// modules, members, events and data shapes of the current ("comet") page,
// keeps its device identity and pairing in IndexedDB (so in the browser
// profile, as the real page does), and keeps a live link to its server
// (Server-Sent Events in, fetch out).
(function () {
  'use strict';

  const VERSION = '2.3000.1017054665';
  const DB_NAME = 'fakewa';

  // ------------------------------------------------------------ events
  // Backbone-like: on/off/once/trigger; handlers get (model, value) for
  // `change:<attr>` as the real models do.
  class Events {
    on(name, fn, ctx) {
      (this._handlers || (this._handlers = {}));
      (this._handlers[name] || (this._handlers[name] = [])).push({ fn, ctx });
      return this;
    }
    off(name, fn) {
      if (!this._handlers) return this;
      if (name === undefined) { this._handlers = {}; return this; }
      const list = this._handlers[name] || [];
      this._handlers[name] = fn ? list.filter(h => h.fn !== fn) : [];
      return this;
    }
    once(name, fn, ctx) {
      const wrapper = (...args) => { this.off(name, wrapper); fn.apply(ctx, args); };
      return this.on(name, wrapper, ctx);
    }
    trigger(name, ...args) {
      const list = ((this._handlers || {})[name] || []).slice();
      for (const h of list) {
        try { h.fn.apply(h.ctx, args); } catch (e) { console.error(e); }
      }
      return this;
    }
  }

  class Model extends Events {
    constructor(attrs) {
      super();
      this._attrs = {};
      for (const [k, v] of Object.entries(attrs || {})) this._define(k, v);
    }
    _define(name, value) {
      this._attrs[name] = value;
      Object.defineProperty(this, name, {
        enumerable: true,
        configurable: true,
        get: () => this._attrs[name],
        set: (v) => this.set(name, v),
      });
    }
    set(name, value) {
      if (!(name in this._attrs)) { this._define(name, value); return; }
      if (this._attrs[name] === value) return;
      this._attrs[name] = value;
      this.trigger('change:' + name, this, value);
      this.trigger('change', this);
    }
    serialize() {
      const out = {};
      for (const [k, v] of Object.entries(this._attrs)) {
        out[k] = v && typeof v.serialize === 'function' ? v.serialize() : v;
      }
      return out;
    }
  }

  class Collection extends Events {
    constructor(keyOf) {
      super();
      this._byId = new Map();
      this._models = [];
      this._keyOf = keyOf;
    }
    get models() { return this._models.slice(); }
    get length() { return this._models.length; }
    _key(id) {
      if (id === undefined || id === null) return undefined;
      if (typeof id === 'string') return id;
      if (id._serialized !== undefined) return id._serialized;
      return String(id);
    }
    get(id) { return this._byId.get(this._key(id)); }
    getModelsArray() { return this.models; }
    add(models) {
      const list = Array.isArray(models) ? models : [models];
      const added = [];
      for (const m of list) {
        const key = this._keyOf(m);
        if (this._byId.has(key)) { added.push(this._byId.get(key)); continue; }
        this._byId.set(key, m);
        this._models.push(m);
        added.push(m);
        this.trigger('add', m, this);
      }
      return added;
    }
    remove(id) {
      const m = this.get(id);
      if (!m) return undefined;
      this._byId.delete(this._keyOf(m));
      this._models = this._models.filter(x => x !== m);
      this.trigger('remove', m, this);
      return m;
    }
    serialize() { return this._models.map(m => m.serialize()); }
  }

  // ------------------------------------------------------ ids and keys
  class Wid {
    constructor(serialized) {
      const at = serialized.indexOf('@');
      if (at <= 0) throw new Error('invalid wid: ' + serialized);
      this.user = serialized.slice(0, at);
      this.server = serialized.slice(at + 1);
      this._serialized = serialized;
    }
    toString() { return this._serialized; }
    toJid() { return this._serialized; }
    isUser() { return this.server === 'c.us'; }
    isGroup() { return this.server === 'g.us'; }
    equals(other) { return !!other && other._serialized === this._serialized; }
    serialize() { return this._serialized; }
  }
  function createWid(s) {
    if (typeof s !== 'string') throw new Error('createWid: expected a string');
    return new Wid(s);
  }

  class MsgKey {
    constructor({ from, to, id, participant, selfDir }) {
      this.fromMe = selfDir === 'out';
      this.remote = this.fromMe ? to : from;
      this.id = id;
      this.participant = participant;
      this._serialized = `${this.fromMe}_${this.remote._serialized}_${id}`;
    }
    toString() { return this._serialized; }
    serialize() {
      return { fromMe: this.fromMe, remote: this.remote._serialized, id: this.id, _serialized: this._serialized };
    }
    static newId() {
      const bytes = new Uint8Array(10);
      crypto.getRandomValues(bytes);
      return Promise.resolve(Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('').toUpperCase());
    }
  }

  function encodeB64(buf) {
    const bytes = new Uint8Array(buf);
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }
  function randomBytes(n) { const a = new Uint8Array(n); crypto.getRandomValues(a); return a.buffer; }

  // ------------------------------------------------- profile (IndexedDB)
  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore('kv');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  function dbOp(db, mode, fn) {
    return new Promise((resolve, reject) => {
      const tx = db.transaction('kv', mode);
      const req = fn(tx.objectStore('kv'));
      tx.oncomplete = () => resolve(req && req.result);
      tx.onerror = () => reject(tx.error);
    });
  }
  const profile = {
    db: null,
    get(k) { return dbOp(this.db, 'readonly', s => s.get(k)); },
    put(k, v) { return dbOp(this.db, 'readwrite', s => s.put(v, k)); },
    del(k) { return dbOp(this.db, 'readwrite', s => s.delete(k)); },
  };

  function newIdentity() {
    return {
      device: encodeB64(randomBytes(16)).replace(/[^A-Za-z0-9]/g, ''),
      noisePub: randomBytes(32), noisePriv: randomBytes(32),
      identityPub: randomBytes(32), identityPriv: randomBytes(32),
      advSecret: encodeB64(randomBytes(32)),
    };
  }

  // ---------------------------------------------------------- modules
  const Socket = new Model({ state: 'OPENING', hasSynced: false, stream: 'DISCONNECTED' });
  const Conn = new Model({ ref: null, wid: undefined, platform: 'web', pushname: undefined, connected: false });
  const Stream = new Model({ available: false, mode: 'MAIN', displayInfo: 'OPENING' });
  const Cmd = new Events();
  const Msg = new Collection(m => m.id._serialized);
  const Chat = new Collection(c => c.id._serialized);
  let identity = null;
  let me = undefined;

  Socket.takeover = () => post('/_wa/takeover', {}).then(() => undefined);
  Socket.logout = () => post('/_wa/logout', {}).then(() => undefined);
  Stream.markAvailable = () => { Stream.available = true; };
  Stream.markUnavailable = () => { Stream.available = false; };

  function chatFor(wid) {
    let chat = Chat.get(wid);
    if (!chat) {
      chat = new Model({ id: wid, name: wid.user, unreadCount: 0, t: 0 });
      Chat.add(chat);
    }
    return chat;
  }

  function addAndSendMsgToChat(chat, msgData) {
    const msg = new Model(Object.assign({}, msgData));
    Msg.add(msg);
    const msgPromise = Promise.resolve(msg);
    const resultPromise = post('/_wa/send', {
      id: msg.id.id, to: msg.to._serialized, body: msg.body, t: msg.t,
    }).then(() => {
      msg.ack = 1;
      return { messageSendResult: 'OK' };
    }, (err) => {
      msg.ack = -1;
      return { messageSendResult: 'ERROR', error: String(err) };
    });
    chat.t = msg.t;
    return [msgPromise, resultPromise];
  }

  const modules = {
    WAWebSocketModel: { Socket },
    WAWebConnModel: { Conn },
    WAWebStreamModel: { Stream },
    WAWebCmd: { Cmd },
    WAWebCollections: { Msg, Chat },
    WAWebWidFactory: { createWid, createUserWid: (user) => createWid(user + '@c.us') },
    WAWebFindChatAction: {
      findOrCreateLatestChat: (wid) => Promise.resolve({ chat: chatFor(wid), created: false }),
    },
    WAWebSendMsgChatAction: { addAndSendMsgToChat },
    WAWebMsgKey: MsgKey,
    WAWebUserPrefsMeUser: {
      getMaybeMePnUser: () => me,
      getMaybeMeLidUser: () => undefined,
      getMeUser: () => { if (!me) throw new Error('no me user'); return me; },
    },
    WABase64: { encodeB64 },
    WAWebCompanionRegClientUtils: { DEVICE_PLATFORM: 'WEB' },
    WAWebAdvSignatureApi: { getADVSecretKey: () => Promise.resolve(identity.advSecret) },
    WAWebUserPrefsInfoStore: {
      waNoiseInfo: { get: () => Promise.resolve({ staticKeyPair: { pubKey: identity.noisePub, privKey: identity.noisePriv } }) },
    },
    WAWebSignalStoreApi: {
      waSignalStore: {
        getRegistrationInfo: () => Promise.resolve({ identityKeyPair: { pubKey: identity.identityPub, privKey: identity.identityPriv } }),
      },
    },
  };

  window.require = function (name) {
    if (!Object.prototype.hasOwnProperty.call(modules, name)) {
      throw new Error('Requiring unknown module "' + name + '"');
    }
    return modules[name];
  };

  // ---------------------------------------------------------- the link
  function post(path, body) {
    const payload = Object.assign({ device: identity.device }, body);
    return fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(payload),
    }).then(async (r) => {
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status + ' ' + (await r.text()));
      return r.json();
    });
  }

  let source = null;
  let chain = Promise.resolve();

  function qrTail() {
    return [encodeB64(identity.noisePub), encodeB64(identity.identityPub), identity.advSecret, 'WEB'].join(',');
  }

  async function connect() {
    const paired = await profile.get('paired');
    const params = new URLSearchParams({ device: identity.device, tail: qrTail(), paired: paired ? '1' : '0' });
    source = new EventSource('/_wa/link?' + params.toString());
    source.onopen = () => { Conn.connected = true; };
    source.onerror = () => { Conn.connected = false; };  // EventSource retries by itself
    source.onmessage = (e) => {
      const event = JSON.parse(e.data);
      chain = chain.then(() => handle(event)).catch((err) => console.error(err));
    };
  }

  async function startOver() {
    // The phone unlinked this device: forget it and register anew.
    if (source) source.close();
    await profile.del('paired');
    identity = newIdentity();
    await profile.put('identity', identity);
    me = undefined;
    Conn.wid = undefined;
    Socket.hasSynced = false;
    Socket.state = 'OPENING';
    await connect();
  }

  function show(text, ref) {
    const el = document.getElementById('status');
    if (el) el.textContent = text;
    const qr = document.getElementById('qr');
    if (qr) { if (ref) qr.setAttribute('data-ref', ref); else qr.removeAttribute('data-ref'); }
  }

  async function handle(event) {
    switch (event.type) {
      case 'ref':
        Conn.ref = event.ref;  // the ref first: readers of state UNPAIRED read it
        Socket.state = 'UNPAIRED';
        show('Scan the QR code', event.ref);
        break;
      case 'idle':
        Conn.ref = null;
        Socket.state = 'UNPAIRED_IDLE';
        show('Click to reload QR code');
        break;
      case 'paired': {
        if (!event.restored) Socket.state = 'PAIRING';
        await profile.put('paired', event.wid);
        me = createWid(event.wid);
        Conn.wid = me;
        Conn.ref = null;
        Socket.state = 'CONNECTED';
        Stream.displayInfo = 'NORMAL';
        Socket.hasSynced = true;
        show('Connected as ' + event.wid);
        break;
      }
      case 'msg':
        receive(event.msg);
        break;
      case 'unpaired':
        await startOver();
        break;
      case 'logout':
        // As the real page: the phone logged this device out, the page
        // forgets its pairing and navigates to the post-logout address.
        source.close();
        await profile.del('paired');
        await profile.put('identity', newIdentity());
        Cmd.trigger('logout');
        window.location.assign('/?post_logout=1&logout_reason=0');
        break;
      case 'conflict':
        Socket.state = 'CONFLICT';
        show('WhatsApp is open on another computer or browser');
        break;
      case 'connected':
        Socket.state = 'CONNECTED';
        show('Connected as ' + (me ? me._serialized : ''));
        break;
      case 'freeze':
        // A hung page: the renderer stops running any script.
        for (;;) { /* spin */ }
      case 'replaced':
        source.close();
        Socket.state = 'CONFLICT';
        break;
      default:
        console.warn('fakewa: unknown event', event);
    }
  }

  function receive(data) {
    const from = createWid(data.from);
    const to = createWid(data.to);
    const id = new MsgKey({ from, to, id: data.id, selfDir: 'in' });
    if (!Msg.get(id)) {
      const msg = new Model({
        id, body: data.body, type: 'chat', t: data.t, from, to, author: undefined,
        notifyName: '', ack: 1, isNewMsg: true, star: false, broadcast: false,
        isForwarded: false, forwardingScore: 0, mentionedJidList: [], quotedMsg: undefined,
        local: false, self: 'in',
      });
      chatFor(from).unreadCount += 1;
      Msg.add(msg);
    }
    post('/_wa/ack', { ids: [data.id] }).catch((err) => console.error(err));
  }

  // ---------------------------------------------------------- start
  async function boot() {
    profile.db = await openDb();
    identity = await profile.get('identity');
    if (!identity) {
      identity = newIdentity();
      await profile.put('identity', identity);
    }
    window.Debug = { VERSION };
    show('Loading');
    await connect();
  }

  boot().catch((err) => { console.error(err); show('Failed to start: ' + err); });
})();
