"""The approver's languages: Norwegian (bokmål), Swedish and English, chosen per reader, and dates in each.

Why gettext catalogues, read with Babel: the texts are whole sentences with names put in (`{company}`), written by
people who translate, not by programmers, and they grow with every Visma quirk the bot learns. gettext is the
format every translation tool (Poedit, Weblate, Lokalise) and translator knows; its message ids are the English
texts themselves, so the code reads as English, a text nobody has translated yet shows in English instead of
failing, and a Problem kept in the outbox as its English template (`Problem.facts()`) still finds its
translation when it is drawn again months later. The catalogues are plain `.po` files in `locale/`, read at
first use through Babel's `.po` parser into Python's own `gettext` (no compile step at install, no `.mo` files to
forget); Babel also brings CLDR's month names, so a date is "7. desember 2026", "7 december 2026" or
"7 Dec 2026". A small typed dict of strings would need none of this, but it would have to invent its own
answers to what gettext already answers: extraction of the texts from the code and the templates, untranslated
and fuzzy (needs review) entries, translator comments, plural forms.

Keeping them complete: `python -m bot.i18n.catalogue` extracts every text marked in the code (`translate(lang,
"…")`, `N_("…")`) and in the page templates (`_("…")`) and merges new ones into each `.po` file, empty;
tests/unit/test_i18n.py fails until each has a translation with the same `{placeholders}` and `*emphasis*`.

Which language a reader gets: see `language_for_locale`, `language_for_country` and `negotiate`.
"""

from __future__ import annotations

import functools
import gettext
import io
import re
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from bot.domain.types import AccountingSystem, Country

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"


class Language(StrEnum):
    """A language the approver's pages, DMs and the problem texts are written in."""

    EN = "en"
    NB = "nb"  # Norwegian bokmål
    SV = "sv"

    @property
    def native_name(self) -> str:
        """The language's name in itself, as a language switch shows it."""
        return _NATIVE[self]


_NATIVE = {Language.NB: "Norsk", Language.SV: "Svenska", Language.EN: "English"}
DEFAULT = Language.EN

# A locale's primary subtag to our language. "no" is what many systems say for Norwegian, and a nynorsk reader
# ("nn") reads bokmål every day; Danish and Finnish have no translation (yet) and fall through to the caller's
# default.
_PRIMARY = {"nb": Language.NB, "no": Language.NB, "nn": Language.NB, "sv": Language.SV, "en": Language.EN}
_COUNTRY = {Country.NO: Language.NB, Country.SE: Language.SV}


def N_(message: str) -> str:
    """Mark a text for the catalogue where it is written, to be translated where it is shown."""
    return message


def language_for_locale(locale: str | None) -> Language | None:
    """The language of a locale or language tag ("nb-NO", "no", "sv_SE", "en-US"), or None for one we do not
    write (Danish, German…) or for nothing at all."""
    if not locale:
        return None
    primary = re.split(r"[-_.@]", locale.strip().lower(), maxsplit=1)[0]
    return _PRIMARY.get(primary)


def language_for_country(country: Country | str) -> Language:
    """The language of a company's country: Norwegian for Norway, Swedish for Sweden, English for the rest."""
    try:
        return _COUNTRY.get(Country(country), DEFAULT)
    except ValueError:
        return DEFAULT


def language_for_person(locale: str | None, country: Country | str) -> Language:
    """A person's language: their own locale when it names one we write, else their company's country's."""
    return language_for_locale(locale) or language_for_country(country)


def accepted_languages(header: str | None) -> list[Language]:
    """Our languages in an Accept-Language header, the browser's favourite first (q=0 and `*` say nothing)."""
    ranked: list[tuple[float, int, Language]] = []
    for index, part in enumerate((header or "")[:1000].split(",")[:40]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = language_for_locale(tag)
        if language is not None and quality > 0:
            ranked.append((-quality, index, language))
    ordered: list[Language] = []
    for _, _, language in sorted(ranked):
        if language not in ordered:
            ordered.append(language)
    return ordered


def negotiate(accept_language: str | None, *, preferred: Language | None = None) -> Language:
    """A page's language when the visitor has not picked one: `preferred` (the company's country's language)
    unless the browser lists some of our languages but not that one, then the browser's favourite of them.

    So a Norwegian company's approver reads Norwegian when their browser says nothing or lists Norwegian anywhere
    (an English browser with Norwegian added included), and English when it asks for English and not Norwegian
    (a foreign CFO, say); the switch on every page changes it either way."""
    accepted = accepted_languages(accept_language)
    if preferred is not None and (not accepted or preferred in accepted):
        return preferred
    return accepted[0] if accepted else (preferred or DEFAULT)


@functools.cache
def _translations(language: Language) -> gettext.NullTranslations:
    if language is Language.EN:
        return gettext.NullTranslations()  # the message ids are the English texts
    path = LOCALE_DIR / language.value / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language.value, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # without fuzzy entries: a text nobody confirmed shows in English
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def lookup(language: Language, message: str) -> str:
    """A text in a language, as written in the catalogue (placeholders still in); English when untranslated."""
    return _translations(language).gettext(message)


def translate(language: Language, message: str, /, **values: Any) -> str:
    """A text in a language with its `{placeholders}` filled in as they are: plain text, for the caller to
    escape for where it goes (Jinja's autoescape, or values escaped before for Slack's mrkdwn)."""
    return lookup(language, message).format_map(values)


# The systems' names as AccountingSystem.label has them, so that the catalogue holds them (a test checks they
# agree): eAccounting is sold as Visma eAccounting in Norway and as Visma eEkonomi in Sweden.
_SYSTEM_NAMES = (
    N_("Visma eAccounting / eEkonomi"),
    N_("Visma.net Financials"),
    N_("Visma Business NXT"),
    N_("Visma ERP"),
)


def system_label(system: AccountingSystem | str, language: Language) -> str:
    """An accounting system's name as the reader's country knows it."""
    return lookup(language, AccountingSystem(system).label)


# ------------------------------------------------------------------------------------------ dates and numbers

_DATE = {Language.EN: "d MMM y", Language.NB: "d. MMMM y", Language.SV: "d MMMM y"}
_DATETIME = {
    Language.EN: "d MMM y 'at' HH:mm",
    Language.NB: "d. MMMM y 'kl.' HH:mm",
    Language.SV: "d MMMM y 'kl.' HH:mm",
}


def zone(name: str | None) -> ZoneInfo:
    """A time zone by name; UTC for none or one this machine does not know."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # the store keeps UTC


def format_date(value: date | datetime, language: Language, *, tz: str | None = None) -> str:
    """A date as the language writes it: "7. desember 2026", "7 december 2026", "7 Dec 2026" (a moment is
    first put in the time zone `tz`, UTC when none)."""
    if isinstance(value, datetime):
        value = _aware(value).astimezone(zone(tz)).date()
    return _babel_date(value, _DATE[language], locale=language.value)


def format_datetime(value: datetime, language: Language, *, tz: str | None = None) -> str:
    """A moment in the time zone `tz` (UTC when none): "24. november 2026 kl. 14:02", "24 november 2026 kl.
    14:02", "24 Nov 2026 at 14:02"."""
    return _babel_datetime(_aware(value), _DATETIME[language], tzinfo=zone(tz), locale=language.value)


def format_number(value: float, language: Language) -> str:
    """A number as the language writes it: "12 345" (with a no-break space) in Norwegian and Swedish, "12,345"
    in English."""
    return format_decimal(value, locale=language.value)
