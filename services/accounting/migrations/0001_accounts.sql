-- Accounts and card authorizations, in the accounting service's own schema.
CREATE TABLE accounts (
    -- One account per consumer: opened from ConsumerCreated, so a second event for the same
    -- consumer finds it here and opens nothing.
    consumer_id                uuid PRIMARY KEY,
    -- The most one authorization may hold, per account: data rather than code, so an operator
    -- can change one account's limit without a release. 500.00 USD unless changed.
    authorization_limit_minor  bigint NOT NULL DEFAULT 50000
        CHECK (authorization_limit_minor >= 0),
    -- The card's currency: an amount in another one is declined (nothing is converted).
    currency                   text NOT NULL DEFAULT 'USD',
    opened_at                  timestamptz NOT NULL DEFAULT now()
);

-- Card authorizations that succeeded, at most one per order: a re-sent AuthorizeCard finds the
-- order's authorization here and answers with it instead of authorizing twice.
CREATE TABLE authorizations (
    id            uuid PRIMARY KEY,
    order_id      uuid NOT NULL UNIQUE,
    consumer_id   uuid NOT NULL REFERENCES accounts (consumer_id),
    amount_minor  bigint NOT NULL CHECK (amount_minor >= 0),
    currency      text NOT NULL,
    authorized_at timestamptz NOT NULL DEFAULT now(),
    -- Set once by ReverseAuthorization (the Cancel Order saga); NULL while the funds are held.
    reversed_at   timestamptz
);

CREATE INDEX authorizations_by_consumer ON authorizations (consumer_id, authorized_at);
