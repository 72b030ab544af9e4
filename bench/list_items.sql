\set uid random(1, 1000)
SELECT id, name, description, owner_id, is_active, created_at, updated_at FROM items WHERE owner_id = 'bench-user-' || :uid ORDER BY created_at DESC, id DESC LIMIT 20 OFFSET 0;
