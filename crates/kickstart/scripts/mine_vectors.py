#!/usr/bin/env python3
"""Mine pykickstart's own test suite (from its sdist) into tests/data/pykickstart-vectors.tsv.

    cd /tmp && pip download --no-binary :all: --no-deps pykickstart==3.78 && tar xzf pykickstart-3.78.tar.gz
    cd /tmp/pykickstart-3.78 && /work/main/.venv/bin/python \
        /work/main/crates/kickstart/scripts/mine_vectors.py > /work/main/crates/kickstart/tests/data/pykickstart-vectors.tsv

Every command line and kickstart snippet the suite feeds to its parser is recorded, then each is
run again through the installed pykickstart for the versions we support, so the expected outcome
is pykickstart's own verdict for that version (not the suite's, which targets many versions).
Output: one line per (input, versions with the same outcome):
    VERSIONS <TAB> OUTCOME <TAB> INPUT
OUTCOME is a space-separated list of diagnostic kinds in order (`error`, `fatal`, `warning`,
`deprecated`), or `ok`. INPUT escapes backslash, tab and newline as \\\\, \\t, \\n.
"""
import io
import os
import sys
import unittest
import warnings
import contextlib

sys.path.insert(0, os.getcwd())
import tests.baseclass as bc  # noqa: E402
from pykickstart.errors import KickstartDeprecationWarning, KickstartParseWarning  # noqa: E402
from pykickstart.parser import KickstartParser  # noqa: E402
from pykickstart.version import makeVersion  # noqa: E402

VERSIONS = ["F43", "RHEL10"]
seen = []
seen_set = set()


def record(s):
    if isinstance(s, str) and s not in seen_set and len(s) < 2000:
        seen_set.add(s)
        seen.append(s)


def wrap(cls, name, pos):
    orig = getattr(cls, name)

    def f(self, *args, **kwargs):
        if len(args) > pos:
            record(args[pos])
        return orig(self, *args, **kwargs)
    setattr(cls, name, f)


wrap(bc.CommandTest, "assert_parse", 0)
wrap(bc.CommandTest, "assert_parse_error", 0)
wrap(bc.ParserTest, "assert_parse", 0)
wrap(bc.ParserTest, "assert_parse_error", 0)

with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
    suite = unittest.defaultTestLoader.discover("tests/commands", top_level_dir=".")
    unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
    suite = unittest.defaultTestLoader.discover("tests", pattern="*.py", top_level_dir=".")
    unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)


class Recorder(KickstartParser):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.kinds = []

    def _tryFunc(self, fn):
        try:
            fn()
        except Exception:  # noqa: BLE001
            self.kinds.append("error")


def outcome(version, text):
    handler = makeVersion(version)
    parser = Recorder(handler, followIncludes=False, errorsAreFatal=False)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        fatal = False
        try:
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                parser.readKickstartFromString(text if text.endswith("\n") else text + "\n")
        except Exception:  # noqa: BLE001
            fatal = True
    kinds = []
    for w in ws:
        if issubclass(w.category, KickstartDeprecationWarning):
            kinds.append("deprecated")
        elif issubclass(w.category, KickstartParseWarning):
            kinds.append("warning")
    # Warnings and errors interleave per line; the comparison is on the multiset, errors last.
    kinds = sorted(kinds) + parser.kinds + (["fatal"] if fatal else [])
    return " ".join(kinds) or "ok"


def esc(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


for text in seen:
    if "%include" in text or "%ksappend" in text:
        continue
    by = {}
    for v in VERSIONS:
        by.setdefault(outcome(v, text), []).append(v)
    for out, vs in by.items():
        sys.stdout.write("%s\t%s\t%s\n" % (",".join(vs), out, esc(text)))
