"""The three languages: who gets which, every text translated with the same placeholders, and dates in each."""

from __future__ import annotations

import ast
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot import i18n
from bot.domain import problems
from bot.domain.problems import Problem
from bot.domain.types import AccountingSystem, Country
from bot.i18n import Language, catalogue
from bot.slack_format import fill
from commands.approval.views import ApprovalAsk, dm_approved_blocks, dm_blocks, dm_text

PLACEHOLDER = re.compile(r"\{(\w*)\}")
TRANSLATED = [language for language in Language if language is not Language.EN]


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("nb-NO", Language.NB),
        ("nb", Language.NB),
        ("no", Language.NB),
        ("nn-NO", Language.NB),  # nynorsk readers read bokmål
        ("NB_no", Language.NB),
        ("sv-SE", Language.SV),
        ("sv-FI", Language.SV),
        ("sv_SE.UTF-8", Language.SV),
        ("en-US", Language.EN),
        ("en-GB", Language.EN),
        ("en", Language.EN),
        ("da-DK", None),
        ("fi-FI", None),
        ("de-DE", None),
        ("", None),
        (None, None),
        ("<script>", None),
    ],
)
def test_a_locale_names_our_language_or_none(locale, language):
    assert i18n.language_for_locale(locale) is language


def test_a_country_gives_its_language_and_the_rest_english():
    assert i18n.language_for_country(Country.NO) is Language.NB
    assert i18n.language_for_country("SE") is Language.SV
    assert i18n.language_for_country(Country.DK) is Language.EN
    assert i18n.language_for_country(Country.FI) is Language.EN
    assert i18n.language_for_country("XX") is Language.EN


def test_a_persons_own_locale_wins_over_their_companys_country():
    assert i18n.language_for_person("sv-SE", Country.NO) is Language.SV
    assert i18n.language_for_person("en-US", Country.NO) is Language.EN
    assert i18n.language_for_person(None, Country.NO) is Language.NB  # Slack did not say
    assert i18n.language_for_person("de-DE", Country.SE) is Language.SV  # none of ours
    assert i18n.language_for_person(None, Country.FI) is Language.EN


def test_accept_language_is_read_by_quality_then_order():
    assert i18n.accepted_languages("nb-NO,nb;q=0.9,no;q=0.8,en-US;q=0.6,en;q=0.5") == [Language.NB, Language.EN]
    assert i18n.accepted_languages("en;q=0.4, sv;q=0.9, de") == [Language.SV, Language.EN]
    assert i18n.accepted_languages("sv;q=0, *;q=0.1, fr") == []
    assert i18n.accepted_languages("sv;q=oops") == []
    assert i18n.accepted_languages(None) == []


@pytest.mark.parametrize(
    ("header", "preferred", "language"),
    [
        (None, Language.NB, Language.NB),  # the browser says nothing: the company's language
        ("de-DE,de", Language.NB, Language.NB),  # none of ours: the same
        ("en-US,en;q=0.9", Language.NB, Language.EN),  # English and not Norwegian: English
        ("en-US,en;q=0.9,nb;q=0.5", Language.NB, Language.NB),  # reads Norwegian too
        ("nb-NO", Language.SV, Language.NB),  # a Norwegian at a Swedish company
        ("fi,sv;q=0.8", Language.EN, Language.SV),  # a Finland Swede at a Finnish company
        (None, None, Language.EN),
        ("sv", None, Language.SV),
    ],
)
def test_a_pages_language_without_a_pick(header, preferred, language):
    assert i18n.negotiate(header, preferred=preferred) is language


# ------------------------------------------------------------------------------------------------ catalogues


@pytest.fixture(scope="module")
def extracted():
    return catalogue.extract()


@pytest.fixture(scope="module", params=TRANSLATED, ids=lambda language: language.value)
def translated(request):
    return request.param, catalogue.read(request.param)


def test_every_text_of_the_code_has_a_confirmed_translation(extracted, translated):
    language, catalog = translated
    wanted = {message.id for message in extracted if message.id}
    there = {message.id for message in catalog if message.id}
    assert wanted - there == set(), f"run `python -m bot.i18n.catalogue` and translate them into {language}"
    assert there - wanted == set(), "texts no longer in the code: run `python -m bot.i18n.catalogue`"
    untranslated = [message.id for message in catalog if message.id and not message.string]
    fuzzy = [message.id for message in catalog if message.id and message.fuzzy]
    assert untranslated == [], untranslated
    assert fuzzy == [], f"check these translations and drop their fuzzy flag: {fuzzy}"


def test_every_translation_keeps_the_placeholders_and_the_markup(translated):
    language, catalog = translated
    for message in catalog:
        if not message.id:
            continue
        original, text = str(message.id), str(message.string)
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(original)), (language, original)
        assert text.count("*") % 2 == 0, f"unbalanced *emphasis* in {language}: {text}"
        assert text.count("`") == original.count("`"), (language, original)
        assert text.format_map({name: "x" for name in PLACEHOLDER.findall(original)})  # formats as written
        assert text != original or original.startswith("Visma"), f"not translated into {language}: {original}"


def test_the_runtime_reads_the_same_catalogues():
    assert i18n.translate(Language.NB, "Continue to Visma") == "Fortsett til Visma"
    assert i18n.translate(Language.SV, "Continue to Visma") == "Fortsätt till Visma"
    assert i18n.translate(Language.EN, "Continue to Visma") == "Continue to Visma"
    assert i18n.translate(Language.SV, "Connect {company} to {firm}", company="A", firm="B") == "Koppla A till B"
    assert i18n.lookup(Language.NB, "a text nobody marked") == "a text nobody marked"  # shown in English


def test_every_marked_text_was_found_by_the_extractor(extracted):
    # The extractor reads tokens and can miss a call nested in another; this reads the syntax tree instead.
    found = {message.id for message in extracted if message.id}
    for package in ("bot", "commands"):
        for path in (catalogue.ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name | ast.Attribute):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                position = {"translate": 1, "N_": 0}.get(name)
                if position is None or len(node.args) <= position:
                    continue
                argument = node.args[position]
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    where = f"{path.relative_to(catalogue.ROOT)}:{node.lineno}"
                    assert argument.value in found, f"{where}: write this call on its own, not inside another"


def test_the_systems_names_are_in_the_catalogue(extracted):
    found = {message.id for message in extracted}
    assert {system.label for system in AccountingSystem} <= found
    assert i18n.system_label(AccountingSystem.EACCOUNTING, Language.NB) == "Visma eAccounting"
    assert i18n.system_label(AccountingSystem.EACCOUNTING, Language.SV) == "Visma eEkonomi"
    assert i18n.system_label("visma_net", Language.SV) == "Visma.net Financials"


# ------------------------------------------------------------------------------------------ dates and numbers


def test_dates_are_written_as_each_language_writes_them():
    day = date(2026, 12, 7)
    assert i18n.format_date(day, Language.NB) == "7. desember 2026"
    assert i18n.format_date(day, Language.SV) == "7 december 2026"
    assert i18n.format_date(day, Language.EN) == "7 Dec 2026"
    assert i18n.format_date(date(2026, 5, 17), Language.NB) == "17. mai 2026"


def test_a_moment_is_shown_in_the_readers_time_zone():
    late = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    assert i18n.format_date(late, Language.NB, tz="Europe/Oslo") == "25. november 2026"
    assert i18n.format_date(late, Language.NB) == "24. november 2026"  # UTC when no zone is known
    moment = datetime(2026, 11, 24, 13, 2, tzinfo=UTC)
    assert i18n.format_datetime(moment, Language.NB, tz="Europe/Oslo") == "24. november 2026 kl. 14:02"
    assert i18n.format_datetime(moment, Language.SV, tz="Europe/Stockholm") == "24 november 2026 kl. 14:02"
    assert i18n.format_datetime(moment, Language.EN, tz="Europe/London") == "24 Nov 2026 at 13:02"
    naive = datetime(2026, 11, 24, 13, 2)  # as SQLite gives it back: UTC
    assert i18n.format_datetime(naive, Language.SV, tz="Europe/Stockholm") == "24 november 2026 kl. 14:02"
    assert i18n.format_datetime(moment, Language.EN, tz="Not/AZone") == "24 Nov 2026 at 13:02"


def test_numbers_are_written_as_each_language_writes_them():
    assert i18n.format_number(12345.5, Language.EN) == "12,345.5"
    assert i18n.format_number(12345.5, Language.NB) == "12\xa0345,5"
    assert i18n.format_number(240, Language.SV) == "240"


# ------------------------------------------------------------------------------------------------- problems


def every_problem() -> list[Problem]:
    """One of each problem the classifiers give."""
    found = [problems.from_eaccounting(status=403, error_code=code, company="X") for code in problems._EACCOUNTING]
    found += [
        problems.from_eaccounting(status=429, error_code=4010, company="X"),
        problems.from_eaccounting(status=503, error_code=None, company="X"),
        problems.from_eaccounting(status=400, error_code=9999, company="X"),
        problems.consent_revoked(company="X"),
        problems.not_a_tenant_id(),
        problems.wrong_company(asked_for="X", got_name="Y", got_number="1"),
    ]
    found += [
        problems.from_business_nxt(status_name=name, status=status, company="X", client_id="isv_x")
        for name, status in (("AccessDenied", 200), (None, 401), ("Timeout", 200), ("Strange", 400))
    ]
    for code in [*problems._VISMA_NET, "invalid_grant", "invalid_client", "429", None]:
        found.append(problems.from_visma_net(status=500 if code is None else 400, code=code, company="X"))
    found.append(problems.from_visma_net(status=0, code=None, company="X"))
    found.append(problems.from_visma_net(status=404, code="odd", company="X"))
    for code in [*problems._VISMA_ERP, "429", "odd"]:
        found.append(problems.from_visma_erp(status=400, code=code, company="X", missing="m", got="g", asked="a"))
    return found


@pytest.mark.parametrize("language", TRANSLATED, ids=lambda language: language.value)
def test_every_problem_reads_in_each_language(language):
    for problem in every_problem():
        for template in (problem.what, problem.who, *problem.steps):
            shown = problem.plain(template, language)
            assert shown != problem.plain(template), (language, template)
            assert "{" not in shown
            assert "*" not in shown
        drawn = problem.in_language(language)
        assert (drawn.kind, drawn.code, drawn.values) == (problem.kind, problem.code, problem.values)
        assert fill(drawn.what, drawn.values) == fill(problem.text(problem.what, language), problem.values)


def test_a_problem_kept_in_english_is_drawn_in_norwegian_months_later():
    problem = problems.from_eaccounting(status=403, error_code=4007, company="Nordlys <Bakeri> AS")
    kept = Problem.from_facts(problem.facts())
    assert kept.facts()["what"] == problem.what  # what is stored stays the English template
    norwegian = kept.in_language(Language.NB)
    assert norwegian.plain(norwegian.who) == (
        "en bruker med full programtilgang i Nordlys <Bakeri> AS (Innstillinger → Rettigheter i eAccounting)"
    )
    assert "Nordlys &lt;Bakeri&gt; AS" in fill(norwegian.who, norwegian.values)
    assert kept.in_language(Language.EN) is kept
    assert kept.plain(kept.what) == "the user who approved does not have full program permission in the company"


def test_visma_erp_answers_with_its_own_name():
    problem = problems.from_visma_erp(status=503, code=None, company="X")
    assert problem.summary == "Visma ERP did not answer properly (HTTP 503)"
    assert problem.code == "Visma ERP 503"
    assert problem.plain(problem.what, Language.SV) == "Visma ERP svarade inte som det skulle (HTTP 503)"


# --------------------------------------------------------------------------------------------- the DM, drawn


def ask(language: Language, **overrides) -> ApprovalAsk:
    values = {
        "request_id": 1,
        "requester_name": "Kari Nordmann",
        "firm_name": "Fjordbris Regnskap",
        "company_name": "Nordlys Bakeri AS",
        "org_number": "988077917",
        "country": Country.NO,
        "system": AccountingSystem.EACCOUNTING,
        "link": "https://bot.example/approve/abc",
        "expires_at": datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
        "language": language,
        "tz": "Europe/Oslo",
    }
    return ApprovalAsk(**{**values, **overrides})


def shown(blocks) -> str:
    return str([block.to_dict() for block in blocks])


def test_the_dm_in_each_language():
    assert "Lenken virker til 7. desember 2026" in shown(dm_blocks(ask(Language.NB)))
    assert "Länken fungerar till 7 december 2026" in shown(dm_blocks(ask(Language.SV)))
    assert "<!date^" in shown(dm_blocks(ask(Language.EN)))  # Slack writes English dates in each reader's way
    assert (
        dm_text(ask(Language.SV))
        == "Kari Nordmann på Fjordbris Regnskap ber dig koppla Nordlys Bakeri AS i Visma eEkonomi"
    )
    assert dm_text(ask(Language.NB, requester_name="")).startswith("Regnskapsføreren din i Fjordbris Regnskap")
    approved = shown(
        dm_approved_blocks(
            company_name="A", at=datetime(2026, 11, 24, 13, 2, tzinfo=UTC), language=Language.NB, tz="Europe/Oslo"
        )
    )
    assert "*A* ble godkjent 24. november 2026 kl. 14:02" in approved


def test_the_pages_templates_have_no_untranslated_words():
    # Every text in a template goes through _("…"): what is left between tags is names, numbers and markup.
    templates = Path(i18n.__file__).parents[1] / "web" / "templates"
    for path in templates.glob("*.html"):
        source = re.sub(r"<style.*?</style>", "", path.read_text(), flags=re.DOTALL)
        source = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "", source, flags=re.DOTALL)
        loose = [text for text in re.sub(r"<[^>]+>", "\n", source).split("\n") if re.search(r"[A-Za-z]{2}", text)]
        assert loose == [], f"{path.name}: {loose}"
