import pytest

from bot.domain import problems
from bot.domain.problems import Fix, ProblemKind


@pytest.mark.parametrize(
    ("code", "kind", "fix"),
    [
        (4007, ProblemKind.NO_FULL_PERMISSION, Fix.NEW_LINK),
        (4002, ProblemKind.NO_BOOKKEEPING, Fix.RETRY),
        (4009, ProblemKind.PRODUCT_VARIANT, Fix.RETRY),
        (4006, ProblemKind.SCOPE_MISSING, Fix.NEW_LINK),
        (4011, ProblemKind.NO_USER_ACCESS, Fix.NEW_LINK),
        (4012, ProblemKind.LICENCE_NOT_ACCEPTED, Fix.RETRY),
    ],
)
def test_eaccounting_permission_codes_name_the_cause_and_the_fix(code, kind, fix):
    problem = problems.from_eaccounting(status=403, error_code=code, company="Nordlys Bakeri AS")
    assert (problem.kind, problem.fix, problem.code) == (kind, fix, f"eAccounting {code}")
    assert problem.is_permission
    assert problem.steps


def test_the_company_is_named_in_who_can_fix_it():
    problem = problems.from_eaccounting(status=403, error_code=4007, company="Nordlys Bakeri AS")
    assert "Nordlys Bakeri AS" in problem.plain(problem.who)
    assert "full program permission" in problem.plain(problem.who)


def test_rate_limit_and_outage_are_not_permission_problems():
    limited = problems.from_eaccounting(status=429, error_code=4010, company="X")
    down = problems.from_eaccounting(status=503, error_code=5001, company="X")
    assert (limited.kind, limited.fix, limited.is_permission) == (ProblemKind.RATE_LIMITED, Fix.WAIT, False)
    assert (down.kind, down.fix, down.is_permission) == (ProblemKind.OUTAGE, Fix.WAIT, False)


def test_a_401_means_the_consent_is_gone():
    problem = problems.from_eaccounting(status=401, error_code=None, company="X")
    assert problem.kind is ProblemKind.CONSENT_REVOKED
    assert problem.fix is Fix.NEW_LINK


def test_wrong_company_explains_the_default_company():
    problem = problems.wrong_company(asked_for="Nordlys Bakeri AS", got_name="Feil Firma AS", got_number="923 609 016")
    assert "Feil Firma AS" in problem.summary
    assert "default company" in problem.summary
    assert any("default" in step for step in problem.steps)


def test_an_unfinished_startup_guide_and_an_inactive_company_are_for_the_client_to_fix():
    guide = problems.from_eaccounting(status=403, error_code=4003, company="Nordlys Bakeri AS")
    inactive = problems.from_eaccounting(status=403, error_code=4004, company="Nordlys Bakeri AS")
    assert guide.is_permission
    assert "start-up guide" in guide.summary
    assert inactive.is_permission
    assert "no longer active" in inactive.summary
