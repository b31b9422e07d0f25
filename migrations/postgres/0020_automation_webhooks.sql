-- An automation whose trigger is `event` can take its events at a URL of its own,
-- `/hooks/automations/<token>`, for senders that cannot send the workspace's API key
-- (the token is stored hashed; the optional HMAC secret sealed, as deployments' are).
ALTER TABLE automations ADD COLUMN webhook_token_hash TEXT;
ALTER TABLE automations ADD COLUMN webhook_secret TEXT;
CREATE UNIQUE INDEX automations_by_webhook ON automations (webhook_token_hash);
