//! `saas-api generate resource NAME field:type… [--singular S] [--root DIR]`:
//! writes a scoped resource on the resource kit, the way
//! `cargo loco generate scaffold` does for loco.
//!
//! `NAME` is the plural, snake_case (`projects`): the path
//! (`/api/v1/projects`), the table, the API-key permission resource and the
//! OpenAPI tag. Field types:
//!
//! - `string`: required, 1–255 characters once trimmed (stored trimmed);
//! - `text`: optional (null clears it), at most 65,535 characters;
//! - `bool`: optional on create (default false).
//!
//! It writes five files — the domain record (`crates/domain/src/<singular>.rs`,
//! with unit tests on mockall fakes), its table (`crates/infra/src/<singular>.rs`:
//! the entity and the `ScopedTable` mapping), the migration (owner and
//! organization columns and both keyset indexes), the API
//! (`crates/api/src/resources/<name>.rs`: JSON, bodies, OpenAPI) and its
//! black-box tests (`tests/api/<name>.rs`: the kit's contract on every
//! backend) — and registers them at the `saas-api generate:` marks of five
//! more (the three crates' module lists, `crates/api/src/resources.rs` and
//! `tests/api/main.rs`). Then `make client` regenerates the TypeScript
//! client. Nothing is written when any check fails; nothing existing is
//! overwritten.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Required short text.
    String,
    /// Optional long text.
    Text,
    /// Boolean, false by default.
    Bool,
}

/// One field of the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// snake_case, as JSON and the column name it.
    pub name: String,
    /// Its type.
    pub kind: Kind,
}

impl Field {
    fn camel(&self) -> String {
        camel(&self.name)
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The plural, snake_case (`projects`).
    pub plural: String,
    /// The singular, snake_case (`project`): the module names.
    pub singular: String,
    /// Its fields, in order.
    pub fields: Vec<Field>,
}

/// Names a resource or field may not take.
const RESERVED: &[&str] = &[
    "id",
    "owner_id",
    "organization_id",
    "created_at",
    "updated_at",
    "items",
    "item",
    "users",
    "user",
    "organizations",
    "organization",
    "health",
    "metrics",
    "docs",
    "self",
    "super",
    "crate",
    "type",
    "struct",
    "enum",
    "fn",
    "mod",
    "impl",
    "trait",
    "match",
    "move",
    "ref",
    "loop",
    "where",
    "async",
    "await",
    "dyn",
    "use",
    "pub",
    "let",
    "const",
    "static",
    "return",
    "in",
    "for",
    "if",
    "else",
    "while",
    "true",
    "false",
    "box",
    "abstract",
    "final",
    "override",
    "priv",
    "try",
    "yield",
    "gen",
    "macro",
    "virtual",
    "unsafe",
    "extern",
    "as",
    "break",
    "continue",
    "do",
    "typeof",
    "unsized",
    "become",
];

fn snake_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && word.len() <= 40
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !word.ends_with('_')
        && !word.contains("__")
}

fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The singular of an English plural, for the common endings.
fn singular_of(plural: &str) -> Option<String> {
    if let Some(stem) = plural.strip_suffix("ies") {
        return Some(format!("{stem}y"));
    }
    for ending in ["sses", "xes", "ches", "shes"] {
        if plural.ends_with(ending) {
            return Some(plural[..plural.len() - 2].to_owned());
        }
    }
    plural
        .strip_suffix('s')
        .filter(|stem| !stem.ends_with('s'))
        .map(str::to_owned)
}

/// Parses `NAME field:type… [--singular S]` (the words after `generate resource`).
///
/// # Errors
/// One line saying what is wrong.
pub fn parse(words: &[&str]) -> Result<(Resource, Option<PathBuf>), String> {
    let mut words = words.iter().copied();
    let plural = words
        .next()
        .ok_or("name the resource: saas-api generate resource projects title:string")?;
    if !snake_identifier(plural) || RESERVED.contains(&plural) {
        return Err(format!(
            "`{plural}` cannot name a resource: use a snake_case plural (a-z, 0-9, _), not a reserved word"
        ));
    }
    let (mut singular, mut root, mut fields) = (None, None, Vec::<Field>::new());
    while let Some(word) = words.next() {
        match word {
            "--singular" => singular = Some(words.next().ok_or("--singular needs a value")?.to_owned()),
            "--root" => root = Some(PathBuf::from(words.next().ok_or("--root needs a value")?)),
            field => {
                let (name, kind) = field
                    .split_once(':')
                    .ok_or_else(|| format!("`{field}`: write a field as name:type"))?;
                let kind = match kind {
                    "string" => Kind::String,
                    "text" => Kind::Text,
                    "bool" => Kind::Bool,
                    other => return Err(format!("`{other}` is not a field type: string, text or bool")),
                };
                if !snake_identifier(name) || RESERVED.contains(&name) {
                    return Err(format!(
                        "`{name}` cannot name a field: use snake_case, not a reserved or server-set name"
                    ));
                }
                if fields.iter().any(|f| f.name == name) {
                    return Err(format!("field `{name}` is given twice"));
                }
                fields.push(Field {
                    name: name.to_owned(),
                    kind,
                });
            }
        }
    }
    if fields.iter().all(|f| f.kind == Kind::Bool) {
        return Err("give the resource at least one string or text field: title:string".into());
    }
    let singular = match singular {
        Some(s) => s,
        None => singular_of(plural)
            .ok_or_else(|| format!("cannot tell the singular of `{plural}`: say it with --singular"))?,
    };
    if !snake_identifier(&singular) || RESERVED.contains(&singular.as_str()) || singular == plural {
        return Err(format!("`{singular}` cannot be the singular of `{plural}`"));
    }
    Ok((
        Resource {
            plural: plural.to_owned(),
            singular,
            fields,
        },
        root,
    ))
}

/// A file to write or a registration to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// A new file (it must not exist).
    Create {
        /// Relative to the repository.
        path: String,
        /// Its text.
        text: String,
    },
    /// `line` inserted before the line holding `mark` (kept indented as it).
    Insert {
        /// Relative to the repository.
        path: String,
        /// The marker (`saas-api generate: … above this line`).
        mark: &'static str,
        /// The line, without indentation.
        line: String,
    },
}

impl Resource {
    /// The quoted names of the fields of `kind`, comma-separated.
    fn names_of(&self, kind: Kind) -> String {
        let names: Vec<String> = self
            .fields
            .iter()
            .filter(|field| field.kind == kind)
            .map(|field| format!("\"{}\"", field.name))
            .collect();
        names.join(", ")
    }

    fn type_name(&self) -> String {
        camel(&self.singular)
    }

    fn text_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.kind != Kind::Bool)
    }

    /// Every file and registration, for a migration stamped `stamp`
    /// (`YYYYMMDD_HHMMSS`).
    pub fn edits(&self, stamp: &str) -> Vec<Edit> {
        let (plural, singular, ty) = (&self.plural, &self.singular, self.type_name());
        let migration = format!("m{stamp}_create_{plural}");
        vec![
            Edit::Create {
                path: format!("crates/domain/src/{singular}.rs"),
                text: self.domain(),
            },
            Edit::Insert {
                path: "crates/domain/src/lib.rs".into(),
                mark: "saas-api generate: modules above this line",
                line: format!("pub mod {singular};"),
            },
            Edit::Create {
                path: format!("crates/infra/src/{singular}.rs"),
                text: self.infra(),
            },
            Edit::Insert {
                path: "crates/infra/src/lib.rs".into(),
                mark: "saas-api generate: modules above this line",
                line: format!("pub mod {singular};"),
            },
            Edit::Create {
                path: format!("migration/src/{migration}.rs"),
                text: self.migration(),
            },
            Edit::Insert {
                path: "migration/src/lib.rs".into(),
                mark: "saas-api generate: migration modules above this line",
                line: format!("mod {migration};"),
            },
            Edit::Insert {
                path: "migration/src/lib.rs".into(),
                mark: "saas-api generate: migrations above this line",
                line: format!("Box::new({migration}::Migration),"),
            },
            Edit::Create {
                path: format!("crates/api/src/resources/{plural}.rs"),
                text: self.api(),
            },
            Edit::Insert {
                path: "crates/api/src/resources.rs".into(),
                mark: "saas-api generate: modules above this line",
                line: format!("pub mod {plural};"),
            },
            Edit::Insert {
                path: "crates/api/src/resources.rs".into(),
                mark: "saas-api generate: routes above this line",
                line: format!("mount::<domain::{singular}::{ty}>(api);"),
            },
            Edit::Insert {
                path: "crates/api/src/resources.rs".into(),
                mark: "saas-api generate: paths above this line",
                line: format!("{plural}::list, {plural}::create, {plural}::get, {plural}::update, {plural}::delete,"),
            },
            Edit::Insert {
                path: "crates/api/src/resources.rs".into(),
                mark: "saas-api generate: tags above this line",
                line: format!(
                    "(name = \"{plural}\", description = \"The {plural} of the caller's scope: personal, or an organization's (X-Organization-Id, else the session's active organization)\"),"
                ),
            },
            Edit::Insert {
                path: "crates/api/src/resources.rs".into(),
                mark: "saas-api generate: services above this line",
                line: format!(
                    "register::<infra::{singular}::{}Table>(&mut services, db, clock, observer.clone()).await?;",
                    camel(plural)
                ),
            },
            Edit::Create {
                path: format!("tests/api/{plural}.rs"),
                text: self.tests(),
            },
            Edit::Insert {
                path: "tests/api/main.rs".into(),
                mark: "saas-api generate: modules above this line",
                line: format!("mod {plural};"),
            },
        ]
    }

    fn domain(&self) -> String {
        let (plural, ty) = (&self.plural, self.type_name());
        let mut markers = String::new();
        let (mut stored, mut new, mut patch) = (String::new(), String::new(), String::new());
        for field in &self.fields {
            let (name, camel) = (&field.name, field.camel());
            let (value, optional_value, patched) = match field.kind {
                Kind::String => {
                    let t = format!("ShortText<{camel}Field>");
                    (t.clone(), t.clone(), format!("Option<{t}>"))
                }
                Kind::Text => {
                    let t = format!("Option<LongText<{camel}Field>>");
                    (t.clone(), t.clone(), format!("Option<{t}>"))
                }
                Kind::Bool => ("bool".into(), "bool".into(), "Option<bool>".into()),
            };
            if field.kind != Kind::Bool {
                let _ = write!(
                    markers,
                    "crate::field!(\n    /// The `{name}` field.\n    pub {camel}Field = \"{name}\"\n);\n"
                );
            }
            let _ = write!(stored, "    /// `{name}`.\n    pub {name}: {value},\n");
            let _ = write!(new, "    /// `{name}`.\n    pub {name}: {optional_value},\n");
            let _ = write!(patch, "    /// A new `{name}`.\n    pub {name}: {patched},\n");
        }
        let uses = field_type_uses(self, "crate::fields");
        let new_value = self.test_new();
        let sorted = self.names_of(Kind::String);
        let flags = self.names_of(Kind::Bool);
        let search = match self.fields.iter().find(|field| field.kind == Kind::String) {
            Some(field) => format!("Some(\"{}\")", field.name),
            None => "None".to_owned(),
        };
        format!(
            r#"//! {ty}: a scoped resource (personal or an organization's), generated by
//! `saas-api generate resource`. Its use cases are the kit's
//! ([`crate::resource::ScopedService`]); this file says what a {singular} is.

use chrono::{{DateTime, Utc}};
use serde::Serialize;

{uses}use crate::resource::Id;
use crate::resource::list::ListSpec;

/// The resource's name: its path, its table, its API-key permissions.
pub const RESOURCE: &str = "{plural}";

{markers}
/// A {singular}'s id.
pub type {ty}Id = Id<{ty}>;

/// A stored {singular}.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct {ty} {{
    /// Its id.
    pub id: {ty}Id,
{stored}    /// The better-auth user who created it.
    pub owner_id: String,
    /// The organization it belongs to; `None` for a personal {singular}.
    pub organization_id: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}}

/// What a client gives to create a {singular}.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct New{ty} {{
{new}}}

/// A partial update: `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct {ty}Patch {{
{patch}}}

/// How lists of {plural} may be sorted (by each short text, besides the
/// timestamps), filtered (on each flag) and searched (`q`).
pub const LIST: ListSpec = ListSpec {{
    sort: &[{sorted}],
    flags: &[{flags}],
    search: {search},
}};

crate::scoped_record!({ty} {{
    resource: RESOURCE,
    new: New{ty},
    patch: {ty}Patch,
    fields: [{field_names}],
    list: LIST,
}});

#[cfg(test)]
mod tests {{
    use std::sync::Arc;

    use chrono::TimeZone as _;

    use super::*;
    use crate::clock::MockClock;
    use crate::resource::{{MockScopedRepository, Origin, Record as _, ScopedService}};
    use crate::scope::Caller;
    use crate::user::User;

    fn now() -> DateTime<Utc> {{
        Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()
    }}

    fn service(repository: MockScopedRepository<{ty}>) -> ScopedService<{ty}> {{
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        ScopedService::new(Arc::new(repository), Arc::new(clock))
    }}

    fn alice() -> Caller {{
        Caller::personal(User {{
            id: "alice".into(),
            email: "alice@example.com".into(),
            name: "Alice".into(),
            email_verified: true,
            image: None,
            created_at: now(),
            updated_at: now(),
        }})
    }}

    #[tokio::test]
    async fn a_new_{singular}_is_the_callers_with_a_fresh_id_and_the_clocks_time() {{
        let mut repository = MockScopedRepository::new();
        repository
            .expect_insert()
            .withf(|{singular}: &{ty}| {{
                {singular}.owner_id == "alice"
                    && {singular}.organization_id.is_none()
                    && {singular}.created_at == now()
                    && {singular}.updated_at == now()
            }})
            .times(1)
            .returning(|_| Ok(()));
        let created = service(repository).create(&alice(), {new_value}).await.unwrap();
        assert_eq!(created.owner_id, "alice");
    }}

    #[tokio::test]
    async fn another_users_{singular}_is_not_found_even_if_storage_returns_it() {{
        let mut repository = MockScopedRepository::new();
        let {singular} = {ty}::create(
            {new_value},
            Origin {{
                id: Id::generate(),
                owner_id: "mallory".into(),
                organization_id: None,
                at: now(),
            }},
        );
        let id = {singular}.id.to_string();
        repository.expect_find().returning(move |_, _| Ok(Some({singular}.clone())));
        let found = service(repository).get(&alice(), &id).await;
        assert!(matches!(found, Err(crate::Error::NotFound)));
    }}
}}
"#,
            singular = self.singular,
            field_names = self
                .fields
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )
    }

    /// A `New<Type>` literal for the domain's unit tests.
    fn test_new(&self) -> String {
        let ty = self.type_name();
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|field| {
                let name = &field.name;
                match field.kind {
                    Kind::String => format!("{name}: ShortText::parse(\"a {name}\").unwrap()"),
                    Kind::Text => format!("{name}: None"),
                    Kind::Bool => format!("{name}: false"),
                }
            })
            .collect();
        format!("New{ty} {{ {} }}", fields.join(", "))
    }

    fn infra(&self) -> String {
        let (plural, singular, ty) = (&self.plural, &self.singular, self.type_name());
        let table = camel(plural);
        let (mut columns, mut mapping) = (String::new(), String::new());
        for field in &self.fields {
            let (name, camel) = (&field.name, field.camel());
            let kind = match field.kind {
                Kind::String => {
                    let _ = write!(
                        columns,
                        "        /// `{name}`, 1–255 characters.\n        pub {name}: String,\n"
                    );
                    "short"
                }
                Kind::Text => {
                    let _ = write!(
                        columns,
                        "        /// `{name}`, optional.\n        #[sea_orm(column_type = \"Text\", nullable)]\n        pub {name}: Option<String>,\n"
                    );
                    "long"
                }
                Kind::Bool => {
                    let _ = write!(columns, "        /// `{name}`.\n        pub {name}: bool,\n");
                    "plain"
                }
            };
            let _ = writeln!(mapping, "    {name}: {kind} => {camel},");
        }
        format!(
            r#"//! The `{plural}` table (see the migration `create_{plural}`) and how its rows
//! map onto [`{ty}`]s; the kit's repository
//! ([`crate::resource::LanedRepository`]) does the rest. Generated by
//! `saas-api generate resource`.

use domain::{singular}::{ty};

/// The sea-orm entity of `{plural}`.
pub mod entity {{
    use sea_orm::entity::prelude::*;

    /// One row of `{plural}`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "{plural}")]
    pub struct Model {{
        /// Primary key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
{columns}        /// better-auth user id of the creator (`text`, or `uuid` read back as text).
        #[sea_orm(column_type = "Text", select_as = "text")]
        pub owner_id: String,
        /// The better-auth organization; null for a personal row.
        #[sea_orm(column_type = "Text", nullable)]
        pub organization_id: Option<String>,
        /// Creation time.
        pub created_at: DateTimeUtc,
        /// Last change.
        pub updated_at: DateTimeUtc,
    }}

    /// No relation is navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {{}}

    impl ActiveModelBehavior for ActiveModel {{}}
}}

crate::scoped_table!({table}Table: {ty} = "{plural}" in entity {{
{mapping}}});
"#
        )
    }

    fn migration(&self) -> String {
        let plural = &self.plural;
        let columns: Vec<String> = self
            .fields
            .iter()
            .map(|field| {
                let definition = match field.kind {
                    Kind::String => ".string_len(255).not_null()",
                    Kind::Text => ".text().null()",
                    Kind::Bool => ".boolean().not_null().default(false)",
                };
                format!(
                    "                ColumnDef::new(Alias::new(\"{}\")){definition}.to_owned(),",
                    field.name
                )
            })
            .collect();
        format!(
            r#"//! Creates `{plural}` (generated by `saas-api generate resource`): the
//! resource's columns between the scoped ones (see [`crate::scoped`]).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {{
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {{
        crate::scoped::create_table(
            manager,
            "{plural}",
            vec![
{columns}
            ],
        )
        .await?;
        crate::scoped::create_list_indexes(manager, "{plural}", &[{sorted}]).await
    }}

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {{
        crate::scoped::drop_table(manager, "{plural}").await
    }}
}}
"#,
            columns = columns.join("\n"),
            sorted = self.names_of(Kind::String),
        )
    }

    fn api(&self) -> String {
        let (plural, singular, ty) = (&self.plural, &self.singular, self.type_name());
        let (mut response, mut create, mut update) = (String::new(), String::new(), String::new());
        let (mut read_create, mut read_update, mut parse_new, mut parse_patch) =
            (String::new(), String::new(), String::new(), String::new());
        let (mut fields_list, mut parsed) = (Vec::new(), Vec::new());
        for field in &self.fields {
            let (name, camel) = (&field.name, field.camel());
            fields_list.push(format!("\"{name}\""));
            match field.kind {
                Kind::String => {
                    let _ = writeln!(response, "    {name}: short String,");
                    let _ = write!(
                        create,
                        "    /// 1–255 characters once trimmed, not only invisible ones; stored trimmed.\n    #[schema(min_length = 1, max_length = 255)]\n    #[validate(custom(function = \"rules::short_text\"))]\n    pub {name}: String,\n"
                    );
                    let _ = write!(
                        update,
                        "    /// 1–255 characters once trimmed; not null.\n    #[schema(min_length = 1, max_length = 255, nullable = false)]\n    #[validate(custom(function = \"rules::short_text\"))]\n    pub {name}: Option<String>,\n"
                    );
                    let _ = writeln!(read_create, "        fields.require(errors, \"{name}\");");
                    let _ = writeln!(
                        read_create,
                        "        let {name} = fields.string(errors, \"{name}\").unwrap_or_default();"
                    );
                    let _ = writeln!(read_update, "            {name}: fields.string(errors, \"{name}\"),");
                    let _ = writeln!(
                        parse_new,
                        "        let {name} = errors.collect(ShortText::<{camel}Field>::parse(&body.{name}));"
                    );
                    let _ = writeln!(
                        parse_patch,
                        "            {name}: body.{name}.and_then(|value| errors.collect(ShortText::<{camel}Field>::parse(&value))),"
                    );
                    parsed.push(name.clone());
                }
                Kind::Text => {
                    let _ = writeln!(response, "    {name}: long Option<String>,");
                    let _ = write!(
                        create,
                        "    /// At most 65,535 characters, or null.\n    #[schema(max_length = 65535)]\n    #[validate(custom(function = \"rules::long_text\"))]\n    pub {name}: Option<String>,\n"
                    );
                    let _ = write!(
                        update,
                        "    /// At most 65,535 characters, or null to clear.\n    #[schema(value_type = Option<String>, max_length = 65535, nullable)]\n    #[validate(custom(function = \"rules::long_text\"))]\n    pub {name}: Option<Option<String>>,\n"
                    );
                    let _ = writeln!(
                        read_create,
                        "        let {name} = fields.nullable_string(errors, \"{name}\").flatten();"
                    );
                    let _ = writeln!(
                        read_update,
                        "            {name}: fields.nullable_string(errors, \"{name}\"),"
                    );
                    let _ = writeln!(
                        parse_new,
                        "        let {name} = errors.collect(body.{name}.as_deref().map(LongText::<{camel}Field>::parse).transpose());"
                    );
                    let _ = writeln!(
                        parse_patch,
                        "            {name}: body.{name}.and_then(|value| errors.collect(value.as_deref().map(LongText::<{camel}Field>::parse).transpose())),"
                    );
                    parsed.push(name.clone());
                }
                Kind::Bool => {
                    let _ = writeln!(response, "    {name}: plain bool,");
                    let _ = write!(
                        create,
                        "    /// Defaults to false; not null.\n    #[schema(default = false, nullable = false)]\n    pub {name}: Option<bool>,\n"
                    );
                    let _ = write!(
                        update,
                        "    /// Not null.\n    #[schema(nullable = false)]\n    pub {name}: Option<bool>,\n"
                    );
                    let _ = writeln!(read_create, "        let {name} = fields.boolean(errors, \"{name}\");");
                    let _ = writeln!(read_update, "            {name}: fields.boolean(errors, \"{name}\"),");
                }
            }
        }
        let names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        let new_fields: Vec<String> = self
            .fields
            .iter()
            .map(|f| match f.kind {
                Kind::Bool => format!("{0}: body.{0}.unwrap_or(false)", f.name),
                _ => f.name.clone(),
            })
            .collect();
        let build_new = if parsed.is_empty() {
            format!("        Ok(New{ty} {{ {} }})", new_fields.join(", "))
        } else {
            let somes: Vec<String> = parsed.iter().map(|n| format!("Some({n})")).collect();
            format!(
                "        match ({}) {{\n            ({}) => Ok(New{ty} {{ {} }}),\n            _ => Err(errors),\n        }}",
                parsed.join(", ") + if parsed.len() == 1 { "," } else { "" },
                somes.join(", ") + if parsed.len() == 1 { "," } else { "" },
                new_fields.join(", ")
            )
        };
        let errors_binding = if parsed.is_empty() { "_errors" } else { "mut errors" };
        let max_bytes: usize = self
            .fields
            .iter()
            .map(|f| match f.kind {
                Kind::String => 255,
                Kind::Text => 65_535,
                Kind::Bool => 0,
            })
            .sum();
        let uses = field_type_uses(self, "domain::fields");
        let markers: Vec<String> = self.text_fields().map(|f| format!("{}Field", f.camel())).collect();
        let domain_uses = if markers.is_empty() {
            format!("use domain::{singular}::{{New{ty}, {ty}, {ty}Patch}};")
        } else {
            format!(
                "use domain::{singular}::{{New{ty}, {ty}, {ty}Patch, {}}};",
                markers.join(", ")
            )
        };
        let rules_use = if markers.is_empty() {
            ""
        } else {
            "use domain::fields::rules;\n"
        };
        format!(
            r#"//! `/api/v1/{plural}`: the {plural} of the caller's scope, generated by
//! `saas-api generate resource`. What a {singular} looks like in JSON and
//! which bodies it takes; everything else — cursors and `Link`, ETags, 304
//! and 412, `Idempotency-Key`, the response cache, organization scope and
//! roles, API-key permissions (`{plural}`) — is the resource kit's
//! ([`crate::resource`]).

{uses}{rules_use}{domain_uses}
use domain::validation::FieldErrors;
use validator::Validate;

use crate::extract::json_body::{{Fields, FromFields}};
use crate::resource::ApiResource;

crate::scoped_response!({ty}Response for {ty} as {ty} {{
{response}}});

/// The body of `POST /api/v1/{plural}`.
#[derive(Debug, Default, Validate, utoipa::ToSchema)]
#[schema(as = Create{ty})]
// Read by `FromFields`, not serde: this tells the schema that unknown fields are refused.
#[serde(deny_unknown_fields)]
pub struct Create{ty}Request {{
{create}}}

/// The body of `PATCH /api/v1/{plural}/{{id}}`: absent fields are left alone.
#[derive(Debug, Default, Validate, utoipa::ToSchema)]
#[schema(as = Update{ty})]
#[serde(deny_unknown_fields)]
pub struct Update{ty}Request {{
{update}}}

const FIELDS: &[&str] = &[{fields_list}];

/// The largest body a valid {singular} can need: every character written as
/// a `\uXXXX\uXXXX` surrogate pair (12 bytes), plus room for keys and whitespace.
const BODY_MAX_BYTES: usize = {max_bytes} * 12 + 4096;

impl FromFields for Create{ty}Request {{
    const FIELDS: &'static [&'static str] = FIELDS;
    const MAX_BYTES: usize = BODY_MAX_BYTES;

    fn from_fields(mut fields: Fields, errors: &mut FieldErrors) -> Self {{
{read_create}        Self {{ {names} }}
    }}
}}

impl FromFields for Update{ty}Request {{
    const FIELDS: &'static [&'static str] = FIELDS;
    const MAX_BYTES: usize = BODY_MAX_BYTES;

    fn from_fields(mut fields: Fields, errors: &mut FieldErrors) -> Self {{
        Self {{
{read_update}        }}
    }}
}}

impl ApiResource for {ty} {{
    const REPRESENTATION: u32 = 1;
    type Response = {ty}Response;
    type CreateBody = Create{ty}Request;
    type UpdateBody = Update{ty}Request;

    fn new_record(body: Create{ty}Request) -> Result<New{ty}, FieldErrors> {{
        let {errors_binding} = FieldErrors::new();
{parse_new}{build_new}
    }}

    fn patch(body: Update{ty}Request) -> Result<{ty}Patch, FieldErrors> {{
        let {errors_binding} = FieldErrors::new();
        let patch = {ty}Patch {{
{parse_patch}{bool_patch}        }};
        {finish_patch}
    }}
}}

crate::scoped_resource_docs! {{
    record: {ty}, response: {ty}Response, create: Create{ty}Request, update: Update{ty}Request,
    collection: "/api/v1/{plural}", member: "/api/v1/{plural}/{{id}}", tag: "{plural}",
    operations: ("list{plural_camel}", "create{ty}", "get{ty}", "update{ty}", "delete{ty}"),
}}
"#,
            fields_list = fields_list.join(", "),
            names = names.join(", "),
            plural_camel = camel(plural),
            bool_patch = self
                .fields
                .iter()
                .filter(|f| f.kind == Kind::Bool)
                .map(|f| format!("            {0}: body.{0},\n", f.name))
                .collect::<String>(),
            finish_patch = if parsed.is_empty() {
                "Ok(patch)"
            } else {
                "errors.into_result().map(|()| patch)"
            },
        )
    }

    fn tests(&self) -> String {
        let (plural, ty) = (&self.plural, self.type_name());
        let create: Vec<String> = self
            .fields
            .iter()
            .map(|f| match f.kind {
                Kind::String => format!("\"{0}\": format!(\"{0} {{n}}\")", f.name),
                Kind::Text => format!("\"{0}\": format!(\"{0} {{n}}\")", f.name),
                Kind::Bool => format!("\"{}\": false", f.name),
            })
            .collect();
        let first = &self.fields[0];
        let (changed, bad) = match first.kind {
            Kind::String => ("json!(\"renamed\")", "json!(\" \")"),
            Kind::Text => ("json!(\"changed\")", "json!(\"nul \\u{0}\")"),
            Kind::Bool => ("json!(true)", "json!(\"yes\")"),
        };
        format!(
            r#"//! {ty} over HTTP (generated by `saas-api generate resource`): the resource
//! kit's contract (`crate::resource_contract`) on every backend. Add the
//! tests of what is particular to {plural} below.

use serde_json::{{Value, json}};

use crate::resource_contract::{{Spec, resource_contract}};

fn create(n: usize) -> Value {{
    json!({{ {create} }})
}}

fn patch() -> Value {{
    json!({{ "{first}": {changed} }})
}}

fn invalid() -> (Value, &'static str) {{
    let mut body = create(0);
    body["{first}"] = {bad};
    (body, "{first}")
}}

const SPEC: Spec = Spec {{
    path: "/api/v1/{plural}",
    create,
    patch,
    invalid,
}};

resource_contract!(SPEC);
"#,
            create = create.join(", "),
            first = first.name,
        )
    }
}

/// `use <base>::{ShortText, LongText};` as the fields need.
fn field_type_uses(resource: &Resource, base: &str) -> String {
    let short = resource.fields.iter().any(|f| f.kind == Kind::String);
    let long = resource.fields.iter().any(|f| f.kind == Kind::Text);
    match (short, long) {
        (true, true) => format!("use {base}::{{LongText, ShortText}};\n"),
        (true, false) => format!("use {base}::ShortText;\n"),
        (false, true) => format!("use {base}::LongText;\n"),
        (false, false) => String::new(),
    }
}

/// Checks every edit against the repository at `root`, then applies them
/// all (or none: every check runs before the first write).
///
/// # Errors
/// A line naming what is in the way.
pub fn apply(root: &Path, edits: &[Edit]) -> Result<Vec<String>, String> {
    let mut inserts: Vec<(PathBuf, String)> = Vec::new();
    for edit in edits {
        match edit {
            Edit::Create { path, .. } => {
                if root.join(path).exists() {
                    return Err(format!("{path} exists already: nothing was written"));
                }
            }
            Edit::Insert { path, mark, .. } => {
                let full = root.join(path);
                let text = match inserts.iter().find(|(p, _)| *p == full) {
                    Some((_, text)) => text.clone(),
                    None => std::fs::read_to_string(&full)
                        .map_err(|e| format!("{path}: {e} (is --root the repository?): nothing was written"))?,
                };
                if !text.contains(mark) {
                    return Err(format!("{path} has no `{mark}` mark: nothing was written"));
                }
                if !inserts.iter().any(|(p, _)| *p == full) {
                    inserts.push((full, text));
                }
            }
        }
    }
    let mut written = Vec::new();
    for edit in edits {
        match edit {
            Edit::Create { path, text } => {
                let full = root.join(path);
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| format!("{path}: {e}"))?;
                }
                std::fs::write(&full, text).map_err(|e| format!("{path}: {e}"))?;
                written.push(format!("created {path}"));
            }
            Edit::Insert { path, mark, line } => {
                let full = root.join(path);
                if let Some((_, text)) = inserts.iter_mut().find(|(p, _)| *p == full) {
                    *text = insert_before(text, mark, line);
                }
                written.push(format!("registered in {path}: {line}"));
            }
        }
    }
    for (path, text) in inserts {
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(written)
}

/// `text` with `line` inserted before the line holding `mark`, indented as it.
fn insert_before(text: &str, mark: &str, line: &str) -> String {
    let mut out = String::with_capacity(text.len() + line.len() + 16);
    let mut done = false;
    for existing in text.split_inclusive('\n') {
        if !done && existing.contains(mark) {
            let indent: String = existing.chars().take_while(|c| c.is_whitespace()).collect();
            let _ = writeln!(out, "{indent}{line}");
            done = true;
        }
        out.push_str(existing);
    }
    out
}

/// Formats the new and the edited files as `cargo fmt` would (the
/// repository's `rustfmt.toml` applies: module lists are sorted); says so
/// when rustfmt is not installed.
fn format(root: &Path, edits: &[Edit]) {
    let mut files: Vec<PathBuf> = Vec::new();
    for edit in edits {
        let (Edit::Create { path, .. } | Edit::Insert { path, .. }) = edit;
        let path = root.join(path);
        if !files.contains(&path) {
            files.push(path);
        }
    }
    let formatted = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .args(&files)
        .status();
    if !formatted.is_ok_and(|status| status.success()) {
        eprintln!("note: rustfmt did not run on the new files: run `cargo fmt`");
    }
}

/// Runs `generate resource …` (`words` after `generate`).
pub fn run(words: &[&str]) -> ExitCode {
    let ["resource", rest @ ..] = words else {
        eprintln!("usage: saas-api generate resource NAME field:type… [--singular S] [--root DIR]");
        return ExitCode::from(2);
    };
    let (resource, root) = match parse(rest) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let root = root.unwrap_or_else(|| PathBuf::from("."));
    let stamp = chrono::Utc::now().format("%Y%m%d_%H%M%S").to_string();
    let edits = resource.edits(&stamp);
    match apply(&root, &edits) {
        Ok(written) => {
            for line in written {
                println!("{line}");
            }
            format(&root, &edits);
            println!(
                "next: `make client` (regenerates the TypeScript client), then `cargo test --workspace`; /api/v1/{} is served after the migration runs",
                resource.plural
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(words: &[&str]) -> Resource {
        parse(words).unwrap().0
    }

    #[test]
    fn names_fields_and_singulars_are_checked() {
        let projects = resource(&["projects", "title:string", "notes:text", "done:bool"]);
        assert_eq!(projects.singular, "project");
        assert_eq!(projects.type_name(), "Project");
        assert_eq!(projects.fields.len(), 3);
        assert_eq!(resource(&["categories", "name:string"]).singular, "category");
        assert_eq!(resource(&["taxes", "name:string"]).singular, "tax");
        assert!(parse(&["boxes", "name:string"]).is_err(), "box is a Rust keyword");
        assert_eq!(
            resource(&["people", "name:string", "--singular", "person"]).singular,
            "person"
        );
        for bad in [
            &["Projects", "title:string"][..],
            &["items", "name:string"],
            &["projects"],
            &["projects", "title"],
            &["projects", "title:int"],
            &["projects", "owner_id:string"],
            &["projects", "type:string"],
            &["projects", "a:string", "a:bool"],
            &["people", "name:string"],
            &["projects", "title:string", "--singular"],
            &["flags", "on:bool"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_file_is_made_and_registered_at_its_mark() {
        let edits = resource(&["projects", "title:string"]).edits("20261204_120000");
        let created: Vec<&str> = edits
            .iter()
            .filter_map(|e| match e {
                Edit::Create { path, .. } => Some(path.as_str()),
                Edit::Insert { .. } => None,
            })
            .collect();
        assert_eq!(
            created,
            [
                "crates/domain/src/project.rs",
                "crates/infra/src/project.rs",
                "migration/src/m20261204_120000_create_projects.rs",
                "crates/api/src/resources/projects.rs",
                "tests/api/projects.rs"
            ]
        );
        let text = "a\n    // saas-api generate: routes above this line\n";
        assert_eq!(
            insert_before(text, "saas-api generate: routes above this line", "x();"),
            "a\n    x();\n    // saas-api generate: routes above this line\n"
        );
    }

    #[test]
    fn nothing_is_written_when_a_file_exists_or_a_mark_is_missing() {
        let root = std::env::temp_dir().join(format!("saas-api-generate-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(root.join("crates/domain/src")).unwrap();
        std::fs::write(root.join("crates/domain/src/lib.rs"), "pub mod a;\n").unwrap();
        let edits = resource(&["projects", "title:string"]).edits("20261204_120000");
        let error = apply(&root, &edits).unwrap_err();
        assert!(
            error.contains("mark") || error.contains("nothing was written"),
            "{error}"
        );
        assert!(!root.join("crates/domain/src/project.rs").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("crates/domain/src/lib.rs")).unwrap(),
            "pub mod a;\n"
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
