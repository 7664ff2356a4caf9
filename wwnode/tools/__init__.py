"""The client and operator programs: the ``wwnode`` command line and what only it uses.

- ``cli``: the ``wwnode`` command: its arguments, and which program each command runs.
- ``client``: a client of the public contract only (command queues, events, Redis keys).
- ``clientcmds``: ``create``, ``send``, ``destroy``, ``qr``, ``events`` and ``command``.
- ``capacity``: ``wwnode capacity``, what an autoscaler needs to decide to add a machine.
- ``status``: ``wwnode status``, the fleet as Redis sees it and the creates waiting.
- ``dashboard``: ``wwnode dashboard``, the fleet in a web page (``dashboard.html``), live.
- ``demo``: ``wwnode demo``, the stand-in and a real node, offline and without a phone.
- ``doctor``: ``wwnode doctor``, whether the page has every module the sessions use.
- ``eventlines``: events as one readable line each.
- ``qrterm``: a QR code drawn in the terminal or written as a PNG.

The node never imports this package; these modules import the node's
(``config``, ``keys``, ``commands``), and ``cli`` starts the node itself.
"""
