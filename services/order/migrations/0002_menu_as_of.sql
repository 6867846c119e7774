-- The event time of the menu in menu_items: an older menu never replaces a newer one, so the
-- replica converges whatever order its events are (re)delivered in (the kitchen's replica
-- follows the same rule: service_kit::replica).
ALTER TABLE restaurants ADD COLUMN menu_as_of timestamptz NOT NULL DEFAULT '-infinity';
