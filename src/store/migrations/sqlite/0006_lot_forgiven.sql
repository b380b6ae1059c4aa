-- Points a return forgave on a lot: under on_return_spent "clawback", a
-- return takes what the balance holds and forgives the rest, which the
-- member had already spent. When the spend that used them is cancelled,
-- those points come back to the lot, and the return takes them after all.
ALTER TABLE lots ADD COLUMN forgiven INTEGER NOT NULL DEFAULT 0
    CHECK (forgiven >= 0 AND forgiven <= amount);
