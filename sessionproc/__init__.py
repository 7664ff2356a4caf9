"""One WhatsApp Web session: its own Chromium, its own profile, spoken to by
its parent over stdin/stdout (see ``sessionproc.protocol``).

Its rooms, and the modules in each:

- the process and its pipes: ``__main__`` (arguments, its log, the
  parent-death signal), ``forkserver`` (warm starts: sessions forked from
  one process that has imported them), ``output`` and ``linereader``
  (events out, commands in, line by line), ``stopping`` (a stop asked from
  any thread or signal, and its deadline), ``settingsfile`` (the settings
  the node hands over);
- the contract with the node: ``protocol`` (its description, and the names
  both sides import from it), made of ``framing``, ``wireids``,
  ``wirecommands``, ``wireevents``, ``outcomes`` and ``sessionargs``;
- the threads (``session``'s docstring says who owns what): ``session``
  (the main thread), ``sessionstate`` (what they share), ``stdinreader``,
  ``sender``, ``inbound``, ``pagepump``; on the main thread,
  ``pagereports`` and ``tracker`` (what the page's reports mean);
- the browser: ``browser``, ``chromeflags``, ``useragent`` (Chromium
  through chromedriver), ``devtools`` (the page's DevTools websocket),
  ``proxyurl`` and ``proxyrelay`` (the session's proxy, and the local relay
  to it);
- the page: ``pageapi`` (what the session uses of it, checked at load),
  ``pagescripts`` and the ``*.js`` beside it (what runs there),
  ``mediasend`` and ``mediafiles`` (files between node, session and page);
- what the session does there, each with its rules: ``actions``,
  ``contents``, ``callactions``, ``chatactions``, ``presence``,
  ``grouprules`` and ``groups``, ``queries`` and ``readback``.
"""
