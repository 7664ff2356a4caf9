"""One WhatsApp Web session: its own Chromium, its own profile, spoken to by
its parent over stdin/stdout (see ``sessionproc.protocol``)."""
