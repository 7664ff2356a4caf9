// What the stand-in page tells other phones of the account besides its
// messages: that it is online, and that it types or records in a chat, in
// the shapes whatsapp-web.js 1.34.7 uses (sendPresenceAvailable and
// sendPresenceUnavailable: WAWebPresenceChatAction's functions of those
// names; WWebJS.sendChatstate: WAWebChatStateBridge's
// sendChatStateComposing, sendChatStateRecording and sendChatStatePaused,
// each given the chat's Wid).  The server keeps each for the other phones
// to see (wwnode/fakewa/presence.py).  Where nothing tells how the real
// page behaves: whether its own Stream.markAvailable (sends mark it) tells
// other phones anything (here it does not).  The server joins this file with the
// others into one script; page.js calls definePresenceModules() among its
// own modules.

function sendChatState(state) {
  return (wid) => post('/_wa/chatstate', { chat: wid._serialized, state }).then(() => undefined);
}

function sendPresence(state) {
  return () => post('/_wa/presence', { state }).then(() => undefined);
}

function definePresenceModules() {
  define('WAWebPresenceChatAction', {
    sendPresenceAvailable: sendPresence('available'),
    sendPresenceUnavailable: sendPresence('unavailable'),
  });
  define('WAWebChatStateBridge', {
    sendChatStateComposing: sendChatState('composing'),
    sendChatStateRecording: sendChatState('recording'),
    sendChatStatePaused: sendChatState('paused'),
  });
}
