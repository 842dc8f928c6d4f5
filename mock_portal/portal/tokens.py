"""OAuth tokens and incoming webhooks: issuing, authenticating, refreshing and revoking (facts §5)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mock_portal.portal.ids import RandomIds
from mock_portal.portal.model import NO_APP, App, Clock, PortalError, Token, normalize_scopes
from mock_portal.portal.state import PortalState


class Tokens:
    """The portal's OAuth server side, over the tokens kept in a :class:`PortalState`.

    ``lifetime`` is read at each issue, so a change to the portal's ``token_lifetime`` applies to the next
    token. The caller holds the portal's lock.
    """

    def __init__(self, state: PortalState, clock: Clock, ids: RandomIds, lifetime: Callable[[], int]) -> None:
        self._state = state
        self._clock = clock
        self._ids = ids
        self._lifetime = lifetime

    def issue(self, app: App, *, user_id: int | None = None, refresh: bool = True) -> Token:
        """A fresh token pair for ``app`` (what installation and token refresh hand out)."""
        token = Token(
            access_token=self._ids.hex(70),
            refresh_token=self._ids.hex(70) if refresh else None,
            client_id=app.client_id,
            user_id=app.user_id if user_id is None else user_id,
            scopes=app.scopes,
            issued_at=self._clock.now(),
            expires_in=self._lifetime(),
            id=next(self._state.token_ids),
        )
        self._state.tokens[token.access_token] = token
        if token.refresh_token:
            self._state.refresh_index[token.refresh_token] = token
        return token

    def authenticate(self, access_token: object) -> Token:
        """The live token for ``access_token``; ``NO_AUTH_FOUND``, ``invalid_token`` or ``expired_token``."""
        if not isinstance(access_token, str) or not access_token:
            raise PortalError("NO_AUTH_FOUND", "Wrong authorization data", 401)
        token = self._state.tokens.get(access_token)
        if token is None or token.revoked or not self._state.apps.get(token.client_id, NO_APP).active:
            raise PortalError("invalid_token", "The access token provided is invalid.", 401)
        if self._clock.now() >= token.expires:
            raise PortalError("expired_token", "The access token provided has expired.", 401)
        return token

    def owns_refresh_token(self, refresh_token: str) -> bool:
        """Whether this portal issued ``refresh_token`` and it still works."""
        return refresh_token in self._state.refresh_index

    def refresh(self, *, client_id: object, client_secret: object, refresh_token: object) -> Token:
        """Exchange a refresh token for a new pair; the old refresh token stops working."""
        app = self._state.apps.get(client_id) if isinstance(client_id, str) else None
        if app is None or not isinstance(client_secret, str) or client_secret != app.client_secret:
            raise PortalError("invalid_client", "Invalid client credentials", 401)
        old = self._state.refresh_index.get(refresh_token) if isinstance(refresh_token, str) else None
        if old is None or old.client_id != app.client_id or not app.active:
            raise PortalError("invalid_grant", "Invalid refresh token", 400)
        del self._state.refresh_index[str(refresh_token)]
        return self.issue(app, user_id=old.user_id)

    def revoke_app(self, client_id: str) -> None:
        """Revoke every token of an uninstalled app; its refresh tokens stop working."""
        for token in self._state.tokens.values():
            if token.client_id == client_id:
                token.revoked = True
        index = self._state.refresh_index
        for refresh_token in [r for r, t in index.items() if t.client_id == client_id]:
            del index[refresh_token]

    def add_webhook(self, *, user_id: int, scopes: str | Iterable[str] | None) -> str:
        """Create an incoming webhook and return its code."""
        code = self._ids.alnum(16).lower()
        self._state.webhooks[code] = (user_id, normalize_scopes(scopes))
        return code
