"""Reading feeds, pure: fetch (the one HTTP seam), parse RSS, Atom and JSON Feed, sanitise, key
entries, schedule polls, discover feeds, OPML, ClaimReview and item languages. Bytes and values
in, values out: nothing here touches the database (tests/unit/test_architecture.py)."""
