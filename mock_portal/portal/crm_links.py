"""What hangs off a CRM item: its contact and company links, its product rows, and the item card's layout.

- **Links** (``crm.deal.contact.*``, ``crm.lead.contact.*``, ``crm.contact.company.*``,
  ``crm.company.contact.*``): the contacts of a deal or a lead, and the many-to-many link between contacts and
  companies (one link, seen from both sides: ``crm.contact.company.add`` shows in
  ``crm.company.contact.items.get``). Each row has ``SORT``, ``ROLE_ID`` and ``IS_PRIMARY``; an owner has at
  most one primary row, the first one added when none says so
  (https://apidocs.bitrix24.com/api-reference/crm/deals/contacts/crm-deal-contact-items-get.html). The
  primary link shows as the item's ``CONTACT_ID`` (deals, leads) or ``COMPANY_ID`` (contacts); ``CONTACT_IDS``
  / ``COMPANY_IDS`` in ``add``/``update`` set the links.
- **Product rows** of deals and leads (``crm.<entity>.productrows.set`` / ``.get``): ``set`` replaces them;
  each row's prices are worked out from ``PRICE`` and ``QUANTITY`` as the docs' example shows them
  (https://apidocs.bitrix24.com/api-reference/crm/deals/crm-deal-productrows-get.html).
- **The item card** (``crm.<entity>.details.configuration.*``): a common layout (scope ``C``) and each user's
  personal one (scope ``P``); a user without a personal layout sees the common one, ``reset`` drops a
  personal one, ``forceCommonScopeForAll`` drops them all
  (https://apidocs.bitrix24.com/api-reference/crm/deals/custom-form/crm-deal-details-configuration-get.html).

:class:`CrmLinkStore` holds it all; the portal's lock guards every use (the operations live in
:class:`mock_portal.portal.crm.Crm` and :class:`CrmLinks`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mock_portal.portal._parts import PortalParts
from mock_portal.portal.model import PortalError

if TYPE_CHECKING:
    from mock_portal.portal.crm import CrmStore, Entity

__all__ = ["LINKS", "LINK_FIELDS", "CrmLinkStore", "CrmLinks", "default_card"]

LINKS: Mapping[str, str] = {"deal": "contact", "lead": "contact", "contact": "company", "company": "contact"}
"""What each entity links to (``crm.<entity>.<target>.*``)."""
LINK_FIELDS: Mapping[str, tuple[str, str | None]] = {
    "deal": ("CONTACT_ID", "CONTACT_IDS"),
    "lead": ("CONTACT_ID", "CONTACT_IDS"),
    "contact": ("COMPANY_ID", "COMPANY_IDS"),
    "company": ("CONTACT_ID", None),
}
"""The item fields that are links, not values: (the primary link, the list of links)."""
_OWNER_TYPES = {"deal": "D", "lead": "L"}
_CARD_SECTIONS: Mapping[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "deal": (
        ("main", "About the deal", ("TITLE", "OPPORTUNITY_WITH_CURRENCY", "STAGE_ID", "CLOSEDATE", "CLIENT")),
        (
            "additional",
            "Additional",
            ("TYPE_ID", "SOURCE_ID", "BEGINDATE", "OPENED", "ASSIGNED_BY_ID", "COMMENTS"),
        ),
        ("products", "Products", ("PRODUCT_ROW_SUMMARY",)),
    ),
    "lead": (
        (
            "main",
            "About the lead",
            ("TITLE", "STATUS_ID", "NAME", "LAST_NAME", "PHONE", "EMAIL", "COMPANY_TITLE"),
        ),
        ("additional", "Additional", ("SOURCE_ID", "OPENED", "ASSIGNED_BY_ID", "COMMENTS")),
        ("products", "Products", ("PRODUCT_ROW_SUMMARY",)),
    ),
    "contact": (
        (
            "main",
            "About the contact",
            ("HONORIFIC", "LAST_NAME", "NAME", "SECOND_NAME", "PHOTO", "POST", "PHONE"),
        ),
        ("additional", "Additional", ("TYPE_ID", "SOURCE_ID", "OPENED", "ASSIGNED_BY_ID", "COMMENTS")),
    ),
    "company": (
        (
            "main",
            "About the company",
            ("TITLE", "LOGO", "COMPANY_TYPE", "INDUSTRY", "REVENUE", "PHONE", "EMAIL"),
        ),
        ("additional", "Additional", ("EMPLOYEES", "OPENED", "ASSIGNED_BY_ID", "COMMENTS")),
    ),
}


def default_card(entity: str) -> list[dict[str, Any]]:
    """The layout an item card has until someone changes it: sections of field elements."""
    return [
        {"name": name, "title": title, "type": "section", "elements": [{"name": e} for e in elements]}
        for name, title, elements in _CARD_SECTIONS[entity]
    ]


def _flag(value: Any) -> str:
    if isinstance(value, bool):
        return "Y" if value else "N"
    return "Y" if str(value).strip().upper() in ("Y", "1", "TRUE") else "N"


def _int(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise PortalError("", f"The parameter '{name}' is invalid or not defined.")


def _number(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return default


def _plain(value: float) -> float | int:
    return int(value) if value == int(value) else round(value, 2)


class CrmLinkStore:
    """Links, product rows and item cards of a portal's CRM."""

    def __init__(self) -> None:
        # (owner entity, owner id) -> rows {TARGET_ID, SORT, ROLE_ID, IS_PRIMARY}; contact<->company rows are
        # kept from both sides
        self.links: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.product_rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.row_ids = itertools.count(1)
        # (entity, scope, user id (0 for the common one), extras key) -> layout
        self.cards: dict[tuple[str, str, int, str], list[Any]] = {}

    # ----------------------------------------------------------------- links
    def rows(self, entity: str, item_id: int) -> list[dict[str, Any]]:
        """The item's links, by ``SORT`` (copies)."""
        rows = self.links.get((entity, item_id), [])
        return [
            dict(row) for row in sorted(rows, key=lambda r: (r["SORT"], r[f"{LINKS[entity].upper()}_ID"]))
        ]

    def _mirror(self, entity: str) -> str | None:
        return {"contact": "company", "company": "contact"}.get(entity)

    def add(self, entity: str, item_id: int, target_id: int, *, sort: int | None, primary: bool) -> None:
        """Link ``target_id`` to the item (again: its ``SORT`` and ``IS_PRIMARY`` change)."""
        self._add_one(entity, item_id, target_id, sort=sort, primary=primary)
        mirror = self._mirror(entity)
        if mirror is not None and not any(
            r[f"{entity.upper()}_ID"] == item_id for r in self.links.get((mirror, target_id), [])
        ):
            self._add_one(mirror, target_id, item_id, sort=sort, primary=False)

    def _add_one(self, entity: str, item_id: int, target_id: int, *, sort: int | None, primary: bool) -> None:
        key = f"{LINKS[entity].upper()}_ID"
        rows = self.links.setdefault((entity, item_id), [])
        row = next((r for r in rows if r[key] == target_id), None)
        if row is None:
            last = max((r["SORT"] for r in rows), default=0)
            row = {key: target_id, "SORT": last + 10, "ROLE_ID": 0, "IS_PRIMARY": "N"}
            rows.append(row)
        if sort is not None:
            row["SORT"] = sort
        if primary:
            for other in rows:
                other["IS_PRIMARY"] = "N"
            row["IS_PRIMARY"] = "Y"
        self._keep_one_primary(rows)

    def remove(self, entity: str, item_id: int, target_id: int) -> bool:
        """Unlink ``target_id``; whether it was linked."""
        found = self._remove_one(entity, item_id, target_id)
        mirror = self._mirror(entity)
        if mirror is not None:
            self._remove_one(mirror, target_id, item_id)
        return found

    def _remove_one(self, entity: str, item_id: int, target_id: int) -> bool:
        key = f"{LINKS[entity].upper()}_ID"
        rows = self.links.get((entity, item_id), [])
        kept = [r for r in rows if r[key] != target_id]
        if len(kept) == len(rows):
            return False
        self.links[(entity, item_id)] = kept
        self._keep_one_primary(kept)
        return True

    def clear_links(self, entity: str, item_id: int) -> None:
        """Unlink everything from the item."""
        key = f"{LINKS[entity].upper()}_ID"
        for row in self.links.pop((entity, item_id), []):
            mirror = self._mirror(entity)
            if mirror is not None:
                self._remove_one(mirror, row[key], item_id)

    @staticmethod
    def _keep_one_primary(rows: list[dict[str, Any]]) -> None:
        if rows and not any(r["IS_PRIMARY"] == "Y" for r in rows):
            min(rows, key=lambda r: r["SORT"])["IS_PRIMARY"] = "Y"

    def forget_item(self, entity: str, item_id: int) -> None:
        """Drop an item's links, product rows and the links others have to it."""
        self.clear_links(entity, item_id)
        self.product_rows.pop((entity, item_id), None)
        key = f"{entity.upper()}_ID"
        for (owner, owner_id), rows in list(self.links.items()):
            if any(r.get(key) == item_id for r in rows):
                self._remove_one(owner, owner_id, item_id)

    def accept_item_links(
        self, entity: str, item_id: int, fields: Mapping[str, Any], exists: Callable[[int], bool]
    ) -> None:
        """``CONTACT_IDS`` / ``COMPANY_IDS`` (all the links) or ``CONTACT_ID`` / ``COMPANY_ID`` (the primary
        one) given to ``add`` or ``update``; links to items that do not exist are not kept."""
        upper = {str(k).strip().upper(): v for k, v in fields.items()}
        single, many = LINK_FIELDS[entity]

        def ids(raw: Any) -> list[int]:
            values = list(raw.values()) if isinstance(raw, dict) else raw if isinstance(raw, list) else [raw]
            found = [int(str(v).strip()) for v in values if str(v).strip().isdigit()]
            return [i for i in found if i > 0 and exists(i)]

        if many is not None and many in upper:
            self.clear_links(entity, item_id)
            for target in ids(upper[many]):
                self.add(entity, item_id, target, sort=None, primary=False)
        if single in upper:
            for target in ids(upper[single]):
                self.add(entity, item_id, target, sort=None, primary=True)

    def decorate(self, entity: str, item_id: int, item: dict[str, Any]) -> dict[str, Any]:
        """The item with its primary link as ``CONTACT_ID`` / ``COMPANY_ID``."""
        single, _ = LINK_FIELDS[entity]
        if entity == "company":
            return item
        key = f"{LINKS[entity].upper()}_ID"
        primary = next((r for r in self.links.get((entity, item_id), []) if r["IS_PRIMARY"] == "Y"), None)
        item[single] = str(primary[key]) if primary is not None else None
        return item

    # ----------------------------------------------------------------- product rows
    def set_product_rows(self, entity: str, item_id: int, rows: list[Any]) -> float:
        """Replace the item's product rows; return their total."""
        built: list[dict[str, Any]] = []
        for index, raw in enumerate(rows):
            if not isinstance(raw, Mapping):
                raise PortalError("", "The parameter 'rows' must be an array of product rows.")
            row = {str(k).upper(): v for k, v in raw.items()}
            price = _number(row.get("PRICE"))
            quantity = _number(row.get("QUANTITY"), 1.0)
            discount = _number(row.get("DISCOUNT_SUM"))
            name = str(row.get("PRODUCT_NAME") or "")
            built.append(
                {
                    "ID": str(next(self.row_ids)),
                    "OWNER_ID": str(item_id),
                    "OWNER_TYPE": _OWNER_TYPES[entity],
                    "PRODUCT_ID": _int(row.get("PRODUCT_ID", 0) or 0, "PRODUCT_ID"),
                    "PRODUCT_NAME": name,
                    "ORIGINAL_PRODUCT_NAME": name,
                    "PRODUCT_DESCRIPTION": row.get("PRODUCT_DESCRIPTION"),
                    "PRICE": _plain(price),
                    "PRICE_EXCLUSIVE": _plain(price),
                    "PRICE_NETTO": _plain(price + discount),
                    "PRICE_BRUTTO": _plain(price + discount),
                    "PRICE_ACCOUNT": f"{price:.2f}",
                    "QUANTITY": _plain(quantity),
                    "DISCOUNT_TYPE_ID": int(_number(row.get("DISCOUNT_TYPE_ID"), 2)),
                    "DISCOUNT_RATE": _plain(_number(row.get("DISCOUNT_RATE"))),
                    "DISCOUNT_SUM": _plain(discount),
                    "TAX_RATE": row.get("TAX_RATE"),
                    "TAX_INCLUDED": _flag(row.get("TAX_INCLUDED", "N")),
                    "CUSTOMIZED": "Y",
                    "MEASURE_CODE": int(_number(row.get("MEASURE_CODE"), 796)),
                    "MEASURE_NAME": str(row.get("MEASURE_NAME") or "pcs"),
                    "SORT": int(_number(row.get("SORT"), (index + 1) * 10)),
                    "XML_ID": row.get("XML_ID"),
                    "TYPE": 1,
                    "STORE_ID": 0,
                }
            )
        self.product_rows[(entity, item_id)] = built
        return sum(float(r["PRICE"]) * float(r["QUANTITY"]) for r in built)

    def get_product_rows(self, entity: str, item_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.product_rows.get((entity, item_id), [])]


class CrmLinks(PortalParts):
    """The link, product-row and card operations of :class:`~mock_portal.portal.Portal`."""

    _crm: CrmStore
    _entity: Callable[[str], Entity]

    def _require(self, entity: str, item_id: int) -> None:
        if item_id not in self._crm.tables[entity].items:
            raise PortalError("", "Not found.", 400)

    # ----------------------------------------------------------------- links
    def crm_link_add(
        self,
        entity_name: str,
        item_id: int,
        target_id: int,
        *,
        sort: int | None = None,
        primary: bool = False,
    ) -> None:
        """``crm.<entity>.<target>.add``: link an existing contact (or company) to an existing item."""
        entity = self._entity(entity_name)
        with self._lock:
            self._require(entity.name, item_id)
            self._require(LINKS[entity.name], target_id)
            self._crm.links.add(entity.name, item_id, target_id, sort=sort, primary=primary)

    def crm_link_remove(self, entity_name: str, item_id: int, target_id: int) -> None:
        """``crm.<entity>.<target>.delete``: unlink one contact (or company)."""
        entity = self._entity(entity_name)
        with self._lock:
            self._require(entity.name, item_id)
            if not self._crm.links.remove(entity.name, item_id, target_id):
                raise PortalError("", "Not found.", 400)

    def crm_links(self, entity_name: str, item_id: int) -> list[dict[str, Any]]:
        """``crm.<entity>.<target>.items.get``."""
        entity = self._entity(entity_name)
        with self._lock:
            self._require(entity.name, item_id)
            return self._crm.links.rows(entity.name, item_id)

    def crm_links_set(self, entity_name: str, item_id: int, items: list[Mapping[str, Any]]) -> None:
        """``crm.<entity>.<target>.items.set``: the item's links become exactly ``items``."""
        entity = self._entity(entity_name)
        key = f"{LINKS[entity.name].upper()}_ID"
        with self._lock:
            self._require(entity.name, item_id)
            wanted = []
            for raw in items:
                upper = {str(k).upper(): v for k, v in raw.items()}
                target = _int(upper.get(key), key)
                self._require(LINKS[entity.name], target)
                sort = upper.get("SORT")
                wanted.append(
                    (target, None if sort is None else int(_number(sort)), _flag(upper.get("IS_PRIMARY")))
                )
            self._crm.links.clear_links(entity.name, item_id)
            for target, sort, primary in wanted:
                self._crm.links.add(entity.name, item_id, target, sort=sort, primary=primary == "Y")

    def crm_links_clear(self, entity_name: str, item_id: int) -> None:
        """``crm.<entity>.<target>.items.delete``."""
        entity = self._entity(entity_name)
        with self._lock:
            self._require(entity.name, item_id)
            self._crm.links.clear_links(entity.name, item_id)

    # ----------------------------------------------------------------- product rows
    def crm_product_rows_set(self, entity_name: str, item_id: int, rows: list[Any]) -> None:
        """``crm.<entity>.productrows.set``: replace the rows; the item's ``OPPORTUNITY`` becomes their
        total unless it is set by hand (``IS_MANUAL_OPPORTUNITY``)."""
        entity = self._entity(entity_name)
        with self._lock:
            self._require(entity.name, item_id)
            total = self._crm.links.set_product_rows(entity.name, item_id, rows)
            item = self._crm.tables[entity.name].items[item_id]
            if item.get("IS_MANUAL_OPPORTUNITY") != "Y":
                item["OPPORTUNITY"] = f"{total:.2f}"

    def crm_product_rows(self, entity_name: str, item_id: int) -> list[dict[str, Any]]:
        """``crm.<entity>.productrows.get``."""
        entity = self._entity(entity_name)
        with self._lock:
            self._require(entity.name, item_id)
            return self._crm.links.get_product_rows(entity.name, item_id)

    # ----------------------------------------------------------------- item cards
    def crm_card(self, entity_name: str, scope: str, user_id: int, extras: str = "") -> list[Any]:
        """The card layout a user sees: the personal one (scope ``P``), else the common one."""
        entity = self._entity(entity_name)
        cards = self._crm.links.cards
        with self._lock:
            found = cards.get((entity.name, "P", user_id, extras)) if scope == "P" else None
            if found is None:
                found = cards.get((entity.name, "C", 0, extras)) or default_card(entity.name)
            return list(_deep(found))

    def crm_card_set(
        self, entity_name: str, scope: str, user_id: int, data: list[Any], extras: str = ""
    ) -> None:
        entity = self._entity(entity_name)
        with self._lock:
            self._crm.links.cards[(entity.name, scope, user_id if scope == "P" else 0, extras)] = _deep(data)

    def crm_card_reset(self, entity_name: str, scope: str, user_id: int, extras: str = "") -> None:
        entity = self._entity(entity_name)
        with self._lock:
            self._crm.links.cards.pop((entity.name, scope, user_id if scope == "P" else 0, extras), None)

    def crm_card_force_common(self, entity_name: str, extras: str = "") -> None:
        """Every user sees the common layout: the personal ones go."""
        entity = self._entity(entity_name)
        cards = self._crm.links.cards
        with self._lock:
            for key in [k for k in cards if k[0] == entity.name and k[1] == "P" and k[3] == extras]:
                del cards[key]


def _deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value
