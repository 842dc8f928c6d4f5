"""The portal's application automation rules (robots): ``bizproc.robot.*`` and the calls a running robot
makes to its app's handler, completed by ``bizproc.event.send``.

Registration, the parameters' checks and their errors follow the method pages:

- https://apidocs.bitrix24.com/api-reference/bizproc/bizproc-robot/index.html (how waiting for a result works)
- https://apidocs.bitrix24.com/api-reference/bizproc/bizproc-robot/bizproc-robot-add.html
- https://apidocs.bitrix24.com/api-reference/bizproc/bizproc-robot/bizproc-robot-update.html
- https://apidocs.bitrix24.com/api-reference/bizproc/bizproc-robot/bizproc-robot-list.html
- https://apidocs.bitrix24.com/api-reference/bizproc/bizproc-robot/bizproc-robot-delete.html
- https://apidocs.bitrix24.com/api-reference/bizproc/bizproc-robot/bizproc-event-send.html

A robot belongs to the app that registered it (its ``CODE`` is unique within the app). When an automation
runs it (the control route ``POST /_portal/robots/<code>/run``), the portal POSTs the call to the robot's
``HANDLER`` through the normal outbox (form-encoded with PHP brackets, as events are sent, and recorded as a
delivery): ``event_token``, ``workflow_id``, ``code``, ``document_id[]``, ``document_type[]``,
``properties[...]``, ``use_subscription``, ``timeout_duration``, ``ts`` and the ``auth`` block with a fresh
token of ``AUTH_USER_ID`` (the user whose token the page says is passed to the application). The method pages
name the ``event_token`` the handler receives ("the value of this token is received by the handler in the
input data array", bizproc-event-send); the other keys are what a robot's handler receives on a real portal.

A run that waits (``USE_SUBSCRIPTION`` not ``N``: "by default ... equivalent to waiting for a response",
bizproc-robot-add) stays ``waiting`` until ``bizproc.event.send`` brings its ``EVENT_TOKEN``; the values of
the declared ``RETURN_PROPERTIES`` are kept on the run. A token that is unknown, already used, of a run that
does not wait, or of another app's robot is refused with ``ACCESS_DENIED`` (bizproc-event-send).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from mock_portal.portal._parts import PortalParts
from mock_portal.portal.model import DROP_REASON_NOT_INSTALLED, PortalError, check_handler_url
from mock_portal.portal.outbox import Body, Planned

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt
    from mock_portal.portal.model import Clock

__all__ = ["DEFAULT_DOCUMENT_TYPE", "ROBOT_CALL", "ROBOT_FIELDS", "Robot", "RobotRun", "RobotStore", "Robots"]

ROBOT_CALL: Final = "bizproc.robot"
"""The name a robot call is recorded under among the deliveries (``bizproc.robot:<CODE>``)."""
DEFAULT_DOCUMENT_TYPE: Final = ("crm", "CCrmDocumentDeal", "DEAL")
"""Deals, the first CRM document type of bizproc-robot-add's ``DOCUMENT_TYPE`` list."""
_CODE: Final = re.compile(r"^[A-Za-z0-9._-]+$")  # "a-z, A-Z, 0-9, dot, hyphen, and underscore" (add page)
_PROPERTY_KEY: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # "must start with a letter" (add page)
ROBOT_FIELDS: Final = (
    "HANDLER",
    "AUTH_USER_ID",
    "USE_SUBSCRIPTION",
    "NAME",
    "DESCRIPTION",
    "PROPERTIES",
    "RETURN_PROPERTIES",
    "DOCUMENT_TYPE",
    "FILTER",
    "USE_PLACEMENT",
    "PLACEMENT_HANDLER",
)
"""A robot's fields: what bizproc.robot.add takes besides ``CODE``, and bizproc.robot.update changes."""
_VALIDATION: Final = "ERROR_ACTIVITY_VALIDATION_FAILURE"


def _invalid(message: str) -> PortalError:
    return PortalError(_VALIDATION, message, 400)


@dataclass
class Robot:
    """An automation rule as ``bizproc.robot.add`` registered it (``fields``: its parameters, checked)."""

    code: str
    client_id: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def handler(self) -> str:
        return str(self.fields["HANDLER"])

    @property
    def waits(self) -> bool:
        """Whether a run waits for ``bizproc.event.send``: unless ``USE_SUBSCRIPTION`` is ``N``."""
        return str(self.fields.get("USE_SUBSCRIPTION") or "").upper() != "N"

    def properties(self, name: str = "PROPERTIES") -> dict[str, dict[str, Any]]:
        value = self.fields.get(name)
        return dict(value) if isinstance(value, Mapping) else {}


@dataclass
class RobotRun:
    """One run of a robot: what its handler was sent, and what ``bizproc.event.send`` brought back."""

    id: int
    code: str
    client_id: str
    event_token: str
    workflow_id: str
    document_id: list[str]
    document_type: list[str]
    properties: dict[str, Any]
    waits: bool
    status: str = "sending"  # then "waiting" or "completed"
    outcome: str | None = None  # the delivery's outcome
    return_values: dict[str, Any] = field(default_factory=dict)
    ignored_return_values: list[str] = field(default_factory=list)
    log_message: str | None = None
    completed_at: float | None = None

    def public(self) -> dict[str, Any]:
        """The run as the control API shows it (no token: it is a credential)."""
        return {
            "id": self.id,
            "code": self.code,
            "client_id": self.client_id,
            "workflow_id": self.workflow_id,
            "document_id": self.document_id,
            "document_type": self.document_type,
            "properties": self.properties,
            "use_subscription": "Y" if self.waits else "N",
            "status": self.status,
            "outcome": self.outcome,
            "return_values": self.return_values,
            "ignored_return_values": self.ignored_return_values,
            "log_message": self.log_message,
        }


class RobotStore:
    """The robots by (app, code), their runs by id and by event token."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.robots: dict[tuple[str, str], Robot] = {}
        self.runs: dict[int, RobotRun] = {}
        self.by_token: dict[str, RobotRun] = {}
        self.run_ids = itertools.count(1)


# ---------------------------------------------------------------------------------------------- checks


def _check_code(code: object) -> str:
    if not isinstance(code, str) or not code.strip():
        raise _invalid("Empty activity code!")
    if not _CODE.match(code.strip()):
        raise _invalid("Wrong activity code!")
    return code.strip()


def _check_handler(url: object, *, required: bool = True) -> str | None:
    if url in (None, "") and not required:
        return None
    if isinstance(url, str) and urlsplit(url.strip()).scheme.lower() not in ("http", "https"):
        raise PortalError("ERROR_UNSUPPORTED_PROTOCOL", "Unsupported handler protocol", 400)
    try:
        return check_handler_url(url.strip() if isinstance(url, str) else url)
    except PortalError:
        raise PortalError("ERROR_WRONG_HANDLER_URL", "Wrong handler URL", 400) from None


def _filled(value: object) -> bool:
    if isinstance(value, Mapping):
        return any(isinstance(v, str) and v.strip() for v in value.values())
    return isinstance(value, str) and bool(value.strip())


def _check_properties(value: object) -> dict[str, Any]:
    """``PROPERTIES`` / ``RETURN_PROPERTIES``: an object of PROPERTY objects with a name each."""
    if value in (None, "", [], {}):
        return {}
    if not isinstance(value, Mapping):
        raise _invalid("Wrong properties array!")
    checked: dict[str, Any] = {}
    for key, prop in value.items():
        if not isinstance(key, str) or not _PROPERTY_KEY.match(key):
            raise _invalid(f"Wrong property key {str(key)[:60]}!")
        if not isinstance(prop, Mapping):
            raise _invalid("Wrong properties array!")
        name = next((v for k, v in prop.items() if str(k).upper() == "NAME"), None)
        if not _filled(name):
            raise _invalid(f"Empty property NAME {key}!")
        checked[key] = {str(k).capitalize() if str(k).isupper() else str(k): v for k, v in prop.items()}
    return checked


def _listed(value: object) -> list[Any] | None:
    """A list, or a PHP list decoded as a mapping of "0", "1", ... keys; None for anything else."""
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping) and all(str(k) == str(i) for i, k in enumerate(value)):
        return list(value.values())
    return None


def _check_document_type(value: object) -> list[str]:
    items = _listed(value)
    if items is None or len(items) != 3 or not all(isinstance(i, str) and i.strip() for i in items):
        raise _invalid("Wrong activity DOCUMENT_TYPE!")
    return [str(i) for i in items]


def _check_filter(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise _invalid("Wrong activity FILTER!")
    checked: dict[str, Any] = {}
    for key, rules in value.items():
        listed = _listed(rules)
        if str(key).upper() not in ("INCLUDE", "EXCLUDE") or listed is None:
            raise _invalid("Wrong activity FILTER!")
        checked[str(key).upper()] = listed
    return checked


def check_fields(fields: Mapping[str, Any], *, adding: bool) -> dict[str, Any]:
    """Check the robot's parameters as the add and update pages list their errors; return them cleaned."""
    checked: dict[str, Any] = {}
    if adding or "HANDLER" in fields:
        checked["HANDLER"] = _check_handler(fields.get("HANDLER"))
    if adding or "NAME" in fields:
        if not _filled(fields.get("NAME")):
            raise _invalid("Empty activity NAME!")
        checked["NAME"] = fields["NAME"]
    for name in ("PROPERTIES", "RETURN_PROPERTIES"):
        if name in fields:
            checked[name] = _check_properties(fields[name])
    if fields.get("DOCUMENT_TYPE") not in (None, ""):
        checked["DOCUMENT_TYPE"] = _check_document_type(fields["DOCUMENT_TYPE"])
    if fields.get("FILTER") not in (None, ""):
        checked["FILTER"] = _check_filter(fields["FILTER"])
    if "AUTH_USER_ID" in fields:
        raw = str(fields["AUTH_USER_ID"]).strip()
        checked["AUTH_USER_ID"] = int(raw) if raw.isdigit() else 0
    for flag in ("USE_SUBSCRIPTION", "USE_PLACEMENT"):
        if flag in fields:
            checked[flag] = str(fields[flag] or "").strip().upper()
    if "DESCRIPTION" in fields:
        checked["DESCRIPTION"] = fields["DESCRIPTION"]
    if "PLACEMENT_HANDLER" in fields:
        checked["PLACEMENT_HANDLER"] = _check_handler(fields["PLACEMENT_HANDLER"], required=False)
    if checked.get("USE_PLACEMENT") == "Y" and not checked.get("PLACEMENT_HANDLER"):
        # USE_PLACEMENT=Y without PLACEMENT_HANDLER: "Required if USE_PLACEMENT = 'Y'" (add page)
        raise PortalError("ERROR_WRONG_HANDLER_URL", "Wrong handler URL", 400)
    return checked


def _token_parts(ids: Any, clock: Clock, secret: str) -> tuple[str, str]:
    """A workflow id and an event token shaped as the docs' example token: ``<workflow id>|<activity
    name>|<random>.<sha256 hex>`` (bizproc-event-send, bizproc-activity-log)."""
    workflow_id = f"{int(clock.now()):08x}{ids.hex(6)}.{ids.randrange(10**7, 10**8)}"
    activity = "A" + "_".join(str(ids.randrange(10_000, 100_000)) for _ in range(4))
    nonce = ids.alnum(32)
    sign = hashlib.sha256(f"{workflow_id}|{activity}|{nonce}|{secret}".encode()).hexdigest()
    return workflow_id, f"{workflow_id}|{activity}|{nonce}.{sign}"


# ---------------------------------------------------------------------------------------------- the part


class Robots(PortalParts):
    """The robot operations of :class:`~mock_portal.portal.Portal` (for :mod:`mock_portal.rest.bizproc`)."""

    _robots: RobotStore
    clock: Clock

    def _robot_app(self, client_id: str | None, user_id: int) -> str:
        if client_id is None:
            raise PortalError("ACCESS_DENIED", "Application context required", 400)
        if not self.is_admin(user_id):
            raise PortalError("ACCESS_DENIED", "Access denied!", 400)
        return self._state.require_app(client_id, self.domain).client_id

    def robot_add(self, client_id: str | None, user_id: int, params: Mapping[str, Any]) -> Robot:
        """``bizproc.robot.add``: nothing changes when it is refused."""
        with self._lock:
            app = self._robot_app(client_id, user_id)
            if not params:
                raise _invalid("Empty data!")
            code = _check_code(params.get("CODE"))
            fields = check_fields(params, adding=True)
            if (app, code) in self._robots.robots:
                raise PortalError(
                    "ERROR_ACTIVITY_ALREADY_INSTALLED", "Activity or Automation rule already installed!", 400
                )
            robot = Robot(code, app, fields)
            self._robots.robots[(app, code)] = robot
            return robot

    def robot_update(self, client_id: str | None, user_id: int, code: object, fields: object) -> Robot:
        """``bizproc.robot.update``: the fields given replace the robot's."""
        with self._lock:
            app = self._robot_app(client_id, user_id)
            robot = self._robots.robots.get((app, _check_code(code)))
            if robot is None:
                raise PortalError("ERROR_ACTIVITY_NOT_FOUND", "Activity or Automation Rule not found!", 400)
            given = (
                {k: v for k, v in fields.items() if k in ROBOT_FIELDS} if isinstance(fields, Mapping) else {}
            )
            if not given:
                raise _invalid("No fields to update")
            robot.fields.update(check_fields(given, adding=False))
            return robot

    def robot_delete(self, client_id: str | None, user_id: int, code: object) -> None:
        """``bizproc.robot.delete``: its waiting runs can no longer be completed."""
        with self._lock:
            app = self._robot_app(client_id, user_id)
            robot = self._robots.robots.pop((app, _check_code(code)), None)
            if robot is None:
                raise PortalError("ERROR_ACTIVITY_NOT_FOUND", "Activity or Robot not found!", 400)

    def robot_codes(self, client_id: str | None, user_id: int) -> list[str]:
        """``bizproc.robot.list``: the codes of the app's robots, oldest first."""
        with self._lock:
            app = self._robot_app(client_id, user_id)
            return [code for (owner, code) in self._robots.robots if owner == app]

    def robots(self) -> list[Robot]:
        """Every robot of an active app, oldest first."""
        with self._lock:
            return [r for r in self._robots.robots.values() if self._state.apps[r.client_id].active]

    def robot_runs(self) -> list[RobotRun]:
        """Every run, oldest first."""
        with self._lock:
            return list(self._robots.runs.values())

    # ----------------------------------------------------------------- running
    def run_robot(
        self,
        code: str,
        *,
        client_id: str | None = None,
        document_id: list[str] | None = None,
        document_type: list[str] | None = None,
        properties: Mapping[str, Any] | None = None,
        timeout_duration: int = 0,
        timeout: float | None = None,
    ) -> tuple[RobotRun, list[Attempt]]:
        """An automation runs the robot ``code`` (of ``client_id``, or the only app with that code): the
        portal POSTs the call to its handler. Refused (``ROBOT_NOT_FOUND``, ``BAD_PROPERTY``) with nothing
        changed."""
        from mock_portal.wire import encode

        with self._lock:
            robot = self._runnable(code, client_id)
            app = self._state.apps[robot.client_id]
            values = _property_values(robot, properties or {})
            doc_type = list(document_type or robot.fields.get("DOCUMENT_TYPE") or DEFAULT_DOCUMENT_TYPE)
            doc_id = list(document_id or [doc_type[0], doc_type[1], f"{doc_type[2]}_1"])
            workflow_id, event_token = _token_parts(self._ids, self.clock, app.client_secret)
            auth_user = int(robot.fields.get("AUTH_USER_ID") or 0) or app.user_id
            token = self._tokens.issue(app, user_id=auth_user)
            run = RobotRun(
                id=next(self._robots.run_ids),
                code=robot.code,
                client_id=app.client_id,
                event_token=event_token,
                workflow_id=workflow_id,
                document_id=doc_id,
                document_type=doc_type,
                properties=values,
                waits=robot.waits,
            )
            # the keys in the order a robot's handler receives them; auth last, as in events (facts §1)
            payload: dict[str, Any] = {
                "event_token": event_token,
                "workflow_id": workflow_id,
                "code": robot.code,
                "document_id": doc_id,
                "document_type": doc_type,
                "properties": values,
                "use_subscription": "Y" if robot.waits else "N",
                "timeout_duration": str(timeout_duration),
                "ts": str(int(self.clock.now())),
                "auth": self._triggers.auth_block(app, "user", token),
            }
            self._robots.runs[run.id] = run
            self._robots.by_token[event_token] = run
            drop = None if app.installed else DROP_REASON_NOT_INSTALLED
            body = Body(encode(payload), payload)
            plan = [Planned(f"{ROBOT_CALL}:{robot.code}", robot.handler, body, app.client_id, drop)]
        attempts = self._outbox.execute(plan, timeout)
        with self._lock:
            run.outcome = attempts[-1].outcome if attempts else None
            if run.status == "sending":
                run.status = "waiting" if run.waits else "completed"
        return run, attempts

    def _runnable(self, code: str, client_id: str | None) -> Robot:
        found = [
            r for r in self.robots() if r.code == code and (client_id is None or r.client_id == client_id)
        ]
        if not found:
            raise PortalError("ROBOT_NOT_FOUND", f"no robot {code[:100]!r} is registered", 404)
        if len(found) > 1:
            raise PortalError(
                "ROBOT_AMBIGUOUS", f"several apps registered robot {code[:100]!r}: name the client_id", 400
            )
        return found[0]

    def event_send(
        self, client_id: str | None, event_token: object, return_values: object, log_message: object
    ) -> RobotRun:
        """``bizproc.event.send``: complete the waiting run of ``event_token`` (``ACCESS_DENIED`` for a token
        that is not valid and current, bizproc-event-send)."""
        with self._lock:
            run = self._robots.by_token.get(event_token) if isinstance(event_token, str) else None
            robot = self._robots.robots.get((run.client_id, run.code)) if run is not None else None
            app = self._state.apps.get(run.client_id) if run is not None else None
            if (
                run is None
                or robot is None
                or app is None
                or not app.active
                or not run.waits
                or run.status == "completed"
                or (client_id is not None and client_id != run.client_id)
            ):
                raise PortalError("ACCESS_DENIED", "Access denied!", 403)
            declared = robot.properties("RETURN_PROPERTIES")
            given = return_values if isinstance(return_values, Mapping) else {}
            run.return_values = {k: v for k, v in given.items() if k in declared}
            run.ignored_return_values = sorted(str(k) for k in given if k not in declared)
            run.log_message = log_message if isinstance(log_message, str) else ""
            run.status = "completed"
            run.completed_at = self.clock.now()
            return run

    if TYPE_CHECKING:  # from Users, which Portal puts beside this part

        def is_admin(self, user_id: int) -> bool: ...


def _property_values(robot: Robot, given: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the robot's declared properties: those given, else the declared ``Default``; a required
    property without either, or an undeclared one, is refused."""
    declared = robot.properties()
    unknown = [k for k in given if k not in declared]
    if unknown:
        known = ", ".join(declared) or "none"
        raise PortalError(
            "BAD_PROPERTY", f"robot {robot.code!r} has no property {unknown[0][:60]!r} (known: {known})", 400
        )
    values: dict[str, Any] = {}
    for key, prop in declared.items():
        if key in given:
            values[key] = given[key]
        elif prop.get("Default") not in (None, ""):
            values[key] = prop["Default"]
        elif str(prop.get("Required") or "").upper() == "Y":
            raise PortalError("BAD_PROPERTY", f"robot {robot.code!r} needs a value for {key!r}", 400)
        else:
            values[key] = ""
    return values
