"""Organisation numbers: check digits per country (python-stdnum) and how people write them."""

from __future__ import annotations

from types import ModuleType

from stdnum import exceptions
from stdnum.dk import cvr
from stdnum.fi import ytunnus
from stdnum.no import orgnr as no_orgnr
from stdnum.se import orgnr as se_orgnr

from bot.domain.types import Country

_MODULES: dict[Country, ModuleType] = {
    Country.NO: no_orgnr,
    Country.SE: se_orgnr,
    Country.DK: cvr,
    Country.FI: ytunnus,
}

FORMAT_HINT = "9 digits in Norway, 10 in Sweden (556036-0793), 8 in Denmark, 1234567-8 in Finland"

_EXPECTED = {
    Country.NO: "9 digits, e.g. 988 077 917",
    Country.SE: "10 digits, e.g. 556036-0793",
    Country.DK: "8 digits, e.g. 13585628",
    Country.FI: "seven digits, a dash and a check digit, e.g. 2077474-0",
}


class InvalidOrgNumber(ValueError):
    """The organisation number is not valid for its country; the message is for people."""


def normalise(country: Country, value: str) -> str:
    """Validate `value` for `country` and return its compact form (digits only, FI keeps no dash)."""
    module = _MODULES[country]
    raw = value.strip()
    if not raw:
        raise InvalidOrgNumber("Enter the organisation number.")
    try:
        return str(module.validate(raw))
    except exceptions.InvalidChecksum:
        raise InvalidOrgNumber(
            f"{raw} is not a valid {country.adjective} organisation number: the check digit does not match. "
            "Check for a typo."
        ) from None
    except (exceptions.InvalidLength, exceptions.InvalidFormat, exceptions.InvalidComponent):
        raise InvalidOrgNumber(
            f"{raw} does not look like a {country.adjective} organisation number ({_EXPECTED[country]})."
        ) from None


def display(country: Country, compact: str) -> str:
    """The number as people in that country write it (988 077 917, 556036-0793, 2077474-0)."""
    module = _MODULES[country]
    # Danish CVR numbers are written as plain digits; stdnum has no formatter for them.
    return str(module.format(compact)) if hasattr(module, "format") else compact


def same_company(country: Country, compact: str, *, got_country: str | None, got_number: str | None) -> bool:
    """Whether what Visma reports (country code, organisation number as typed there) is this company.

    Digits alone are not enough: a Danish CVR can equal a Finnish business id (10000602 / 1000060-2).
    The country must match when Visma names one, and the number must be valid for that country.
    """
    if got_country and got_country.strip().upper() != country.value:
        return False
    try:
        return normalise(country, got_number or "") == compact
    except InvalidOrgNumber:
        return False
