// Media on WhatsApp Web's page, done the way whatsapp-web.js 1.34.7 does it
// (src/util/Injected/Utils.js: mediaInfoToFile, processMediaData,
// processStickerData, arrayBufferToBase64Async; Message.downloadMedia).
//
// Functions only; pagescripts.py puts them in front of the scripts that
// send (SEND_MEDIA_JS) and fetch (DOWNLOAD_MEDIA_FN).  The bytes arrive as
// a base64 argument of those scripts (data), never in their source.

// The file as a File: whatsapp-web.js's mediaInfoToFile turns base64 into
// one; here the bytes came in decoded pieces (mediasend.py).
function mediaInfoToFile({ parts, mimetype, filename }) {
  const blob = new Blob(parts, { type: mimetype });
  return new File([blob], filename, { type: mimetype, lastModified: Date.now() });
}

async function sha256Base64(file) {
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  let s = '';
  for (const b of new Uint8Array(digest)) s += String.fromCharCode(b);
  return btoa(s);
}

function randomBase64(n) {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

// A sticker: uploaded whole, as whatsapp-web.js's processStickerData.
async function processStickerData(req, mediaInfo) {
  if (mediaInfo.mimetype !== 'image/webp') throw new Error('Invalid media type');
  const file = mediaInfoToFile(mediaInfo);
  const filehash = await sha256Base64(file);
  const mediaKey = randomBase64(32);
  const uploadedInfo = await req('WAWebUploadManager').encryptAndUpload({
    blob: file, type: 'sticker', signal: new AbortController().signal, mediaKey,
    uploadQpl: req('WAWebStartMediaUploadQpl').startMediaUploadQpl({ entryPoint: 'MediaUpload' }),
  });
  return {
    ...uploadedInfo, clientUrl: uploadedInfo.url, deprecatedMms3Url: uploadedInfo.url,
    uploadhash: uploadedInfo.encFilehash, size: file.size, type: 'sticker', filehash,
  };
}

// Any other media: prepared and uploaded by the page's own modules, as
// whatsapp-web.js's processMediaData (without its channel and status paths).
async function processMediaData(req, mediaInfo, { forceVoice, forceDocument }) {
  const file = mediaInfoToFile(mediaInfo);
  const OpaqueData = req('WAWebMediaOpaqueData');
  const opaqueData = await OpaqueData.createFromData(file, mediaInfo.mimetype);
  const mediaPrep = req('WAWebPrepRawMedia').prepRawMedia(opaqueData, {
    asSticker: false, asGif: false, isPtt: forceVoice, asDocument: forceDocument,
  });
  const mediaData = await mediaPrep.waitForPrep();
  const mediaObject = req('WAWebMediaStorage').getOrCreateMediaObject(mediaData.filehash);
  const MediaTypes = req('WAWebMmsMediaTypes');
  const mediaType = MediaTypes.msgToMediaType({ type: mediaData.type, isGif: mediaData.isGif, isNewsletter: false });
  if (!mediaData.filehash) throw new Error('media-fault: sendToChat filehash undefined');
  if (forceVoice && mediaData.type === 'ptt') {
    mediaData.waveform = mediaObject.contentInfo && mediaObject.contentInfo.waveform;
  }
  if (!(mediaData.mediaBlob instanceof OpaqueData)) {
    mediaData.mediaBlob = await OpaqueData.createFromData(mediaData.mediaBlob, mediaData.mediaBlob.type);
  }
  mediaData.renderableUrl = mediaData.mediaBlob.url();
  mediaObject.consolidate(mediaData.toJSON());
  mediaData.mediaBlob.autorelease();
  if (req('WAWebMediaDataUtils').shouldUseMediaCache(MediaTypes.castToV4(mediaObject.type))
      && mediaData.mediaBlob instanceof OpaqueData) {
    req('WAWebMediaInMemoryBlobCache').InMemoryMediaBlobCache.put(mediaObject.filehash, mediaData.mediaBlob.formData());
  }
  const uploaded = await req('WAWebMediaMmsV4Upload').uploadMedia({ mimetype: mediaData.mimetype, mediaObject, mediaType });
  const mediaEntry = uploaded && uploaded.mediaEntry;
  if (!mediaEntry) throw new Error('upload failed: media entry was not created');
  mediaData.set({
    clientUrl: mediaEntry.mmsUrl, deprecatedMms3Url: mediaEntry.deprecatedMms3Url,
    directPath: mediaEntry.directPath, mediaKey: mediaEntry.mediaKey,
    mediaKeyTimestamp: mediaEntry.mediaKeyTimestamp, filehash: mediaObject.filehash,
    encFilehash: mediaEntry.encFilehash, uploadhash: mediaEntry.uploadHash, size: mediaObject.size,
    streamingSidecar: mediaEntry.sidecar, firstFrameSidecar: mediaEntry.firstFrameSidecar, mediaHandle: null,
  });
  return mediaData;
}

// The message fields of a media send (whatsapp-web.js's sendMessage:
// `...mediaOptions, ...mediaOptions.toJSON()`, the caption, and the
// preview as the body; a sticker has no body).
async function mediaMessageFields(req, media, file, caption) {
  const info = { parts: file.parts, mimetype: media.mimetype, filename: media.filename || 'file' };
  const mediaOptions = media.as === 'sticker'
    ? await processStickerData(req, info)
    : await processMediaData(req, info, { forceVoice: media.as === 'voice', forceDocument: media.as === 'document' });
  mediaOptions.caption = caption;
  const body = media.as === 'sticker' ? undefined : mediaOptions.preview;
  return {
    body, caption, isCaptionByUser: !!caption,
    ...mediaOptions, ...(mediaOptions.toJSON ? mediaOptions.toJSON() : {}),
  };
}

// The file of an inbound message, as whatsapp-web.js's Message.downloadMedia
// fetches it: {bytes (a Uint8Array), mimetype, filename, size}, or {error}.
// (whatsapp-web.js turns the bytes into base64 here; mediasend.py reads
// them out in pieces instead.)
async function downloadMedia(req, msgId) {
  const Msg = req('WAWebCollections').Msg;
  const msg = Msg.get(msgId);
  if (!msg || !msg.mediaData || msg.mediaData.mediaStage === 'REUPLOADING') return { error: 'media not available' };
  if (msg.mediaData.mediaStage !== 'RESOLVED') {
    await msg.downloadMedia({ downloadEvenIfExpensive: true, rmrReason: 1 });
  }
  const stage = String(msg.mediaData.mediaStage);
  if (stage.includes('ERROR') || stage === 'FETCHING') return { error: 'media could not be downloaded: ' + stage };
  const mockQpl = { addAnnotations() { return this; }, addPoint() { return this; } };
  const decrypted = await req('WAWebDownloadManager').downloadManager.downloadAndMaybeDecrypt({
    directPath: msg.directPath, encFilehash: msg.encFilehash, filehash: msg.filehash, mediaKey: msg.mediaKey,
    mediaKeyTimestamp: msg.mediaKeyTimestamp, type: msg.type, signal: new AbortController().signal,
    downloadQpl: mockQpl,
  });
  return { bytes: new Uint8Array(decrypted), mimetype: msg.mimetype, filename: msg.filename, size: msg.size };
}
