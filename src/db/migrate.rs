//! Which tables are missing, and the DDL that creates them (each provider runs it under
//! its own lock, in `sqlite/schema.rs` and `server/`).

use crate::dialect::Dialect;
use crate::schema::{Model, SCHEMA};

/// What creating the missing tables takes: their names and the DDL statements.
pub struct SchemaChange {
    pub tables: Vec<String>,
    pub statements: Vec<String>,
}

/// The tables of the declared models that `existing` lacks, with their DDL; existing
/// tables are left exactly as they are.
pub fn schema_change(existing: &[String], dialect: Dialect) -> SchemaChange {
    let missing: Vec<&Model> = SCHEMA
        .models
        .iter()
        .filter(|m| !existing.contains(&m.table))
        .collect();
    SchemaChange {
        tables: missing.iter().map(|m| m.table.clone()).collect(),
        statements: missing
            .iter()
            .flat_map(|m| dialect.create_table(m))
            .collect(),
    }
}
