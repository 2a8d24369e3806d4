"""A global option placed after the command gets a hint, not "No such option"."""

import pytest

from tracker.cli import misplaced_global


@pytest.mark.parametrize(
    ("argv", "found"),
    [
        (["up", "--data-dir", "/srv/rt"], ("--data-dir", "up")),
        (["feeds", "list", "--data-dir=/srv/rt"], ("--data-dir", "feeds")),
        (["--data-dir", "/srv/rt", "up", "--demo"], None),
        (["--data-dir=/srv/rt", "feeds", "list"], None),
        (["up", "--port", "8001"], None),
        (["--help"], None),
        ([], None),
    ],
)
def test_a_global_option_after_the_command_is_found(
    argv: list[str], found: tuple[str, str] | None
) -> None:
    assert misplaced_global(argv) == found
