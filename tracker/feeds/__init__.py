"""Feed ingestion: fetch (the one HTTP seam), parse (feedparser on bytes), refresh."""
