"""Every document that a comment, a docstring or a Markdown page cites is in the repository.

Comments used to cite pages kept outside the repository, which no reader of a clone could open;
the facts they cite now live under docs/. Read: the comments and docstrings (every bare string
statement) of the Python files and the whole of the Markdown files in app/, connectors/, tests/,
bench/, migrations/ and docs/, README.md, and app/web/openapi.json (its descriptions are prose).

A citation is a relative path under `specs` or `docs` ending in `.md`, or the design or style page
at the root, with or without `.md` (the old comments named them in capitals). It is resolved from
the repository root. URLs are blanked out first, and a path that continues a longer one (a URL's
tail, a repository name ending in "docs") is not a citation. Sections cited right after a page
(`§1.2`, `§2 item 4`) must be numbered headings of that page.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("app", "connectors", "tests", "bench", "migrations")
PROSE_FILES = ("README.md", "app/web/openapi.json")

_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s<>`'\"()\[\]]+", re.IGNORECASE)
# Not preceded by what would make it the tail of a longer path, a URL or a name ("wix-rest-docs/…").
_NOT_CONTINUED = r"(?<![\w./-])"
_PATH = re.compile(_NOT_CONTINUED + r"((?:specs|docs)/[\w./-]*\.md)(?![\w-])")
_ROOT_PAGE = re.compile(_NOT_CONTINUED + r"(DESIGN|STYLE)(?:\.md)?(?![\w-])")
_SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)")
_HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
# A file without any of these cites nothing, and need not be tokenized.
_CANDIDATE = re.compile(r"specs/|docs/|DESIGN|STYLE")


def citations(text: str) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """(line offset in `text`, cited path, sections cited right after it) for each citation."""
    text = _URL.sub(lambda match: " " * len(match.group()), text)
    for match in _PATH.finditer(text):
        tail = re.split(r"[)\];\n]", text[match.end() :], maxsplit=1)[0]
        yield text.count("\n", 0, match.start()), match.group(1), tuple(_SECTION.findall(tail))
    for match in _ROOT_PAGE.finditer(text):
        yield text.count("\n", 0, match.start()), f"{match.group(1)}.md", ()


def _python_prose(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment and every bare string statement (docstrings included)."""
    source = path.read_text(encoding="utf-8")
    if not _CANDIDATE.search(source):
        return
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            # The string's own text (escapes resolved); its first line is the statement's line.
            yield node.lineno, node.value.value


def _prose() -> Iterator[tuple[Path, int, str]]:
    files = [ROOT / name for name in PROSE_FILES]
    for folder in (*CODE_DIRS, "docs"):
        files += (ROOT / folder).rglob("*.md")
    for path in sorted(files):
        yield path, 1, path.read_text(encoding="utf-8")
    for folder in CODE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, text in _python_prose(path):
                yield path, line, text


@functools.cache
def _cited() -> list[tuple[str, str, tuple[str, ...]]]:
    """(where, cited path, sections) for every citation in the repository's prose."""
    return [
        (f"{path.relative_to(ROOT)}:{line + offset}", cited, sections)
        for path, line, text in _prose()
        for offset, cited, sections in citations(text)
    ]


def _headings(page: Path) -> set[str]:
    return set(_HEADING.findall(page.read_text(encoding="utf-8")))


def test_every_cited_document_is_in_the_repository():
    missing = [f"{where}: {cited}" for where, cited, _ in _cited() if not (ROOT / cited).is_file()]
    assert missing == [], "cited documents that are not in the repository:\n" + "\n".join(missing)


def test_every_cited_section_is_a_numbered_heading_of_its_page():
    unknown = [
        f"{where}: {cited} §{section}"
        for where, cited, sections in _cited()
        if (ROOT / cited).is_file()
        for section in sections
        if section not in _headings(ROOT / cited)
    ]
    assert unknown == [], "cited sections that their page does not have:\n" + "\n".join(unknown)


def test_the_docs_pages_exist_and_are_cited():
    cited = {path for _, path, _ in _cited()}
    for page in (
        "docs/design.md",
        "docs/platforms/trustoo.md",
        "docs/platforms/wix.md",
        "docs/platforms/commercetools.md",
    ):
        assert (ROOT / page).is_file()
        assert page in cited, f"{page} is cited nowhere"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(docs/platforms/wix.md §1.1-§1.3, §3).", [(0, "docs/platforms/wix.md", ("1.1", "1.3", "3"))]),
        ("signed like this (specs/trustoo.md §2.4)", [(0, "specs/trustoo.md", ("2.4",))]),
        ("`docs/design.md` draws it; §5 is elsewhere", [(0, "docs/design.md", ())]),
        ("one line\nthe path, as DESIGN draws it", [(1, "DESIGN.md", ())]),
        ("see STYLE.md", [(0, "STYLE.md", ())]),
        ("https://dev.wix.com/docs/api-reference/reviews/create-review-request.md", []),
        ("<https://docs.commercetools.com/api/predicates/query.md>", []),
        ("`wix-incubator/wix-rest-docs/guides/Errors.md`, guides/DomainEvents.md", []),
        ("docs/screenshots/02-dashboard.png, mydocs/x.md, DESIGN_NOTES, STYLESHEET", []),
    ],
)
def test_citations_find_paths_and_leave_urls_alone(text, expected):
    assert list(citations(text)) == expected
