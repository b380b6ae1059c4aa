-- Fewer index pages written per purchase. Every index keyed by member puts
-- one more page, on a random spot of its tree, into each commit; a purchase
-- wrote seven such pages, and on SQLite those pages are most of a commit's
-- cost.
--
-- No query reads the events or the entries of a member by these two: a
-- member's activity goes through its accounts and their postings.
DROP INDEX events_member_idx;
DROP INDEX entries_member_idx;

-- Pending lots of a member: only lots that were pending when they were
-- recorded (available later than created) are ever pending, so only those
-- are indexed, and a program without pending days writes no entry here.
DROP INDEX lots_pending_idx;
CREATE INDEX lots_pending_idx ON lots (program_id, member_id, asset, available_at)
    WHERE remaining > 0 AND available_at > created_at;
