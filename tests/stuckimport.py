"""A session program whose import never ends, for the fork server's tests:
a server that never says it is ready."""

import threading

threading.Event().wait()
