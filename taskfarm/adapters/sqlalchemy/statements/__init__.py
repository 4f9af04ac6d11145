"""The SQL statements of runs and tasks, by what they act on; `SqlRunStore` runs each
operation's statements in one transaction (`Transactions`) or, for PostgreSQL's claims, one
statement on the event loop (`PgLoopClaims`)."""
