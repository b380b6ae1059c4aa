-- Program accounts (member_id 0: issued, redeemed, expired, adjusted,
-- returned) keep no running balance. Every earn of the program posts to
-- its issued account; a balance kept on that one row would make every
-- purchase of the program wait for the one before it on PostgreSQL, and
-- write one more page per purchase on SQLite. Their balance is the sum of
-- their postings; the column stays 0.
UPDATE accounts SET balance = 0 WHERE member_id = 0;
