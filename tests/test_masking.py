"""The masker's strided index finds and masks exactly what a scan of every position of every run finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st


class _ScanMasker:
    """The masker's lookup as it was before the strided index: every position of every run looked up by its
    first eight characters. The reference the masker is compared with."""

    def __init__(self, secrets: list[str], harmless: list[str]) -> None:
        from contract_tests.masking import encodings_of

        self.index: dict[str, list[str]] = {}
        self.owner: dict[str, str] = {}
        self.harmless = set(harmless)
        for secret in [*secrets, *harmless]:
            if len(secret) < 8:
                continue
            for form in encodings_of(secret):
                self.owner.setdefault(form, secret)
                forms = self.index.setdefault(form[:8], [])
                forms.append(form)
                forms.sort(key=len, reverse=True)

    def mask(self, text: str) -> str:
        import re

        from contract_tests.masking import _RUN
        from mock_portal.redact import redact_text

        def run_sub(match: re.Match[str]) -> str:
            run, out, i, start = match.group(0), [], 0, 0
            while i + 8 <= len(run):
                for form in self.index.get(run[i : i + 8], ()):
                    if run.startswith(form, i):
                        out += [run[start:i], "***"]
                        i = start = i + len(form)
                        break
                else:
                    i += 1
            return "".join([*out, run[start:]]) if out else run

        return redact_text(_RUN.sub(run_sub, text) if self.index else text)

    def found(self, text: str) -> list[str]:
        from contract_tests.masking import _RUN

        found = set()
        for match in _RUN.finditer(text):
            run = match.group(0)
            for i in range(len(run) - 7):
                for form in self.index.get(run[i : i + 8], ()):
                    if run.startswith(form, i):
                        found.add(self.owner[form])
        return sorted(s for s in found if s not in self.harmless)


_ALNUM = "0123456789abcdefABCDEF_-+/xyz"


@settings(max_examples=120, deadline=None)
@given(
    secrets=st.lists(st.text(_ALNUM, min_size=8, max_size=40), min_size=1, max_size=4, unique=True),
    harmless=st.lists(st.text(_ALNUM, min_size=8, max_size=20), max_size=2, unique=True),
    picks=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6), st.text(_ALNUM + "%&= .", max_size=6))),
)
def test_the_masker_masks_and_finds_what_a_scan_of_every_position_does(
    secrets: list[str], harmless: list[str], picks: list[tuple[int, int, str]]
) -> None:
    from contract_tests.masking import Masker, encodings_of

    harmless = [h for h in harmless if h not in secrets]
    masker = Masker(secrets)
    masker.add(*harmless, leak=False)
    reference = _ScanMasker(secrets, harmless)
    everyone = [*secrets, *harmless]
    parts = []
    for which, form, filler in picks:  # forms of the secrets, glued by bits of runs and separators
        forms = encodings_of(everyone[which % len(everyone)])
        parts += [forms[form % len(forms)], filler]
    text = "".join(parts)
    assert masker(text) == reference.mask(text)
    assert masker.found_in(text) == reference.found(text)
