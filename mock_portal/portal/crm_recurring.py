"""Recurring deals (``crm.deal.recurring.*``): templates that new deals are made from.

``add`` makes a template from an existing deal: a copy of it marked ``IS_RECURRING = Y`` becomes the template
deal (the setting's ``DEAL_ID``; the deal it was made from is ``BASED_ID``), as the docs describe the two ids
(https://apidocs.bitrix24.com/api-reference/crm/deals/recurring-deals/crm-deal-recurring-get.html). ``expose``
makes a new deal from the template at once and answers ``{"DEAL_ID": <new deal>}``
(https://apidocs.bitrix24.com/api-reference/crm/deals/recurring-deals/crm-deal-recurring-expose.html); both
deals are real deals of the portal and fire ``ONCRMDEALADD``. ``IS_LIMIT`` other than ``N``/``D``/``T``
becomes ``N``; a deal that is itself a template cannot get another setting.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mock_portal.portal._parts import PortalParts
from mock_portal.portal.dates import day_at_midnight, parse_moment
from mock_portal.portal.model import AuthMode, Clock, PortalError

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt
    from mock_portal.portal.crm import CrmStore

__all__ = ["RECURRING_FIELDS", "RecurringDeals", "RecurringStore"]

RECURRING_FIELDS: Mapping[str, tuple[str, str, bool]] = {
    "ID": ("integer", "ID", True),
    "DEAL_ID": ("integer", "Deal ID", False),
    "BASED_ID": ("integer", "Based on deal ID", True),
    "ACTIVE": ("char", "Active", False),
    "NEXT_EXECUTION": ("date", "Next execution", True),
    "LAST_EXECUTION": ("date", "Last execution", True),
    "COUNTER_REPEAT": ("integer", "Deals created", True),
    "START_DATE": ("date", "Start date", False),
    "CATEGORY_ID": ("char", "Pipeline", False),
    "IS_LIMIT": ("char", "Limit", False),
    "LIMIT_REPEAT": ("integer", "Deal count limit", False),
    "LIMIT_DATE": ("date", "Date limit", False),
    "PARAMS": ("recurring_params", "Parameters", False),
}
"""The fields of a recurring setting: (type, title, read-only)."""
_PARAMS_DEFAULTS: Mapping[str, Any] = {
    "MODE": "single",
    "SINGLE_BEFORE_START_DATE_TYPE": None,
    "SINGLE_BEFORE_START_DATE_VALUE": 0,
    "MULTIPLE_TYPE": None,
    "MULTIPLE_INTERVAL": 0,
    "OFFSET_BEGINDATE_TYPE": None,
    "OFFSET_BEGINDATE_VALUE": 0,
    "OFFSET_CLOSEDATE_TYPE": None,
    "OFFSET_CLOSEDATE_VALUE": 0,
}
_COPIED = ("TITLE", "TYPE_ID", "CURRENCY_ID", "OPPORTUNITY", "COMMENTS", "COMPANY_ID", "SOURCE_ID", "OPENED")


def recurring_not_found() -> PortalError:
    return PortalError("", "Recurring deal is not found.", 400)


def _date(value: Any) -> str:
    """A date as the portal answers it (ISO 8601 at midnight UTC), from ``YYYY-MM-DD`` or ISO input."""
    text = str(value or "").strip()
    if not text:
        return ""
    moment = parse_moment(text)
    if moment is None:
        raise PortalError("", f"Wrong date format: {text[:40]!r}")
    return day_at_midnight(moment)


def _int_or_none(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text if text.isdigit() else None


class RecurringStore:
    """The recurring settings of a portal, by id."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.ids = itertools.count(1)

    def clear(self) -> None:
        self.rows.clear()
        self.ids = itertools.count(1)


class RecurringDeals(PortalParts):
    """``crm.deal.recurring.*`` on :class:`~mock_portal.portal.Portal`."""

    _crm: CrmStore
    _recurring: RecurringStore
    clock: Clock
    crm_add: Callable[..., tuple[int, list[Attempt]]]
    crm_delete: Callable[..., list[Attempt]]

    def _apply_recurring(self, row: dict[str, Any], fields: Mapping[str, Any]) -> None:
        upper = {str(k).upper(): v for k, v in fields.items()}
        if "ACTIVE" in upper:
            row["ACTIVE"] = "Y" if str(upper["ACTIVE"]).upper() in ("Y", "1", "TRUE") else "N"
        if "CATEGORY_ID" in upper:
            row["CATEGORY_ID"] = str(upper["CATEGORY_ID"])
        if "IS_LIMIT" in upper:
            limit = str(upper["IS_LIMIT"]).upper()
            row["IS_LIMIT"] = limit if limit in ("N", "D", "T") else "N"
        if "LIMIT_REPEAT" in upper:
            row["LIMIT_REPEAT"] = _int_or_none(upper["LIMIT_REPEAT"])
        if "LIMIT_DATE" in upper:
            row["LIMIT_DATE"] = _date(upper["LIMIT_DATE"])
        if "START_DATE" in upper:
            row["START_DATE"] = _date(upper["START_DATE"])
            row["NEXT_EXECUTION"] = row["START_DATE"] if row["ACTIVE"] == "Y" else ""
        if isinstance(upper.get("PARAMS"), Mapping):
            params = dict(_PARAMS_DEFAULTS)
            params.update({str(k).upper(): v for k, v in upper["PARAMS"].items()})
            row["PARAMS"] = params

    def recurring_add(self, fields: Mapping[str, Any], *, user_id: int = 1, auth: AuthMode = "user") -> int:
        """Make a template from deal ``DEAL_ID``; return the setting's id."""
        raw = {str(k).upper(): v for k, v in fields.items()}.get("DEAL_ID")
        source_id = int(str(raw).strip()) if str(raw or "").strip().isdigit() else 0
        with self._lock:
            source = self._crm.tables["deal"].items.get(source_id)
            if source is None:
                raise PortalError("", f"Deal with ID {source_id} is not found.", 400)
            if source.get("IS_RECURRING") == "Y":
                raise PortalError("", "Deal already has recurring settings.", 400)
            copied = {name: source[name] for name in _COPIED if name in source}
        # the template is a deal of its own (ONCRMDEALADD goes out once the lock is released)
        template_id, _ = self.crm_add("deal", copied, user_id=user_id, auth=auth)
        with self._lock:
            self._crm.tables["deal"].items[template_id]["IS_RECURRING"] = "Y"
            new_id = next(self._recurring.ids)
            row: dict[str, Any] = {
                "ID": str(new_id),
                "DEAL_ID": str(template_id),
                "BASED_ID": str(source_id),
                "ACTIVE": "Y",
                "CATEGORY_ID": str(source.get("CATEGORY_ID") or "0"),
                "IS_LIMIT": "N",
                "COUNTER_REPEAT": None,
                "LIMIT_REPEAT": None,
                "LIMIT_DATE": "",
                "START_DATE": "",
                "NEXT_EXECUTION": "",
                "LAST_EXECUTION": "",
                "PARAMS": dict(_PARAMS_DEFAULTS),
            }
            self._apply_recurring(row, fields)
            self._recurring.rows[new_id] = row
            return new_id

    def recurring_get(self, recurring_id: int) -> dict[str, Any]:
        with self._lock:
            row = self._recurring.rows.get(recurring_id)
            if row is None:
                raise recurring_not_found()
            return {**row, "PARAMS": dict(row["PARAMS"])}

    def recurring_rows(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**row, "PARAMS": dict(row["PARAMS"])} for row in self._recurring.rows.values()]

    def recurring_update(self, recurring_id: int, fields: Mapping[str, Any]) -> None:
        with self._lock:
            row = self._recurring.rows.get(recurring_id)
            if row is None:
                raise recurring_not_found()
            self._apply_recurring(row, {k: v for k, v in fields.items() if str(k).upper() != "DEAL_ID"})

    def recurring_delete(self, recurring_id: int, *, user_id: int = 1, auth: AuthMode = "user") -> None:
        """Drop the setting; its template deal goes with it."""
        with self._lock:
            row = self._recurring.rows.pop(recurring_id, None)
            if row is None:
                raise recurring_not_found()
            template = int(row["DEAL_ID"])
            exists = template in self._crm.tables["deal"].items
        if exists:
            self.crm_delete("deal", template, user_id=user_id, auth=auth)

    def recurring_expose(self, recurring_id: int, *, user_id: int = 1, auth: AuthMode = "user") -> int:
        """Make a deal from the template now; return its id."""
        with self._lock:
            row = self._recurring.rows.get(recurring_id)
            if row is None:
                raise recurring_not_found()
            template = self._crm.tables["deal"].items.get(int(row["DEAL_ID"]))
            if template is None:
                raise PortalError("", "Recurring deal template is not found.", 400)
            copied = {name: template[name] for name in _COPIED if name in template}
            copied["CATEGORY_ID"] = row["CATEGORY_ID"]
        new_id, _ = self.crm_add("deal", copied, user_id=user_id, auth=auth)
        with self._lock:
            row["COUNTER_REPEAT"] = str(int(row["COUNTER_REPEAT"] or 0) + 1)
            row["LAST_EXECUTION"] = datetime.fromtimestamp(self.clock.now(), tz=timezone.utc).isoformat(
                timespec="seconds"
            )
            return new_id
