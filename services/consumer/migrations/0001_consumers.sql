-- Consumers and what they ordered, in the consumer service's own schema.
CREATE TABLE consumers (
    id                   uuid PRIMARY KEY,
    first_name           text NOT NULL,
    last_name            text NOT NULL,
    -- The most one order may total, per consumer: data rather than code, so an operator can
    -- raise or lower one consumer's limit without a release. 1,000.00 USD unless changed.
    order_limit_minor    bigint NOT NULL DEFAULT 100000 CHECK (order_limit_minor >= 0),
    order_limit_currency text NOT NULL DEFAULT 'USD',
    created_at           timestamptz NOT NULL DEFAULT now()
);

-- Every ValidateOrderByConsumer answered, one row per order: the consumer's order history, and
-- the answer a re-sent command for the same order gets again (whatever changed meanwhile).
CREATE TABLE order_validations (
    order_id       uuid PRIMARY KEY,
    -- No foreign key: a validation for an unknown consumer is recorded too.
    consumer_id    uuid NOT NULL,
    total_minor    bigint NOT NULL CHECK (total_minor >= 0),
    total_currency text NOT NULL,
    outcome        text NOT NULL
        CHECK (outcome IN ('VALIDATED', 'UNKNOWN_CONSUMER', 'ORDER_LIMIT_EXCEEDED')),
    -- Why it failed, as the reply said; NULL when validated.
    detail         text,
    validated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX order_validations_by_consumer ON order_validations (consumer_id, validated_at);
