// The stand-in page's chat states ("typing...", "recording audio..."), in
// the shape whatsapp-web.js 1.34.7 uses them (Chat.sendStateTyping,
// sendStateRecording and clearState call WAWebChatStateBridge's
// sendChatStateComposing, sendChatStateRecording and sendChatStatePaused
// with the chat's Wid).  Each goes to the server, which keeps them in
// order for the control API (GET /_sim/chatstates): what the contact's
// phone would show.  The server joins this file with the others into one
// script; page.js calls defineChatStateModules() among its own modules.

function defineChatStateModules() {
  const send = (state) => (wid) => {
    if (!wid || typeof wid._serialized !== 'string') return Promise.reject(new Error('not a Wid: ' + wid));
    return post('/_wa/chatstate', { chat: wid._serialized, state }).then(() => undefined);
  };
  define('WAWebChatStateBridge', {
    sendChatStateComposing: send('typing'),
    sendChatStateRecording: send('recording'),
    sendChatStatePaused: send('paused'),
  });
}
