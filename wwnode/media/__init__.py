"""Media: of sends (checked, fetched, written for the session) and of inbound messages.

- ``request``: the ``media`` field of a send, checked for shape; ``MediaRefused`` and its reasons.
- ``prepare``: a send's media made a checked file in the session's folder, on a worker thread.
- ``checks``: a file checked against what WhatsApp takes for its kind (sniffed type, size, name).
- ``fetch``: a URL fetched, guarded against request forgery (public addresses, deadline, size cap).
- ``blobs``: which blobs are a key's media, and which of them a send may name.
- ``desk``: the media desk: sends with media prepared on workers, a key's sends kept in order.
- ``inbound``: media of inbound messages, inline or written to the blob store, in order.

Import from the modules themselves: this file imports nothing.
"""
