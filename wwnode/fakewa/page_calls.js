// The stand-in page's calls, in the shapes of the real page's as an
// archived bundle shows them, and as whatsapp-web.js 1.34.7 uses them.
//
// WAWebCallCollection is one event emitter holding the calls in a Map of
// its own (its first own property): `get(id)`, `add(props)` (makes the call
// model and puts it in the Map), `remove(call)`, `getModelsArray()`,
// `activeCall` and `setActiveCall(call)`; it triggers no `add` event, so a
// client learns of a new call by wrapping that Map's `set`, as
// whatsapp-web.js's `call` event does.  A call model has `id`, `peerJid`
// (a Wid), `offerTime` (seconds), `isVideo`, `isGroup`, `groupJid`,
// `outgoing`, `canHandleLocally`, `webClientShouldHandle`, and its state
// behind `getState()` / `setState()`; WAWebVoipCallStateUtils says which
// states are over.  A reject is a `call` stanza holding a `reject`, built
// with WAWap and cast with WADeprecatedSendIq (whatsapp-web.js's
// Call.reject); the server ends the call, and every open page of the
// account learns it.
//
// Where nothing tells how the real page behaves: the names of the states
// (the real CallState enum's values are not known here), whether a call
// leaves the collection when it ends (it stays here, in an ended state),
// the shape of a WAWap node (plain {tag, attrs, content} here), and what a
// page opened while a call rings shows (nothing here).  The server joins
// this file with the others into one script; page.js calls
// defineCallModules() among its own modules.

const CallState = { ReceivedCall: 'ReceivedCall', Rejected: 'Rejected', Missed: 'Missed' };
const ENDED_STATES = [CallState.Rejected, CallState.Missed];

class CallModel extends Events {
  constructor(props) {
    super();
    Object.defineProperty(this, '_state', { value: null, writable: true });
    Object.assign(this, {
      id: '', peerJid: null, offerTime: 0, isVideo: false, isGroup: false, groupJid: null, outgoing: false,
      canHandleLocally: false, webClientShouldHandle: false, offerReceivedWhileOffline: false,
    }, props);
  }
  getState() { return this._state; }
  setState(state) {
    this._state = state;
    this.trigger('change:state', this, state);
  }
}

class CallCollection extends Events {
  constructor() {
    super();
    this.calls = new Map();  // the first own Map: whatsapp-web.js finds it so
    this.pendingOffers = {};
    this.activeCall = null;
  }
  get(id) { return this.calls.get(id); }
  add(props) {
    const call = new CallModel(props);
    this.calls.set(props.id, call);
    return call;
  }
  remove(call) { this.calls.delete(call.id); }
  getModelsArray() { return Array.from(this.calls.values()); }
  reset() { this.calls.clear(); this.activeCall = null; }
  setActiveCall(call) {
    this.activeCall = call;
    this.trigger('change:activeCall', call);
  }
}

const Calls = new CallCollection();

let stanzaIds = 0;

function defineCallModules() {
  define('WAWebCallCollection', Calls);
  define('WAWebCallModel', CallModel);
  define('WAWebVoipWaCallEnums', { CallState });
  define('WAWebVoipCallStateUtils', {
    isCallTerminal: (state) => ENDED_STATES.includes(state),
    isCallActive: () => false,  // nobody answers on the stand-in
  });
  define('WAWap', {
    wap: (tag, attrs, content) => ({ tag, attrs: attrs || {}, content: content === undefined ? null : content }),
    generateId: () => String(Date.now()) + '.' + String(++stanzaIds),
  });
  // A cast is sent and forgotten: the real service answers none.
  define('WADeprecatedSendIq', {
    deprecatedCastStanza: (stanza) => post('/_wa/stanza', { stanza }).then(() => undefined),
  });
}

// Someone calls the account: the call rings on this page.
function receiveCallOffer(event) {
  learnLids(event.lids);  // what the account knows of the caller (page_lids.js)
  const offer = event.call;
  if (Calls.get(offer.id)) return;
  const call = Calls.add({
    id: offer.id, peerJid: createWid(offer.from), offerTime: offer.t, isVideo: !!offer.video,
    isGroup: !!offer.group, groupJid: offer.group ? createWid(offer.group) : null, outgoing: false,
  });
  call.setState(CallState.ReceivedCall);
  if (!Calls.activeCall) Calls.setActiveCall(call);
}

// The call stopped ringing: rejected (here or on another device of the
// account) or missed.
function receiveCallEnd(event) {
  const call = Calls.get(event.id);
  if (!call) return;
  call.setState(event.reason === 'rejected' ? CallState.Rejected : CallState.Missed);
  if (Calls.activeCall === call) Calls.setActiveCall(null);
}
