-- The kitchen service's own schema: its replica of restaurant menus and its tickets.

-- Restaurants as ftgo.restaurant.events tells them: what CreateTicket validates against, so
-- the kitchen never asks the restaurant service.
CREATE TABLE restaurants (
    id         uuid PRIMARY KEY,
    -- Null while only a MenuRevised has been seen (the replica keeps its menu anyway).
    name       text,
    -- The event time of the menu in menu_items: an older menu never replaces a newer one, so
    -- the replica converges whatever order its events are (re)delivered in.
    menu_as_of timestamptz NOT NULL DEFAULT '-infinity'
);

CREATE TABLE menu_items (
    restaurant_id uuid NOT NULL REFERENCES restaurants (id),
    item_id       text NOT NULL,
    name          text NOT NULL,
    PRIMARY KEY (restaurant_id, item_id)
);

-- A ticket per order: its id is the order's id.
CREATE TABLE tickets (
    order_id      uuid PRIMARY KEY,
    restaurant_id uuid NOT NULL,
    state         text NOT NULL CHECK (state IN ('CREATE_PENDING', 'AWAITING_ACCEPTANCE',
                      'ACCEPTED', 'PREPARING', 'READY_FOR_PICKUP', 'CANCEL_PENDING', 'CANCELLED')),
    -- The state a cancellation began from, where UndoBeginCancelTicket returns the ticket.
    before_cancel text CHECK (before_cancel IN ('AWAITING_ACCEPTANCE', 'ACCEPTED')),
    -- When the restaurant promised the food ready (AcceptTicket).
    ready_by      timestamptz,
    created_at    timestamptz NOT NULL,
    accepted_at   timestamptz,
    preparing_at  timestamptz,
    ready_at      timestamptz,
    cancelled_at  timestamptz,
    updated_at    timestamptz NOT NULL,
    CHECK ((state = 'CANCEL_PENDING') = (before_cancel IS NOT NULL))
);

CREATE TABLE ticket_line_items (
    order_id     uuid NOT NULL REFERENCES tickets (order_id),
    -- The line's position in the CreateTicket command (an item may appear on several lines).
    line_no      integer NOT NULL,
    menu_item_id text NOT NULL,
    -- The name the order gave, for the kitchen.
    name         text NOT NULL,
    quantity     integer NOT NULL CHECK (quantity >= 1),
    PRIMARY KEY (order_id, line_no)
);
