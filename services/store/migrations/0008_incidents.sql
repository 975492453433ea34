-- Incidents (CONTRACT section 9): what the stream decided about each report's incident
-- membership, next to its exemption and verification. ``incident``: the incident a
-- violation belongs to ('' for none); ``event``: the report counts as an event (an
-- incident, or a violation in no incident); ``sources``: the organisations behind the
-- event (an incident's current members' organisations; 1 for a lone violation).
-- Rows written before incidents existed were lone violations or no events at all.
ALTER TABLE canonical_reports ADD COLUMN IF NOT EXISTS incident String DEFAULT '' AFTER verification;
ALTER TABLE canonical_reports ADD COLUMN IF NOT EXISTS event Bool DEFAULT kind = 'violation' AFTER incident;
ALTER TABLE canonical_reports ADD COLUMN IF NOT EXISTS sources UInt32 DEFAULT toUInt32(kind = 'violation') AFTER event;
