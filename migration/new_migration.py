#!/usr/bin/env python3
"""`make migrate-new NAME=add_projects`: a new migration file from the template,
registered at the end of the Migrator's list (the seed's `alembic revision`)."""

import re
import sys
from datetime import datetime, timezone
from pathlib import Path

SRC = Path(__file__).resolve().parent / "src"
TEMPLATE = '''//! {title}.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {{
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {{
        // Describe the change with `manager` (create_table, alter_table,
        // create_index, …); only the application's own tables, never better-auth's.
        let _ = manager;
        Ok(())
    }}

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {{
        // Undo exactly what `up` did.
        let _ = manager;
        Ok(())
    }}
}}
'''


def main():
    if len(sys.argv) != 2 or not re.fullmatch(r"[a-z][a-z0-9_]*", sys.argv[1]):
        sys.exit("usage: make migrate-new NAME=snake_case_name")
    name = sys.argv[1]
    module = f"m{datetime.now(timezone.utc):%Y%m%d_%H%M%S}_{name}"
    path = SRC / f"{module}.rs"
    path.write_text(TEMPLATE.format(title=name.replace("_", " ").capitalize()))
    lib = SRC / "lib.rs"
    text = lib.read_text()
    mods = re.findall(r"^mod m\d{8}_\d{6}_\w+;$", text, re.M)
    text = text.replace(mods[-1], f"{mods[-1]}\nmod {module};", 1)
    boxes = re.findall(r"Box::new\(m\d{8}_\d{6}_\w+::Migration\),?", text)
    last = boxes[-1]
    text = text.replace(last, f"{last.rstrip(',')}, Box::new({module}::Migration)", 1)
    lib.write_text(text)
    print(f"created {path.relative_to(SRC.parent.parent)} and registered it in migration/src/lib.rs")


if __name__ == "__main__":
    main()
