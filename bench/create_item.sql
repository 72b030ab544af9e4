\set uid random(1, 1000)
INSERT INTO items (id, name, description, owner_id, is_active, created_at, updated_at) VALUES (gen_random_uuid(), 'bench item', 'created by pgbench', 'bench-user-' || :uid, true, now(), now());
