-- The ticket follows the delivery: PICKED_UP once the courier has the food (DeliveryPickedUp).
ALTER TABLE tickets DROP CONSTRAINT tickets_state_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_state_check CHECK (state IN ('CREATE_PENDING',
    'AWAITING_ACCEPTANCE', 'ACCEPTED', 'PREPARING', 'READY_FOR_PICKUP', 'PICKED_UP',
    'CANCEL_PENDING', 'CANCELLED'));
ALTER TABLE tickets ADD COLUMN picked_up_at timestamptz;
