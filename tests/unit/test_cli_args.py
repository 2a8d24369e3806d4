"""A global option placed after the command gets a hint, not "No such option"."""

import pytest

from tracker.cli.main import misplaced_global
from tracker.cli.util import print_table, score


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


def test_a_table_has_a_header_and_aligned_columns(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(("id", "score", "title"), [(7, score(0.9996), "F-16s"), (12, score(0.5), "x")])
    assert capsys.readouterr().out.splitlines() == [
        "id  score  title",
        "7   0.999  F-16s",
        "12  0.500  x",
    ]
    print_table(("id", "title"), [])
    assert capsys.readouterr().out.splitlines() == ["id  title", "(none)"]
