-- The order service's own schema: orders, and the replica of restaurants and menus it prices
-- and validates orders with (built from ftgo.restaurant.events; never asked synchronously).
-- The saga instances, the outbox and the inbox are created by the outbox crate.

CREATE TABLE restaurants (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE menu_items (
    restaurant_id uuid NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    item_id       text NOT NULL,
    name          text NOT NULL,
    price_minor   bigint NOT NULL,
    currency      text NOT NULL,
    PRIMARY KEY (restaurant_id, item_id)
);

CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    consumer_id      uuid NOT NULL,
    restaurant_id    uuid NOT NULL,
    state            text NOT NULL CHECK (state IN
                         ('APPROVAL_PENDING', 'APPROVED', 'REJECTED', 'CANCEL_PENDING', 'CANCELLED')),
    -- Unknown when the order was rejected before it could be priced.
    total_minor      bigint,
    currency         text,
    -- The priced lines (JSON of OrderCreated's lineItems), or the requested ones if rejected.
    line_items       jsonb NOT NULL,
    delivery_address jsonb NOT NULL,
    -- Milliseconds since the epoch, as the command said.
    delivery_time    bigint NOT NULL,
    rejection_reason text,
    rejection_detail text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
