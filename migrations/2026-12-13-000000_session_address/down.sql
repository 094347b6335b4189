ALTER TABLE sessions DROP COLUMN ip_address;
