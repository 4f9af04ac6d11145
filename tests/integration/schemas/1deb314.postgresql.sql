-- The tables as taskfarm 1deb314 created them on PostgreSQL (metadata.create_all).
CREATE TABLE runs (
    id BIGSERIAL NOT NULL,
    uuid VARCHAR(64) NOT NULL,
    num_tasks BIGINT NOT NULL,
    lease_seconds INTEGER,
    max_attempts INTEGER,
    frontier BIGINT NOT NULL,
    num_computing BIGINT NOT NULL,
    num_done BIGINT NOT NULL,
    num_failed BIGINT NOT NULL,
    progress BIGINT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (uuid)
);

CREATE TABLE settings (
    name VARCHAR(64) NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (name)
);

CREATE TABLE users (
    id BIGSERIAL NOT NULL,
    username VARCHAR(64) NOT NULL,
    password_hash TEXT NOT NULL,
    token_stamp TEXT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (username)
);

CREATE TABLE workers (
    id BIGSERIAL NOT NULL,
    uuid VARCHAR(64) NOT NULL,
    hostname VARCHAR(255) NOT NULL,
    pid BIGINT NOT NULL,
    started TIMESTAMP WITH TIME ZONE NOT NULL,
    last_seen TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (uuid)
);

CREATE TABLE tasks (
    run_id BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    state VARCHAR(16) NOT NULL,
    progress BIGINT NOT NULL,
    worker_uuid VARCHAR(64),
    attempts BIGINT NOT NULL,
    lease_expires TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    PRIMARY KEY (run_id, idx),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE,
    CONSTRAINT task_state CHECK (state IN ('waiting', 'computing', 'done', 'failed'))
);

CREATE INDEX tasks_computing_by_lease ON tasks (lease_expires, worker_uuid) WHERE state = 'computing';

CREATE INDEX tasks_waiting_by_idx ON tasks (run_id, idx) WHERE state = 'waiting';
