-- The tables as taskfarm 1deb314 created them on SQLite (metadata.create_all).
CREATE TABLE runs (
    id INTEGER NOT NULL,
    uuid VARCHAR(64) NOT NULL,
    num_tasks BIGINT NOT NULL,
    lease_seconds INTEGER,
    max_attempts INTEGER,
    frontier BIGINT NOT NULL,
    num_computing BIGINT NOT NULL,
    num_done BIGINT NOT NULL,
    num_failed BIGINT NOT NULL,
    progress BIGINT NOT NULL,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (uuid)
);

CREATE TABLE settings (
    name VARCHAR(64) NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (name)
);

CREATE TABLE users (
    id INTEGER NOT NULL,
    username VARCHAR(64) NOT NULL,
    password_hash TEXT NOT NULL,
    token_stamp TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (username)
);

CREATE TABLE workers (
    id INTEGER NOT NULL,
    uuid VARCHAR(64) NOT NULL,
    hostname VARCHAR(255) NOT NULL,
    pid BIGINT NOT NULL,
    started DATETIME NOT NULL,
    last_seen DATETIME NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (uuid)
);

CREATE TABLE tasks (
    run_id INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    state VARCHAR(16) NOT NULL,
    progress BIGINT NOT NULL,
    worker_uuid VARCHAR(64),
    attempts BIGINT NOT NULL,
    lease_expires DATETIME,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, idx),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE,
    CONSTRAINT task_state CHECK (state IN ('waiting', 'computing', 'done', 'failed'))
);

CREATE INDEX tasks_computing_by_lease ON tasks (lease_expires, worker_uuid) WHERE state = 'computing';

CREATE INDEX tasks_waiting_by_idx ON tasks (run_id, idx) WHERE state = 'waiting';
