// Media on the stand-in's page: the modules whatsapp-web.js 1.34.7 (and our
// session) use to send a file (processMediaData, processStickerData) and to
// fetch a received one (Message.downloadMedia), with the shapes they read.
// The media server is the stand-in's own (/_wa/upload, /_wa/media); it
// keeps files unencrypted, so what a test uploads is what it can read back.
//
// Only functions here: page.js calls defineMediaModules() where it defines
// its other modules (so `--drop-module` applies to these too).

// A blob wrapped as the page's own OpaqueData (instanceof is checked).
class OpaqueData {
  constructor(blob) {
    this._blob = blob;
    this._url = null;
  }
  static createFromData(data, type) {
    const blob = data instanceof Blob && (!type || data.type === type) ? data : new Blob([data], { type });
    return Promise.resolve(new OpaqueData(blob));
  }
  url() {
    if (!this._url) this._url = URL.createObjectURL(this._blob);
    return this._url;
  }
  autorelease() {
    const url = this._url;
    if (url) setTimeout(() => URL.revokeObjectURL(url), 60000);
  }
  formData() { return this._blob; }
  get type() { return this._blob.type; }
  get size() { return this._blob.size; }
}

async function fileHash(blob) {
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return encodeB64(new Uint8Array(digest));
}

// The message type the page gives a file, as the real prepRawMedia.
function mediaTypeOf(mimetype, { asSticker, isPtt, asDocument }) {
  if (asDocument) return 'document';
  if (asSticker) return 'sticker';
  const family = String(mimetype || '').split('/')[0];
  if (family === 'image') return 'image';
  if (family === 'video') return 'video';
  if (family === 'audio') return isPtt ? 'ptt' : 'audio';
  return 'document';
}

function prepRawMedia(opaque, params) {
  const prep = (async () => {
    const blob = opaque.formData();
    const type = mediaTypeOf(blob.type, params || {});
    return new Model({
      type, mimetype: blob.type, filehash: await fileHash(blob), size: blob.size, mediaBlob: opaque,
      filename: type === 'document' ? blob.name : undefined, isGif: !!(params && params.asGif),
      preview: undefined, mediaStage: 'PREPARING',
    });
  })();
  return { waitForPrep: () => prep };
}

const mediaObjects = new Map();
function getOrCreateMediaObject(filehash) {
  let obj = mediaObjects.get(filehash);
  if (!obj) {
    obj = {
      filehash, type: undefined, size: undefined, contentInfo: {}, mediaBlob: undefined,
      consolidate(json) { for (const [k, v] of Object.entries(json || {})) if (v !== undefined) this[k] = v; },
    };
    mediaObjects.set(filehash, obj);
  }
  return obj;
}

const inMemoryBlobs = new Map();

function uploadBlob(blob, type) {
  const params = new URLSearchParams({ device: identity.device, type, mimetype: blob.type || 'application/octet-stream' });
  return fetch('/_wa/upload?' + params.toString(), { method: 'POST', body: blob }).then(async (r) => {
    if (!r.ok) throw new Error('upload: HTTP ' + r.status + ' ' + (await r.text()));
    return r.json();
  });
}

async function uploadMedia({ mimetype, mediaObject, mediaType }) {
  const blob = mediaObject.mediaBlob instanceof OpaqueData ? mediaObject.mediaBlob.formData() : mediaObject.mediaBlob;
  if (!(blob instanceof Blob)) throw new Error('media-fault: nothing to upload');
  const e = await uploadBlob(blob.type ? blob : new Blob([blob], { type: mimetype }), mediaType);
  return {
    mediaEntry: {
      mmsUrl: e.url, deprecatedMms3Url: e.url, directPath: e.directPath, mediaKey: e.mediaKey,
      mediaKeyTimestamp: e.mediaKeyTimestamp, encFilehash: e.encFilehash, uploadHash: e.encFilehash,
      sidecar: undefined, firstFrameSidecar: undefined, handle: null,
    },
  };
}

async function encryptAndUpload({ blob, type, mediaKey }) {
  const e = await uploadBlob(blob, type);
  return { url: e.url, directPath: e.directPath, encFilehash: e.encFilehash, mediaKey: mediaKey || e.mediaKey,
           mediaKeyTimestamp: e.mediaKeyTimestamp };
}

function downloadAndMaybeDecrypt({ directPath }) {
  return fetch('/_wa/media?path=' + encodeURIComponent(directPath)).then((r) => {
    if (!r.ok) { const err = new Error('download: HTTP ' + r.status); err.status = r.status; throw err; }
    return r.arrayBuffer();
  });
}

const qplMock = () => ({ addAnnotations() { return this; }, addPoint() { return this; }, end() {} });

function defineMediaModules() {
define('WAWebMediaOpaqueData', OpaqueData);
define('WAWebPrepRawMedia', { prepRawMedia });
define('WAWebMediaStorage', { getOrCreateMediaObject });
define('WAWebMmsMediaTypes', {
  msgToMediaType: ({ type, isGif }) => (type === 'video' && isGif ? 'gif' : type),
  castToV4: (t) => t,
});
define('WAWebMediaDataUtils', { shouldUseMediaCache: (t) => t === 'image' || t === 'sticker' });
define('WAWebMediaInMemoryBlobCache', {
  InMemoryMediaBlobCache: { put: (hash, blob) => { inMemoryBlobs.set(hash, blob); }, get: (hash) => inMemoryBlobs.get(hash) },
});
define('WAWebMediaMmsV4Upload', {
  uploadMedia,
  uploadUnencryptedMedia: () => Promise.reject(new Error('the stand-in has no channels')),
});
define('WAWebUploadManager', { encryptAndUpload });
define('WAWebStartMediaUploadQpl', { startMediaUploadQpl: qplMock });
define('WAWebDownloadManager', { downloadManager: { downloadAndMaybeDecrypt } });
}

// What the server is told of a sent message's file.
function outboundMedia(msg) {
  if (!msg.directPath) return undefined;
  return {
    // whatsapp-web.js's sticker fields carry no mimetype: stickers are WebP.
    type: msg.type, mimetype: msg.mimetype || (msg.type === 'sticker' ? 'image/webp' : undefined),
    filename: msg.filename, size: msg.size,
    directPath: msg.directPath, filehash: msg.filehash, caption: msg.caption, isPtt: msg.type === 'ptt',
  };
}

// The fields of a received message with a file (`data.media` from the
// server), as the real page's model has them; `model` gets the methods.
function inboundMediaFields(media, caption) {
  return {
    type: media.type, mimetype: media.mimetype, filename: media.filename || undefined, size: media.size,
    directPath: media.directPath, mediaKey: media.mediaKey, mediaKeyTimestamp: media.mediaKeyTimestamp,
    filehash: media.filehash, encFilehash: media.encFilehash, caption: caption || undefined, body: '',
    isViewOnce: false, mediaData: new Model({ mediaStage: 'RESOLVED', type: media.type }),
  };
}
function attachMediaMethods(msg) {
  Object.defineProperty(msg, 'mediaObject', { value: getOrCreateMediaObject(msg.filehash) });
  Object.defineProperty(msg, 'downloadMedia', {
    value: () => { msg.mediaData.mediaStage = 'RESOLVED'; return Promise.resolve(); },
  });
}
