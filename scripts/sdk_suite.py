"""Run b24pysdk's own integration tests offline, against a mock portal reached over TLS through a proxy.

    python scripts/sdk_suite.py --source PATH [--scopes event,im,...] [--json OUT]
    tox -e sdk-suite -- --source PATH

b24pysdk's integration tests (``tests/integration/scopes/<scope>/``) normally need a live portal: they read
``B24_DOMAIN``, ``B24_WEBHOOK`` and the OAuth variables (``B24_CLIENT_ID``, ``B24_CLIENT_SECRET``,
``B24_ACCESS_TOKEN``, ``B24_REFRESH_TOKEN`` ...). This script gives them a mock portal instead:

1. takes the tests at the pinned release (``SDK_TAG``; the sdist on PyPI ships no tests) from ``--source``, a
   clone of https://github.com/bitrix24/b24pysdk (a work tree or a bare git directory; any clone that has
   the tag), with ``git archive``, into a temporary directory; nothing of it is copied into this repository;
2. starts a :class:`~mock_portal.server.PortalServer` with one portal, a webhook the portal created and an
   installed OAuth app, and a :class:`~mock_portal.tls.TlsFront` for it; sets the portal up as the suite
   expects a test portal to be (see :func:`prepare_portal`) and writes the suite's own settings file,
   ``tests/constants_local.py`` (step 3 of the SDK's ``tests/README.md``), with that portal's ids;
3. runs pytest on each scope with the front's proxy/CA variables and the ``B24_*`` variables, one scope at a
   time, and reads the outcome of every test from a JUnit report;
4. prints, per scope, the pass figure and what the portal answered with errors while that scope ran: the
   methods it does not have (``ERROR_METHOD_NOT_FOUND``) and every other error code, with counts.

Run it in an environment with ``b24pysdk==SDK_VERSION`` and the suite's test dependencies (the ``sdk-suite``
tox env has them). Exit code 0 when the run completed (whatever the figures), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from mock_portal import rest  # noqa: E402
from mock_portal.portal import Portal  # noqa: E402
from mock_portal.portal.users import ROOT_DEPARTMENT  # noqa: E402
from mock_portal.restkit import PLANS, Plan  # noqa: E402
from mock_portal.server import PortalServer  # noqa: E402
from mock_portal.tls import TlsFront  # noqa: E402

SDK_TAG = "1.2.1"
"""The release tag of github.com/bitrix24/b24pysdk whose tests run (the newest tagged release with tests)."""
SDK_COMMIT = "da49ae69048a8d6bd5b06d75efe16b7c15fe25ab"
"""The commit that tag names, checked so a moved tag is noticed."""
SDK_VERSION = "1.2.1"
"""The b24pysdk release on PyPI those tests are written for."""

# scope name -> test path inside the SDK's repository
SCOPES: dict[str, str] = {
    "event": "tests/integration/scopes/event",
    "im": "tests/integration/scopes/im",
    "imopenlines": "tests/integration/scopes/imopenlines",
    "imconnector": "tests/integration/scopes/imconnector",
    "crm.deal": "tests/integration/scopes/crm/deal",
    "crm.lead": "tests/integration/scopes/crm/lead",
    "crm.contact": "tests/integration/scopes/crm/contact",
    "crm.company": "tests/integration/scopes/crm/company",
    "user": "tests/integration/scopes/user",
    "app": "tests/integration/scopes/app",
    "batch": "tests/integration/scopes/batch",
    "scope": "tests/integration/scopes/test_scope.py",
    "credentials": "tests/integration/credentials",
    "errors": "tests/integration/errors",
}
DEFAULT_SCOPES = tuple(SCOPES)
DOMAIN = "b24pysdk-suite.bitrix24.com"
CLIENT_ID = "local.b24pysdksuite.1"
CLIENT_SECRET = "b24pysdkSuiteSecretForTheMockOnly"  # noqa: S105 - a mock app's secret
SUITE_SCOPES = "crm,user,user_basic,im,imopenlines,imconnector,imbot,placement"
"""What the webhook and the app may call: the scopes a portal set up for the suite gives them."""
SUITE_PLAN = Plan("sdk-suite", burst=10_000, drain=100.0)
"""The request-rate plan of the suite's portal. The SDK does not retry ``QUERY_LIMIT_EXCEEDED`` and its tests
call back to back; against a mock that answers in milliseconds they burst faster than any plan of a real
portal allows (50 or 250 requests, draining 2 or 5 per second), so which tests fail would depend on the
machine's speed. ``--rate-plan standard`` (or ``enterprise``) runs them under a real plan instead."""
RECURRING_DEAL_ID = 27
"""``test_crm_deal_recurring`` makes its template from deal 27 (a constant of that file, not of the settings
file): the suite's portal holds deals 1 to 27 before the tests start."""


class UsageError(Exception):
    pass


@dataclass
class ScopeResult:
    scope: str
    path: str
    present: bool
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    missing_methods: dict[str, int] = field(default_factory=dict)
    other_errors: dict[str, int] = field(default_factory=dict)
    failure_kinds: dict[str, int] = field(default_factory=dict)
    skip_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def ran(self) -> int:
        return self.passed + self.failed + self.errors

    @property
    def total(self) -> int:
        return self.ran + self.skipped

    def figure(self) -> str:
        if not self.present:
            return "no tests at this tag"
        if self.total == 0:
            return "no tests collected"
        share = 100 * self.passed / self.total
        return f"{self.passed}/{self.total} pass ({share:.0f}%); {self.ran} ran, {self.skipped} skipped"


# ------------------------------------------------------------------------------------------ the SDK's tests
def extract_tests(source: Path, into: Path) -> None:
    """``git archive`` the pinned tag's ``tests/`` and ``pytest.ini`` from ``source`` into ``into``."""
    if not source.exists():
        raise UsageError(f"--source {source}: no such directory")
    git = ["git", f"--git-dir={source}"] if (source / "HEAD").is_file() else ["git", "-C", str(source)]
    found = subprocess.run([*git, "rev-parse", f"{SDK_TAG}^{{commit}}"], capture_output=True, text=True)
    if found.returncode != 0:
        raise UsageError(
            f"--source {source}: no tag {SDK_TAG} there (a clone of github.com/bitrix24/b24pysdk?)"
        )
    if found.stdout.strip() != SDK_COMMIT:
        raise UsageError(f"tag {SDK_TAG} names {found.stdout.strip()}, expected {SDK_COMMIT}: the tag moved")
    archive = subprocess.run(
        [*git, "archive", "--format=tar", SDK_COMMIT, "tests", "pytest.ini"], capture_output=True
    )
    if archive.returncode != 0:
        raise UsageError(f"git archive failed: {archive.stderr.decode(errors='replace')[:300]}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def check_sdk_version() -> str:
    try:
        from importlib.metadata import version

        installed = version("b24pysdk")
    except Exception as exc:
        raise UsageError(f"b24pysdk is not installed ({exc}); use the sdk-suite tox env") from None
    return installed


# ------------------------------------------------------------------------------------------ the portal
def portal_env(srv: PortalServer, front: TlsFront, workdir: Path) -> dict[str, str]:
    portal = srv.portal
    code = portal.add_webhook(user_id=1, scopes=SUITE_SCOPES)
    _, token, _ = portal.install_app(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scopes=SUITE_SCOPES)
    expires = token.expires
    # a token of the same app issued two lifetimes ago: what the suite's expired-token scenario wants
    expired = portal.issue_token(CLIENT_ID)
    expired.issued_at -= 2 * expired.expires_in
    from datetime import datetime, timezone

    return {
        **front.env(),
        "B24_DOMAIN": DOMAIN,
        "B24_WEBHOOK": f"1/{code}",
        "B24_CLIENT_ID": CLIENT_ID,
        "B24_CLIENT_SECRET": CLIENT_SECRET,
        "B24_ACCESS_TOKEN": token.access_token,
        "B24_REFRESH_TOKEN": token.refresh_token or "",
        "B24_EXPIRES": datetime.fromtimestamp(expires, tz=timezone.utc).isoformat(sep=" "),
        "B24_EXPIRES_IN": str(token.expires_in),
        "B24_PREFER_AUTH_TYPE": "",
        "B24_EXPIRED_TOKEN": expired.access_token,
        "PYTHONPATH": str(workdir),
    }


def prepare_portal(portal: Portal, app_token: str) -> dict[str, int]:
    """Give the portal what the suite takes for granted in a test portal; return the ids the settings file
    names.

    - deals up to :data:`RECURRING_DEAL_ID`, and a lead for ``LEAD_ID``;
    - the app binds ``ONCRMLEADADD`` as an offline event (``event.bind`` with ``event_type=offline``, as an
      app that reads ``event.offline.*`` does), before the lead is added: the offline queue holds its event
      when ``test_event_offline`` reads it;
    - the company's root department (``HEAD_DEPARTMENT_ID``) is the portal's own.
    """
    bound = rest.call(
        portal, "event.bind", {"event": "ONCRMLEADADD", "event_type": "offline", "auth": app_token}
    )
    if not bound.ok:
        raise UsageError(f"the suite's portal refused the offline binding: {bound.body}")
    with portal.deferring_events():
        lead_id, _ = portal.crm_add("lead", {"TITLE": "B24PySDK suite lead", "NAME": "Suite"})
        for number in range(1, RECURRING_DEAL_ID + 1):
            portal.crm_add("deal", {"TITLE": f"B24PySDK suite deal {number}", "OPPORTUNITY": 100 * number})
    return {"HEAD_DEPARTMENT_ID": ROOT_DEPARTMENT, "LEAD_ID": lead_id}


def write_constants(workdir: Path, constants: dict[str, int]) -> None:
    """``tests/constants_local.py``: the SDK's documented place for a test portal's own ids."""
    lines = [f"{name} = {value!r}" for name, value in sorted(constants.items())]
    header = "# written by b24-contract's scripts/sdk_suite.py for its mock portal\n"
    (workdir / "tests" / "constants_local.py").write_text(header + "\n".join(lines) + "\n", encoding="utf-8")


def parse_plan(text: str) -> Plan | str:
    """``standard``, ``enterprise``, ``suite`` or ``BURST/DRAIN`` (e.g. ``250/5``)."""
    if text == "suite":
        return SUITE_PLAN
    if text in PLANS:
        return text
    burst, _, drain = text.partition("/")
    try:
        return Plan("custom", burst=int(burst), drain=float(drain))
    except ValueError:
        raise UsageError(
            f"--rate-plan {text!r}: standard, enterprise, suite or BURST/DRAIN (e.g. 250/5)"
        ) from None


def _classify(message: str) -> str:
    text = message.strip().splitlines()[0] if message.strip() else "(no message)"
    for marker in ("ERROR_METHOD_NOT_FOUND", "Method not found"):
        if marker in message:
            return "method not found"
    for code in ("insufficient_scope", "WRONG_AUTH_TYPE", "ERROR_ARGUMENT", "expired_token", "invalid_token"):
        if code in message:
            return code
    if "Skipping" in text or "Missing" in text:
        return "skipped: " + text[:80]
    if "AssertionError" in text or text.startswith("assert"):
        return "assertion on the answer"
    return text.split(":")[0][:80]


def run_scope(scope: str, workdir: Path, env: dict[str, str], portal: Portal, timeout: float) -> ScopeResult:
    path = SCOPES[scope]
    result = ScopeResult(scope, path, (workdir / path).exists())
    if not result.present:
        return result
    before = len(portal.calls())
    report = workdir / f"junit-{scope}.xml"
    command = [
        sys.executable, "-m", "pytest", path, "-q", "--tb=line",
        f"--junitxml={report}", "-o", "junit_family=xunit2", f"--timeout={int(timeout)}",
    ]  # fmt: skip
    subprocess.run(
        command, cwd=workdir, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - our own pytest run's report
            failure = case.find("failure")
            error = case.find("error")
            skipped = case.find("skipped")
            if failure is not None:
                result.failed += 1
                kind = _classify(failure.get("message", "") + "\n" + (failure.text or ""))
                result.failure_kinds[kind] = result.failure_kinds.get(kind, 0) + 1
            elif error is not None:
                result.errors += 1
                kind = _classify(error.get("message", "") + "\n" + (error.text or ""))
                result.failure_kinds[kind] = result.failure_kinds.get(kind, 0) + 1
            elif skipped is not None:
                result.skipped += 1
                reason = skipped.get("message", "")
                kind = "an earlier test failed (pytest-dependency)" if "depends on" in reason else reason[:80]
                result.skip_kinds[kind] = result.skip_kinds.get(kind, 0) + 1
            else:
                result.passed += 1
    missing: collections.Counter[str] = collections.Counter()
    other: collections.Counter[str] = collections.Counter()
    for call in portal.calls()[before:]:
        if call.error == "ERROR_METHOD_NOT_FOUND":
            missing[call.method] += 1
        elif call.error:
            other[f"{call.method}: {call.error}"] += 1
    result.missing_methods = dict(missing.most_common())
    result.other_errors = dict(other.most_common())
    return result


def print_report(results: list[ScopeResult], out: Any) -> None:
    print(f"b24pysdk {SDK_TAG} integration tests against the mock portal (TLS front)", file=out)
    for r in results:
        print(f"  {r.scope:12} {r.figure()}", file=out)
    print("", file=out)
    for r in results:
        if not r.present or (not r.failure_kinds and not r.missing_methods and not r.other_errors):
            continue
        print(f"[{r.scope}]", file=out)
        if r.failure_kinds:
            print("  failures: " + ", ".join(f"{k} x{n}" for k, n in r.failure_kinds.items()), file=out)
        if r.skip_kinds:
            print("  skipped: " + ", ".join(f"{k} x{n}" for k, n in r.skip_kinds.items()), file=out)
        if r.missing_methods:
            print(f"  methods the mock lacks ({len(r.missing_methods)}):", file=out)
            for method, count in r.missing_methods.items():
                print(f"    {method} x{count}", file=out)
        if r.other_errors:
            print("  other errors the mock answered:", file=out)
            for what, count in r.other_errors.items():
                print(f"    {what} x{count}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sdk_suite", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source",
        default=os.environ.get("B24PYSDK_SOURCE"),
        help=f"a clone of github.com/bitrix24/b24pysdk with tag {SDK_TAG} (or env B24PYSDK_SOURCE)",
    )
    parser.add_argument("--scopes", default=",".join(DEFAULT_SCOPES), help="comma-separated scope names")
    parser.add_argument("--json", help="also write the figures as JSON to this file")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per test (default 60)")
    parser.add_argument("--keep", metavar="DIR", help="extract into DIR and keep it (tests, JUnit reports)")
    parser.add_argument(
        "--rate-plan",
        default="suite",
        help="the portal's request-rate plan: suite (default: wide enough that no test depends on the "
        "machine's speed), standard, enterprise, or BURST/DRAIN",
    )
    args = parser.parse_args(argv)
    try:
        if not args.source:
            raise UsageError(
                f"give --source: a clone of https://github.com/bitrix24/b24pysdk with tag {SDK_TAG} "
                f"(git clone --branch {SDK_TAG} https://github.com/bitrix24/b24pysdk)"
            )
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise UsageError(f"unknown scope(s) {', '.join(unknown)} (known: {', '.join(SCOPES)})")
        plan = parse_plan(args.rate_plan)
        installed = check_sdk_version()
        if installed != SDK_VERSION:
            print(
                f"note: b24pysdk {installed} is installed; these tests are written for {SDK_VERSION}",
                file=sys.stderr,
            )
        workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="b24pysdk-suite-"))
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            extract_tests(Path(args.source), workdir)
            with PortalServer([Portal(DOMAIN, seed=24, rate_plan=plan)]) as srv, TlsFront(srv) as front:
                env = portal_env(srv, front, workdir)
                write_constants(workdir, prepare_portal(srv.portal, env["B24_ACCESS_TOKEN"]))
                results = [run_scope(s, workdir, env, srv.portal, args.timeout) for s in scopes]
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    except UsageError as exc:
        print(f"sdk-suite: {exc}", file=sys.stderr)
        return 2
    print_report(results, sys.stdout)
    if args.json:
        rows = [{**asdict(r), "ran": r.ran, "total": r.total, "figure": r.figure()} for r in results]
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
