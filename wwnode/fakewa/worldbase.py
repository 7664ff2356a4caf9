"""What the parts of :class:`~wwnode.fakewa.world.World` share, declared
for the type checker.

World is put together from mixins (``LidWorld``, ``MessagingWorld``,
``ChatsWorld``, ``GroupWorld``, ...), each one part of the stand-in, and
each uses the state that World's ``__init__`` sets (the lock, the devices,
the phones, the LIDs) and a few methods that another part defines.  They
all derive from :class:`WorldBase`, which names those attributes with their
types and those methods with their signatures, so each part is checked on
its own as it will run in World.

A base class rather than a Protocol for ``self``: one declaration that
every part inherits, instead of an annotation on each of their methods.
It holds annotations only, and the methods only while type checking: at
run time it is an empty class at the end of World's MRO, so nothing it
says can shadow what World or a part defines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

    from .chats import History
    from .links import Device, Link, LinkedDevice
    from .lids import Lids
    from .media import MediaStore
    from .outbox import Outbox
    from .settings import Settings


class WorldBase:
    # Set by World.__init__ (world.py).
    settings: Settings
    _lock: threading.Lock
    _devices: dict[str, Device]
    _phones: dict[str, dict]  # phone -> {"pushname", "platform"}
    _outbox: Outbox
    lids: Lids
    media: MediaStore
    # Set by ChatsWorld._init_chats (chats.py).
    history: History
    _contacts_told: dict[tuple[str, str], dict]

    if TYPE_CHECKING:
        # world.py
        def _linked_devices(self, phone: str) -> list[Device]: ...

        def _deliver(self, to: str, sender: str, body: str, group: str | None, by_lid: bool,
                     media: dict | None = None, msg_id: str | None = None, content: dict | None = None) -> str: ...

        def _push_message(self, phone: str, msg: dict) -> None: ...

        def _pair(self, link: Link, restored: bool, now: float) -> None: ...

        def _phone_info(self, phone: str) -> dict: ...

        def _send_due_receipts(self, now: float) -> None: ...

        # messaging.py
        def _linked_device(self, device_id: str) -> LinkedDevice: ...

        def _registered(self, phone: str) -> bool: ...

        # contents.py
        def _contact_info(self, account: str, wid: str) -> dict: ...

        # groups.py
        def _metadata(self, group: dict, account: str) -> dict: ...

        def _groups_of(self, account: str) -> list[dict]: ...
