-- The delivery service's own schema: couriers, what it learnt of orders and tickets, and the
-- deliveries it scheduled.

CREATE TABLE couriers (
    id        uuid PRIMARY KEY,
    name      text NOT NULL,
    -- On duty: only available couriers are assigned deliveries.
    available boolean NOT NULL DEFAULT true
);

-- A fixed crew, so every environment (and every test database) has the same couriers.
INSERT INTO couriers (id, name) VALUES
    ('c0000000-0000-4000-8000-000000000001', 'Ada Okafor'),
    ('c0000000-0000-4000-8000-000000000002', 'Bruno Silva'),
    ('c0000000-0000-4000-8000-000000000003', 'Chen Wei'),
    ('c0000000-0000-4000-8000-000000000004', 'Dana Kowalski'),
    ('c0000000-0000-4000-8000-000000000005', 'Emeka Nwosu');

-- What a delivery needs of an order, from OrderCreated.
CREATE TABLE orders (
    order_id         uuid PRIMARY KEY,
    restaurant_id    uuid NOT NULL,
    -- The address as the event gave it (JSON of the Avro record).
    delivery_address jsonb NOT NULL,
    -- When the consumer wants the food.
    delivery_time    timestamptz NOT NULL
);

-- The kitchen's acceptance of an order's ticket (the first one: a delivery is scheduled once).
-- Kept apart from `orders` because it may arrive first: the two topics are consumed
-- independently.
CREATE TABLE accepted_tickets (
    order_id      uuid PRIMARY KEY,
    restaurant_id uuid NOT NULL,
    ready_by      timestamptz NOT NULL,
    accepted_at   timestamptz NOT NULL
);

-- Orders whose order or ticket was cancelled: no delivery is ever scheduled for them, whatever
-- arrives later (an OrderCancelled may overtake the TicketAccepted on the other topic).
CREATE TABLE cancelled_orders (
    order_id     uuid PRIMARY KEY,
    -- The event that said so first: OrderCancelled or TicketCancelled.
    cancelled_by text NOT NULL,
    cancelled_at timestamptz NOT NULL
);

-- One delivery per order, ever.
CREATE TABLE deliveries (
    order_id         uuid PRIMARY KEY,
    restaurant_id    uuid NOT NULL,
    delivery_address jsonb NOT NULL,
    delivery_time    timestamptz NOT NULL,
    ready_by         timestamptz NOT NULL,
    state            text NOT NULL CHECK (state IN ('SCHEDULED', 'CANCELLED')),
    -- Null while no courier is available; kept after a cancellation, for the record (the
    -- courier is free again: only SCHEDULED deliveries count as theirs).
    courier_id       uuid REFERENCES couriers (id),
    scheduled_at     timestamptz NOT NULL,
    assigned_at      timestamptz,
    cancelled_at     timestamptz
);

-- A courier's active deliveries, counted at every assignment.
CREATE INDEX deliveries_active_by_courier ON deliveries (courier_id) WHERE state = 'SCHEDULED';
