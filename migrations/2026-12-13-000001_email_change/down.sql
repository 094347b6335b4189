ALTER TABLE email_tokens DROP COLUMN new_email;
