// Incoming calls, reported to the session as whatsapp-web.js 1.34.7 finds
// them on the page (its `call` event): WAWebCallCollection holds its calls
// in a Map of its own and triggers no event of its own when one comes
// (archived bundle: `add` only sets the Map), so the first own Map of the
// collection has its `set` wrapped.  Only calls new to the Map and made to
// the account (not `outgoing`) are reported, once each; a page without the
// collection sends and receives all the same, and the session logs why.
// Loaded beside receipts.js inside one function (see
// pagescripts.hook_source); hook.js calls it once it has attached.

// What the session reports of a call model, as whatsapp-web.js reads it
// (id, peerJid, isVideo, isGroup, offerTime in seconds), `ts` in ms.
function toClientCall(call, otherIdOf) {
  const from = widString(call.peerJid) ?? null;
  const out = {
    id: String(call.id), from, is_video: !!call.isVideo, is_group: !!call.isGroup,
    ts: typeof call.offerTime === 'number' && call.offerTime > 0 ? call.offerTime * 1000 : Date.now(),
  };
  let other = null;
  try { other = typeof from === 'string' ? otherIdOf(from) : null; } catch (e) { /* the call all the same */ }
  if (other) out[from.endsWith('@lid') ? 'from_pn' : 'from_lid'] = other;
  return out;
}

function listenForCalls(req, emit, otherIdOf) {
  let calls = null;
  try { calls = req('WAWebCallCollection'); } catch (e) { /* not on this page */ }
  const key = calls && typeof calls.on === 'function'
    ? Object.keys(calls).find((k) => calls[k] instanceof Map) : undefined;
  if (key === undefined) {
    emit({ type: 'error', reason: 'calls_unavailable',
           detail: 'WAWebCallCollection is missing or holds no Map of calls' });
    return;
  }
  const map = calls[key];
  const set = map.set;
  map.set = function (id, call) {
    const isNew = !this.has(id);
    const result = set.call(this, id, call);
    try {
      if (isNew && call && !call.outgoing) emit({ type: 'call', call: toClientCall(call, otherIdOf) });
    } catch (e) {
      emit({ type: 'error', reason: 'call_unreadable', detail: String(e) });
    }
    return result;
  };
}
