\set r random(1, 100)
\set uid random(1, 1000)
\set i random(1, 20)
\if :r <= 35
SELECT id, name, description, owner_id, organization_id, is_active, created_at, updated_at FROM items WHERE owner_id = 'bench-user-' || :uid AND organization_id IS NULL ORDER BY created_at DESC, id DESC LIMIT 21;
\elif :r <= 70
SELECT id, name, description, owner_id, organization_id, is_active, created_at, updated_at FROM items WHERE id = md5('bench-item-' || :uid || '-' || :i)::uuid AND owner_id = 'bench-user-' || :uid AND organization_id IS NULL;
\elif :r <= 80
SELECT 1;
\else
INSERT INTO items (id, name, description, owner_id, is_active, created_at, updated_at) VALUES (gen_random_uuid(), 'bench item', 'created by pgbench', 'bench-user-' || :uid, true, now(), now());
\endif
