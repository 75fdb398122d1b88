"""The shared wording of ages, sizes and trends."""
import pytest

from bot.humanize import byte_size, duration, sparkline


@pytest.mark.parametrize("seconds,text", [(None, "?"), (-5, "0s"), (45, "45s"), (119, "119s"), (720, "12m"),
                                          (11_100, "3h05m"), (4 * 86400 + 7, "4d")])
def test_duration(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("n,text", [(None, "?"), (512, "512 B"), (3 * 1024**2, "3 MiB"), (2 * 1024**3, "2 GiB"),
                                    (5 * 1024**5, "5 PiB")])
def test_byte_size(n, text):
    assert byte_size(n) == text


def test_sparkline_scales_to_the_values_it_shows():
    # An old spike outside the last 24 points must not flatten the ones shown.
    assert sparkline([1000.0] + [1.0, 2.0] * 12) == "▁█" * 12
    assert sparkline([]) == "" and sparkline([5.0, 5.0]) == "▁▁"
