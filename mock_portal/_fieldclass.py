"""What a value of a documented field looks like, from its name and documented type (:func:`field_class`).

Kept apart from :mod:`mock_portal.fakes` (which re-exports both names) so the builders of derived events
classify their fields without importing Faker: the default locale's values come from the shipped pools.
"""

from __future__ import annotations

__all__ = ["FIELD_CLASSES", "field_class"]

FIELD_CLASSES: tuple[str, ...] = (
    "id", "integer", "double", "money", "boolean", "yes-no", "timestamp", "datetime", "date", "email",
    "phone", "person-name", "first-name", "last-name", "company", "title", "text", "word", "url", "currency",
    "language", "color", "code", "call-id", "crm-entity-type", "entity-type-id", "stage", "uuid", "ip",
    "list", "gender", "job", "string",
)  # fmt: skip
"""What a value of a documented field looks like; :func:`field_class` picks one from the name and type."""

_NAME_CLASSES: tuple[tuple[tuple[str, ...], str], ...] = (
    # (name patterns, class): "=X" is the whole name, "X*" a prefix, "*X" a suffix, "*X*" anywhere
    (("*EMAIL*",), "email"),
    (("*PHONE*",), "phone"),
    (("=CALL_ID",), "call-id"),
    (("=CRM_ENTITY_TYPE", "=ENTITY_TYPE", "=OWNER_TYPE"), "crm-entity-type"),
    (("=ENTITY_TYPE_ID", "=OWNER_TYPE_ID"), "entity-type-id"),
    (("=STAGE_ID", "=STATUS_ID", "=STATUS", "=STAGE"), "stage"),
    (("*CURRENCY*",), "currency"),
    (("=LANGUAGE", "=LANG", "=LANGUAGE_ID", "=LID"), "language"),
    (("*COLOR*",), "color"),
    (("*GENDER*", "=SEX"), "gender"),
    (("*BIRTHDAY*", "*BIRTHDATE*"), "date"),
    (("=WORK_POSITION", "=POSITION", "=JOB_TITLE", "=POST"), "job"),
    (("=FIRST_NAME", "=NAME_FIRST"), "first-name"),
    (("=LAST_NAME", "=SECOND_NAME"), "last-name"),
    (("=NAME", "*_NAME", "=FULL_NAME", "=AUTHOR_NAME", "=USER_NAME"), "person-name"),
    (("=COMPANY_TITLE", "*COMPANY*NAME*"), "company"),
    (("=TITLE", "=SUBJECT", "*_TITLE"), "title"),
    (("=MESSAGE", "*MESSAGE_TEXT*", "=TEXT", "*COMMENT*", "*DESCRIPTION*", "=BODY", "=POST_MESSAGE"), "text"),
    (("*URL*", "*LINK*", "=HREF", "*AVATAR*", "*ENDPOINT*"), "url"),
    (("*GUID*", "*UUID*"), "uuid"),
    (("=IP", "*_IP"), "ip"),
    (("=CODE", "*_CODE", "=XML_ID", "*_XML_ID", "=SYMBOL_CODE"), "code"),
    (("*OPPORTUNITY*", "*PRICE*", "*AMOUNT*", "=SUM", "*_SUM", "*TAX*"), "money"),
    (("*DATE*", "*_TIME", "=CREATED", "=MODIFIED", "=UPDATED", "*_AT"), "datetime"),
    (("=ID", "*_ID", "*_BY", "=OWNER", "=PARENT"), "id"),
)

_TYPE_CLASSES: dict[str, str] = {
    "integer": "integer",
    "id": "id",
    "user": "id",
    "timestamp": "timestamp",
    "double": "double",
    "boolean": "boolean",
    "char": "yes-no",
    "yes-no": "yes-no",
    "date": "date",
    "datetime": "datetime",
    "url": "url",
    "array": "list",
}


def _matches(name: str, pattern: str) -> bool:
    if pattern.startswith("="):
        return name == pattern[1:]
    if pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in name
    if pattern.startswith("*"):
        return name.endswith(pattern[1:])
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def field_class(name: str, kind: str) -> str:
    """The :data:`FIELD_CLASSES` entry for a field called ``name`` whose documented type is ``kind``.

    The type decides first where it leaves no choice (a flag, a number, a time); a string or an untyped
    value then follows its name (``EMAIL`` an address, ``*_DATE`` a date-time, ``CALL_ID`` a call id).
    """
    upper = name.upper()
    by_type = _TYPE_CLASSES.get(kind)
    if by_type in ("yes-no", "boolean", "timestamp", "date", "datetime", "list", "double"):
        return by_type
    for patterns, found in _NAME_CLASSES:
        if any(_matches(upper, pattern) for pattern in patterns):
            if by_type in ("integer", "id") and found not in ("id", "entity-type-id", "money"):
                return by_type  # an integer named *_DATE is still an integer
            return found
    return by_type or "string"
