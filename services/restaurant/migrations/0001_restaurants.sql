-- Restaurants and their menus, in the restaurant service's own schema.
CREATE TABLE restaurants (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    -- The address as the CreateRestaurant command gave it (JSON of the Avro record).
    address      jsonb NOT NULL,
    -- Bumped by every revision of the menu.
    menu_version integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE menu_items (
    restaurant_id uuid NOT NULL REFERENCES restaurants (id),
    item_id       text NOT NULL,
    name          text NOT NULL,
    price_minor   bigint NOT NULL CHECK (price_minor >= 0),
    currency      text NOT NULL,
    PRIMARY KEY (restaurant_id, item_id)
);
