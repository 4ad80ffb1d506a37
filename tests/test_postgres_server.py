"""The PostgreSQL server the fleet tests use is there and empty per test (skips without one)."""

from __future__ import annotations


def test_each_test_gets_an_empty_database_of_its_own(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, connect_timeout=10) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        host = connection.execute("SELECT inet_server_addr()::text").fetchone()
    assert tables == (0,)
    assert host is not None
    assert host[0].startswith("127.0.0.1")
