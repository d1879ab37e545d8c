-- 0006: what the viewer web app (netflix_assets/web) needs: a password per account (an argon2id
-- hash in PHC string form; NULL means the account cannot sign in on the web) and the playback
-- streams it has authorized, so the plan's concurrent-stream limit holds across app processes.
ALTER TABLE product.accounts
    ADD COLUMN password_hash text
        CONSTRAINT accounts_password_hash_argon2 CHECK (password_hash ~ '^\$argon2id\$');

-- One row per authorized playback; a stream counts against the plan while its lease
-- (renewed by the player's heartbeats) has not expired, and ends when the player stops.
CREATE TABLE product.playback_streams (
    stream_id      text PRIMARY KEY,
    account_id     text NOT NULL REFERENCES product.accounts (account_id) ON DELETE CASCADE,
    profile_id     text NOT NULL REFERENCES product.profiles (profile_id) ON DELETE CASCADE,
    title_id       text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    lease_until    timestamptz NOT NULL,
    ended_at       timestamptz,
    CONSTRAINT playback_streams_lease_after_start CHECK (lease_until >= started_at)
);
CREATE INDEX playback_streams_account_live ON product.playback_streams (account_id, lease_until)
    WHERE ended_at IS NULL;
