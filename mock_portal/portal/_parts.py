"""The collaborators every part of :class:`~mock_portal.portal.Portal` works with, declared once for the
operation mixins (:mod:`~mock_portal.portal.lifecycle`, :mod:`~mock_portal.portal.openlines`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mock_portal.portal.ids import RandomIds
    from mock_portal.portal.offline import OfflineEvents
    from mock_portal.portal.outbox import Outbox
    from mock_portal.portal.state import PortalState
    from mock_portal.portal.tokens import Tokens
    from mock_portal.portal.triggers import Triggers


class PortalParts:
    """Set by ``Portal.__init__``: the lock, the state, and the collaborators that change and send it."""

    domain: str
    _lock: threading.RLock
    _ids: RandomIds
    _state: PortalState
    _tokens: Tokens
    _triggers: Triggers
    _outbox: Outbox
    offline: OfflineEvents
