"""The limits of what runs, tasks and workers may be: one place, for every store and the API."""

from __future__ import annotations

#: The largest run: task indices stay exact in every JSON parser (IEEE doubles), and in the
#: numbers of Redis' Lua scripts.
MAX_TASKS = 2**53
#: The most tasks one request may claim, and one batch of claims takes to the store: enough
#: to amortise a round trip, small enough that one greedy worker cannot empty a run at once.
MAX_CLAIM_COUNT = 1000
#: The longest uuid of a run or a worker: a column's width in SQL, a key's part in Redis.
MAX_UUID_LENGTH = 64
MAX_HOSTNAME_LENGTH = 255
MAX_PID = 2**63 - 1
#: The most task indices one request may name (a retry of chosen tasks): one transaction's
#: worth, acted on at once.
MAX_INDICES_PER_REQUEST = 10_000
