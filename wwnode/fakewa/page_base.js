// The stand-in page's building blocks, in the shapes of the real page's:
// Backbone-style events, models and collections, ids (Wid) and message
// keys.  The server joins this file and page.js into one script.

// ------------------------------------------------------------ events
// on/off/once/trigger, with several event names separated by spaces in one
// call (`'change:body change:caption'`), as Backbone and the real page do.
// Handlers get (model, value, previous) for `change:<attr>`.
const EVENT_SPLIT = /\s+/;
const names = (name) => String(name).split(EVENT_SPLIT).filter(Boolean);

class Events {
  _list(name) {
    if (!this._handlers) Object.defineProperty(this, '_handlers', { value: {}, writable: true });
    return this._handlers[name] || (this._handlers[name] = []);
  }
  on(name, fn, ctx) {
    for (const n of names(name)) this._list(n).push({ fn, ctx });
    return this;
  }
  off(name, fn) {
    if (!this._handlers) return this;
    if (name === undefined) { this._handlers = {}; return this; }
    for (const n of names(name)) {
      this._handlers[n] = fn ? this._list(n).filter(h => h.fn !== fn && h.fn._original !== fn) : [];
    }
    return this;
  }
  once(name, fn, ctx) {
    for (const n of names(name)) {
      const wrapper = (...args) => { this.off(n, wrapper); fn.apply(ctx, args); };
      wrapper._original = fn;
      this.on(n, wrapper, ctx);
    }
    return this;
  }
  trigger(name, ...args) {
    for (const n of names(name)) {
      const list = ((this._handlers || {})[n] || []).slice();
      for (const h of list) {
        try { h.fn.apply(h.ctx, args); } catch (e) { console.error(e); }
      }
    }
    return this;
  }
}

// A model's attributes are properties (`msg.ack`, `chat.unreadCount`);
// setting one triggers `change:<name>` and `change` on the model and on
// every collection that holds it.  Bookkeeping is not enumerable, so a
// model crosses JSON.stringify as its attributes.
class Model extends Events {
  constructor(attrs) {
    super();
    Object.defineProperty(this, '_attrs', { value: {} });
    Object.defineProperty(this, '_collections', { value: new Set() });
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
    if (name !== null && typeof name === 'object') {  // Backbone's set({a: 1, b: 2}), as media code calls it
      for (const [k, v] of Object.entries(name)) this.set(k, v);
      return;
    }
    if (!(name in this._attrs)) { this._define(name, value); return; }
    const previous = this._attrs[name];
    if (previous === value) return;
    this._attrs[name] = value;
    this.trigger('change:' + name, this, value, previous);
    this.trigger('change', this);
  }
  trigger(name, ...args) {
    super.trigger(name, ...args);
    for (const c of this._collections) c.trigger(name, ...args);
    return this;
  }
  // Ids stay Wids, as on the real page: a client that reads the result by
  // value gets {server, user, _serialized} (whatsapp-web.js's Chat reads
  // `id._serialized`), one that JSON-encodes it the id string (Wid.toJSON).
  serialize() {
    const out = {};
    for (const [k, v] of Object.entries(this._attrs)) {
      out[k] = v && !(v instanceof Wid) && typeof v.serialize === 'function' ? v.serialize() : v;
    }
    return out;
  }
  toJSON() { return this.serialize(); }
}

// Keyed by the models' id.  `_byId` is an own enumerable Map: clients
// (whatsapp-web.js's call hook) look a collection's Map up by its keys.
class Collection extends Events {
  constructor(keyOf) {
    super();
    this._byId = new Map();
    Object.defineProperty(this, '_keyOf', { value: keyOf });
  }
  get models() { return Array.from(this._byId.values()); }
  get length() { return this._byId.size; }
  _key(id) {
    if (id === undefined || id === null) return undefined;
    if (typeof id === 'string') return id;
    if (id._serialized !== undefined) return id._serialized;
    return String(id);
  }
  get(id) { return this._byId.get(this._key(id)); }
  getModelsArray() { return this.models; }
  // Backbone's `at: 0` puts the new models first (earlier messages loaded).
  add(models, options) {
    const list = Array.isArray(models) ? models : [models];
    const added = [];
    const fresh = [];
    for (const m of list) {
      const key = this._keyOf(m);
      if (this._byId.has(key)) { added.push(this._byId.get(key)); continue; }
      this._byId.set(key, m);
      if (m._collections) m._collections.add(this);
      added.push(m);
      fresh.push([key, m]);
    }
    if (options && options.at === 0 && fresh.length) {
      const fronted = new Set(fresh.map(([key]) => key));
      this._byId = new Map([...fresh, ...Array.from(this._byId).filter(([key]) => !fronted.has(key))]);
    }
    for (const [, m] of fresh) Events.prototype.trigger.call(this, 'add', m, this);
    return added;
  }
  remove(id) {
    const m = this.get(id);
    if (!m) return undefined;
    this._byId.delete(this._keyOf(m));
    if (m._collections) m._collections.delete(this);
    Events.prototype.trigger.call(this, 'remove', m, this);
    return m;
  }
  serialize() { return this.models.map(m => m.serialize()); }
  toJSON() { return this.serialize(); }
}

// ------------------------------------------------------ ids and keys
// `user@server`: c.us (phone numbers), lid (hidden ids), g.us (groups),
// broadcast, newsletter.  JSON and the legacy jid as the real WAWebWid.
class Wid {
  constructor(serialized) {
    const at = serialized.indexOf('@');
    if (at <= 0 || at === serialized.length - 1) throw new Error('invalid wid: ' + serialized);
    this.user = serialized.slice(0, at);
    this.server = serialized.slice(at + 1);
    this._serialized = serialized;
  }
  toString() { return this._serialized; }
  toJSON() { return this._serialized; }
  toJid() { return this.server === 'c.us' ? this.user + '@s.whatsapp.net' : this._serialized; }
  isUser() { return this.server === 'c.us' || this.server === 'lid'; }
  isLid() { return this.server === 'lid'; }
  isGroup() { return this.server === 'g.us'; }
  isBroadcast() { return this.server === 'broadcast'; }
  isStatus() { return this._serialized === 'status@broadcast'; }
  isNewsletter() { return this.server === 'newsletter'; }
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
    // In a group the participant who wrote it follows, as on the real page.
    this._serialized = `${this.fromMe}_${this.remote._serialized}_${id}`
      + (participant ? `_${participant._serialized}` : '');
  }
  toString() { return this._serialized; }
  toJSON() { return this._serialized; }
  serialize() {
    const out = { fromMe: this.fromMe, remote: this.remote._serialized, id: this.id, _serialized: this._serialized };
    if (this.participant) out.participant = this.participant._serialized;
    return out;
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

// Links in a text, as WALinkify finds them: http(s) URLs and www. names.
const LINK_RE = /\b(?:https?:\/\/|www\.)[^\s<>"']+[^\s<>"'.,;:!?)\]]/gi;
function findLinks(text) {
  if (typeof text !== 'string') return [];
  return Array.from(text.matchAll(LINK_RE), (m) => {
    const url = m[0];
    return { url, href: /^https?:/i.test(url) ? url : 'http://' + url, index: m.index, suspiciousCharacters: new Set() };
  });
}
function findLink(text) { return findLinks(text)[0] || null; }
