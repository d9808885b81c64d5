"""The product docs describe the product as it is.

README.md, bench/README.md and every docs/*.md must not cite documents outside the repository
(``SPEC``, ``LIMITS.md``), must not narrate development history ("since <date>", "no longer",
"previously", session or issue numbers, ...), and every repository path they name must exist.
Dated benchmark result files (``bench/results/2026-12-06T1100.md``) are ordinary paths.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# (what, pattern): references to documents that are not part of the repository.
OUTSIDE_REFS: list[tuple[str, re.Pattern[str]]] = [
    ("SPEC", re.compile(r"\bSPEC\b")),
    # "the spec" as a document, not "the spec function" of api/paramdoc.py
    ("spec document", re.compile(r"\bspec\.md\b|\bthe spec(?:ification)?\b(?! function)", re.IGNORECASE)),
    ("LIMITS.md", re.compile(r"\bLIMITS\.md\b", re.IGNORECASE)),
    ("seeds directory", re.compile(r"(?<![\w.-])seeds?/")),
]

# (what, pattern): sentences that tell how the code changed instead of what it does.
HISTORY_MARKERS: list[tuple[str, re.Pattern[str]]] = [
    ("since <date>", re.compile(r"\bsince 20\d\d-\d\d-\d\d", re.IGNORECASE)),
    ("until <date>", re.compile(r"\buntil 20\d\d-\d\d", re.IGNORECASE)),
    ("before <date>", re.compile(r"\bbefore 20\d\d-\d\d-\d\d", re.IGNORECASE)),
    ("as of <date>", re.compile(r"\bas of 20\d\d-\d\d", re.IGNORECASE)),
    ("session/sprint number", re.compile(r"\b(?:session|sprint|iteration|milestone) #?\d+", re.IGNORECASE)),
    ("issue number", re.compile(r"\b(?:issue|ticket|PR|pull request) #?\d+", re.IGNORECASE)),
    ("written before/since", re.compile(r"\bwritten (?:before|since)\b", re.IGNORECASE)),
    # "used to" as in "it used to ...", not "is used to sign ..."
    ("used to", re.compile(r"(?<!\bis )(?<!\bare )(?<!\bbe )(?<!\bbeen )\bused to\b", re.IGNORECASE)),
    ("no longer", re.compile(r"\bno longer\b", re.IGNORECASE)),
    ("previously", re.compile(r"\bpreviously\b", re.IGNORECASE)),
    ("formerly", re.compile(r"\bformerly\b", re.IGNORECASE)),
    ("was changed", re.compile(r"\b(?:was|were|has been|have been) (?:changed|renamed|rewritten)\b", re.IGNORECASE)),
    ("is now", re.compile(r"\b(?:is|are) now\b", re.IGNORECASE)),
    ("version marker", re.compile(r"(?<![\w/.@-])v\d\b(?![\w/.@-])")),
]

PATH_PREFIXES = ("src/", "docs/", "bench/", "deploy/", "tests/", "workers/", ".ci/")
ROOT_FILES = {"README.md", "Makefile", "Dockerfile", "pyproject.toml"}
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
BARE_PATH = re.compile(r"(?<![\w/.-])((?:src|docs|bench|deploy|tests|workers|\.ci)/[\w./-]*\w\.[A-Za-z]\w*)")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) for every line outside fenced code blocks."""
    out: list[tuple[int, str]] = []
    fenced = False
    for no, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            out.append((no, line))
    return out


def find_outside_refs(text: str) -> list[tuple[int, str, str]]:
    """(line number, what, line) for every reference to a document outside the repository."""
    return [(no, what, line) for no, line in enumerate(text.splitlines(), 1)
            for what, pattern in OUTSIDE_REFS if pattern.search(line)]


def find_history(text: str) -> list[tuple[int, str, str]]:
    """(line number, what, line) for every development-history marker."""
    return [(no, what, line) for no, line in enumerate(text.splitlines(), 1)
            for what, pattern in HISTORY_MARKERS if pattern.search(line)]


def _clean(token: str) -> str | None:
    """The path a token names, without anchor, line suffix or trailing punctuation; None when it
    is a pattern (``*``, ``<...>``, ``…``) rather than one path."""
    token = token.split("#", 1)[0].rstrip(".,;:)")
    token = re.sub(r":\d+(?:-\d+)?$", "", token)
    if not token or any(c in token for c in "*<>{}…$"):
        return None
    return token


def _looks_like_repo_path(token: str) -> bool:
    return token.startswith(PATH_PREFIXES) or token in ROOT_FILES


MODULE_FILE = re.compile(r"^[a-z_][\w/]*\.(?:py|lua)$")
"""A path inside a package (``api/tail_routes.py``): it must exist in one of ``PACKAGE_ROOTS``."""
PACKAGE_ROOTS = ("src/eventstrata", "bench/eventstrata_bench", ".")
DOTTED = re.compile(r"^(eventstrata(?:_bench)?)((?:\.\w+)+)")
"""A dotted name in the product or the benchmark (``eventstrata.processes.api``, ``eventstrata.logs.X``)."""


def _dotted_exists(name: str, root: Path) -> bool:
    """Whether ``name``'s modules exist: each part is a package directory or a module file, until
    one is a module (what follows is an attribute), or a name its package's ``__init__`` holds."""
    m = DOTTED.match(name)
    assert m is not None
    path = root / ("src/eventstrata" if m.group(1) == "eventstrata" else "bench/eventstrata_bench")
    for part in m.group(2).strip(".").split("."):
        if (path / part).is_dir():
            path = path / part
            continue
        if (path / f"{part}.py").is_file():
            return True
        init = path / "__init__.py"
        return init.is_file() and part in init.read_text()
    return True


def find_missing_modules(text: str, root: Path = ROOT) -> list[tuple[int, str, str]]:
    """(line number, name, line) for every package path (``api/tail.py``) or dotted module name
    (``eventstrata.api.tail``) in inline code that names no module of the repository."""
    missing: list[tuple[int, str, str]] = []
    for no, line in _prose_lines(text):
        for code in INLINE_CODE.findall(line):
            for raw in code.replace("(", " ").replace(")", " ").split():
                word = raw.rstrip(".,;:")
                if MODULE_FILE.match(word) and not _looks_like_repo_path(word):
                    if "/" not in word:  # a bare file name: some module of that name
                        found = any(next((root / base).rglob(word), None) for base in PACKAGE_ROOTS[:2])
                    else:
                        found = any((root / base / word).exists() for base in PACKAGE_ROOTS)
                    if not found:
                        missing.append((no, word, line))
                elif DOTTED.match(word) and not _dotted_exists(word, root):
                    missing.append((no, word, line))
    return missing


def find_missing_paths(text: str, doc_dir: Path, root: Path = ROOT) -> list[tuple[int, str, str]]:
    """(line number, path, line) for every repository path the text names that does not exist.

    Inline code and bare words that look like repository paths are resolved against ``root``;
    relative markdown link targets against the document's own directory, as a renderer does."""
    missing: list[tuple[int, str, str]] = []
    for no, line in _prose_lines(text):
        candidates: list[tuple[str, Path]] = []
        for code in INLINE_CODE.findall(line):
            candidates += [(word, root) for word in code.split() if _looks_like_repo_path(word)]
        candidates += [(m, root) for m in BARE_PATH.findall(INLINE_CODE.sub("", line))]
        for target in LINK_TARGET.findall(line):
            if not re.match(r"^(?:[a-z]+:|#|/)", target):
                candidates.append((target, doc_dir))
        for token, base in candidates:
            path = _clean(token)
            if path is not None and not (base / path).exists():
                missing.append((no, path, line))
    return missing


def _report(doc: Path, found: list[tuple[int, str, str]]) -> str:
    rel = doc.relative_to(ROOT)
    return "\n".join(f"{rel}:{no}: {what}: {line.strip()[:160]}" for no, what, line in found)


@pytest.fixture(params=DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def doc(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def test_docs_exist() -> None:
    assert (ROOT / "README.md").is_file() and (ROOT / "bench" / "README.md").is_file()
    assert {p.name for p in DOCS} >= {"ARCHITECTURE.md", "API.md", "OPERATIONS.md"}


def test_no_references_outside_the_repository(doc: Path) -> None:
    found = find_outside_refs(doc.read_text())
    assert not found, "cites a document that is not in the repository:\n" + _report(doc, found)


def test_no_development_history(doc: Path) -> None:
    found = find_history(doc.read_text())
    assert not found, "describes history instead of the product as it is:\n" + _report(doc, found)


def test_named_paths_exist(doc: Path) -> None:
    found = find_missing_paths(doc.read_text(), doc.parent)
    assert not found, "names a path that does not exist:\n" + _report(doc, found)


def test_named_modules_exist(doc: Path) -> None:
    found = find_missing_modules(doc.read_text())
    assert not found, _report(doc, found)


def test_module_detector_flags_moved_modules_and_accepts_existing_ones() -> None:
    bad = "routes in `api/tail.py`; run `python -m eventstrata.stack.devstack` or `eventstrata.bench.probes`"
    assert [w for _, w, _ in find_missing_modules(bad)] == ["api/tail.py", "eventstrata.stack.devstack",
                                                          "eventstrata.bench.probes"]
    assert [w for _, w, _ in find_missing_modules("`nope_module.py`")] == ["nope_module.py"]
    good = ("`api/tail_routes.py`, `hotstore/write.lua`, `read.lua`, `eventstrata.processes.api`, "
            "`eventstrata.logs.QuietTransients`, `python -m eventstrata_bench.probes worker`")
    assert find_missing_modules(good) == []


def test_detectors_flag_bad_samples(tmp_path: Path) -> None:
    assert find_outside_refs("see SPEC §5")
    assert find_outside_refs("the figure comes from `LIMITS.md`")
    assert find_outside_refs("as the spec requires")
    assert find_history("Bodies written since 2026-12-02 use the split layout.")
    assert find_history("The worker previously wrote canonical bodies.")
    assert find_history("Since session 4 the reader no longer decodes bodies.")
    assert find_history("It used to read every shard.")
    assert [p for _, p, _ in find_missing_paths("see `docs/NOPE.md`", ROOT / "docs")] == ["docs/NOPE.md"]
    assert [p for _, p, _ in find_missing_paths("see [the table](NOPE.md#x)", ROOT / "docs")] == ["NOPE.md"]
    assert [p for _, p, _ in find_missing_paths("as docs/NOPE.md says", ROOT)] == ["docs/NOPE.md"]


def test_detectors_accept_good_samples() -> None:
    assert not find_outside_refs("OpenAPI entries come from signatures; the spec function is never called.")
    assert not find_history("The run of `bench/results/2026-12-06T1100.md`; a key is used to sign cursors.")
    assert not find_history("GET /v1/events, vegeta v12.12.0, `zstd-dict-2.bin`")
    ok = ("`docs/API.md`, [API](API.md#errors), `src/eventstrata/keys.py:10`, "
          "`tests/unit/test_compat_*.py`, `bench/results/<YYYY-MM-DD>-<host tag>.json`")
    assert not find_missing_paths(ok, ROOT / "docs")
    assert not find_missing_paths("```sh\ncat docs/NOPE.md\n```", ROOT)
