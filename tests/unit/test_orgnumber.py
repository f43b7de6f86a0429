import pytest

from bot.domain.orgnumber import InvalidOrgNumber, display, normalise
from bot.domain.types import Country


@pytest.mark.parametrize(
    ("country", "raw", "compact", "shown"),
    [
        (Country.NO, "988 077 917", "988077917", "988 077 917"),
        (Country.SE, "556036-0793", "5560360793", "556036-0793"),
        (Country.DK, "13585628", "13585628", "13585628"),
        (Country.FI, "2077474-0", "20774740", "2077474-0"),
    ],
)
def test_valid_numbers_are_compacted_and_shown_the_local_way(country, raw, compact, shown):
    assert normalise(country, raw) == compact
    assert display(country, compact) == shown


@pytest.mark.parametrize(
    ("country", "raw", "says"),
    [
        (Country.NO, "988077918", "check digit"),
        (Country.DK, "13585627", "check digit"),
        (Country.FI, "2077474-1", "check digit"),
        (Country.NO, "12345", "9 digits"),
        (Country.SE, "abc", "10 digits"),
        (Country.NO, "  ", "Enter the organisation number"),
    ],
)
def test_invalid_numbers_explain_themselves(country, raw, says):
    with pytest.raises(InvalidOrgNumber, match=says):
        normalise(country, raw)


def test_a_swedish_number_is_not_a_norwegian_one():
    with pytest.raises(InvalidOrgNumber, match="Norwegian"):
        normalise(Country.NO, "5560360793")
