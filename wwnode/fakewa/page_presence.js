// What the stand-in page tells other phones of the account besides its
// messages: that it types or records in a chat, in the shape whatsapp-web.js
// 1.34.7 uses (WWebJS.sendChatstate: WAWebChatStateBridge's
// sendChatStateComposing, sendChatStateRecording and sendChatStatePaused,
// each given the chat's Wid).  The server keeps each for the other side
// to see (wwnode/fakewa/presence.py).  The server joins this file with the
// others into one script; page.js calls definePresenceModules() among its
// own modules.

function sendChatState(state) {
  return (wid) => post('/_wa/chatstate', { chat: wid._serialized, state }).then(() => undefined);
}

function definePresenceModules() {
  define('WAWebChatStateBridge', {
    sendChatStateComposing: sendChatState('composing'),
    sendChatStateRecording: sendChatState('recording'),
    sendChatStatePaused: sendChatState('paused'),
  });
}
