"""Keep the catalogues complete: extract every marked text and merge the new ones into each language's `.po`.

    .venv/bin/python -m bot.i18n.catalogue

Texts are marked as `translate(language, "…")` and `N_("…")` in the code and `_("…")` in the page templates.
New texts land in each `.po` file with an empty translation, changed ones as fuzzy (Babel's guess from the old
text, to be checked); texts no longer used are kept at the end as obsolete (`#~`). Then translate the empty and
fuzzy entries (Poedit, or any editor) and run tests/unit/test_i18n.py, which fails while one is missing.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, LOCALE_DIR, Language

# The directory holding the `bot` and `commands` packages (the repository, or site-packages).
ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"translate": (2,), "N_": None, "_": None}
# Per package, the files that hold texts and how to read them.
SOURCES = {
    "bot": [("web/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")],
    "commands": [("**.py", "python")],
}
COMMENT_TAGS = ["Translators:"]
LANGUAGES = [language for language in Language if language is not Language.EN]


def extract() -> Catalog:
    """Every marked text of the code and the templates, with where it is used."""
    template = Catalog(domain=DOMAIN, project="visma-onboarding-bot", charset="utf-8")
    for package, methods in SOURCES.items():
        found = extract_from_dir(
            ROOT / package, methods, keywords=KEYWORDS, comment_tags=COMMENT_TAGS, strip_comment_tags=True
        )
        for filename, lineno, message, comments, context in found:
            where = [(f"{package}/{filename}", lineno)]
            template.add(message, None, where, auto_comments=comments, context=context)
    return template


def path(language: Language) -> Path:
    """Where a language's catalogue is."""
    return LOCALE_DIR / language.value / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(language: Language) -> Catalog:
    """A language's catalogue as it is on disk."""
    with path(language).open("rb") as handle:
        return read_po(handle, locale=language.value, domain=DOMAIN)


def write(language: Language, catalog: Catalog) -> None:
    """Write a language's catalogue back."""
    with path(language).open("wb") as handle:
        write_po(handle, catalog, width=120, include_previous=True)


def main() -> None:
    """Merge the texts of the code into each catalogue and say what needs a translator."""
    template = extract()
    for language in LANGUAGES:
        catalog = read(language) if path(language).exists() else Catalog(locale=language.value, domain=DOMAIN)
        catalog.update(template)
        write(language, catalog)
        todo = [m for m in catalog if m.id and (not m.string or m.fuzzy)]
        print(f"{path(language).relative_to(ROOT)}: {len(catalog)} texts, {len(todo)} to translate or check")


if __name__ == "__main__":
    main()
