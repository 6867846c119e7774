-- The courier's part: a delivery is picked up once the kitchen marked the food ready
-- (TicketReadyForPickup), then delivered.
ALTER TABLE accepted_tickets ADD COLUMN ready_at timestamptz;

ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('SCHEDULED', 'PICKED_UP', 'DELIVERED', 'CANCELLED'));
ALTER TABLE deliveries ADD COLUMN picked_up_at timestamptz;
ALTER TABLE deliveries ADD COLUMN delivered_at timestamptz;

-- A courier's active deliveries (scheduled or on the way), counted at every assignment.
DROP INDEX deliveries_active_by_courier;
CREATE INDEX deliveries_active_by_courier ON deliveries (courier_id)
    WHERE state IN ('SCHEDULED', 'PICKED_UP');
