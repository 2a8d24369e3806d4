from tracker.pipeline.alerts import one_line


def test_item_titles_cannot_add_mail_headers() -> None:
    assert one_line("Breaking\r\nBcc: victim@example.com") == "Breaking Bcc: victim@example.com"


def test_long_titles_are_cut_with_an_ellipsis() -> None:
    assert one_line("x" * 300, limit=20) == "x" * 19 + "…"
