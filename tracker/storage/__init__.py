"""PostgreSQL storage: one module per table group, plain SQL through psycopg 3."""
