\set uid random(1, 1000)
\set n random(1, 2)
SELECT "items"."id", "items"."name", "items"."description", CAST("items"."owner_id" AS text) AS "owner_id", "items"."organization_id", "items"."is_active", "items"."created_at", "items"."updated_at" FROM "items" WHERE "items"."owner_id" = 'bench-user-' || :uid AND "items"."organization_id" IS NULL AND LOWER("items"."name") LIKE '%m ' || :n || '%' ESCAPE '\' ORDER BY "items"."created_at" DESC, "items"."id" DESC LIMIT 21 OFFSET 0;
