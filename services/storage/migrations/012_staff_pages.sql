-- Issue 15 (staff pages): work-order changes and new supervision lights are NOTIFYed on
-- 'order_events', in the transaction that makes them, so every service process can push them
-- to the dispatch desk, the supervision board and the unit pages (services/agents/hub.py).
-- Only changes a waiting person sees: a new order, a new status or lead unit, an assisting
-- unit added, lights raised. Clock recomputations and other column updates stay quiet.
CREATE FUNCTION order_notify_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status
       OR NEW.lead_unit IS DISTINCT FROM OLD.lead_unit THEN
        PERFORM pg_notify('order_events', json_build_object(
            'kind', 'order', 'request_number', NEW.request_number, 'status', NEW.status,
            'lead_unit', NEW.lead_unit,
            'old_lead_unit', CASE WHEN TG_OP = 'UPDATE' THEN OLD.lead_unit END)::text);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER work_orders_order_notify AFTER INSERT OR UPDATE OF status, lead_unit
    ON work_orders FOR EACH ROW EXECUTE FUNCTION order_notify_change();

CREATE FUNCTION order_notify_assist() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('order_events', json_build_object(
        'kind', 'assist', 'request_number',
        (SELECT request_number FROM work_orders WHERE id = NEW.work_order_id),
        'unit', NEW.unit_code)::text);
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER work_order_assists_notify AFTER INSERT ON work_order_assists
    FOR EACH ROW EXECUTE FUNCTION order_notify_assist();

-- Lights: one NOTIFY per statement (a scan may raise thousands at once), naming the units.
CREATE FUNCTION order_notify_lights() RETURNS trigger AS $$
DECLARE
    raised bigint;
BEGIN
    SELECT count(*) INTO raised FROM new_lights;
    IF raised > 0 THEN
        PERFORM pg_notify('order_events', json_build_object(
            'kind', 'lights', 'count', raised,
            'units', (SELECT coalesce(json_agg(DISTINCT unit_code), '[]'::json)
                      FROM new_lights WHERE unit_code IS NOT NULL))::text);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER supervision_lights_notify AFTER INSERT ON supervision_lights
    REFERENCING NEW TABLE AS new_lights
    FOR EACH STATEMENT EXECUTE FUNCTION order_notify_lights();
