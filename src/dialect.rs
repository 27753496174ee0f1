//! SQL dialect differences, all in one place: quoting, placeholders, column types and
//! the DDL of a model. Statement building (`plan.rs`) and DDL ask this module.

use crate::schema::{DefaultValue, Model, ScalarType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
}

impl Dialect {
    pub fn quote(self, ident: &str) -> String {
        match self {
            Dialect::Sqlite => format!("\"{}\"", ident.replace('"', "\"\"")),
        }
    }

    /// The placeholder for the `n`th (1-based) bound parameter.
    pub fn placeholder(self, _n: usize) -> &'static str {
        match self {
            Dialect::Sqlite => "?",
        }
    }

    /// Column type as Prisma's migrations create it for this provider.
    pub fn column_type(self, ty: ScalarType) -> &'static str {
        match (self, ty) {
            (Dialect::Sqlite, ScalarType::String) => "TEXT",
            (Dialect::Sqlite, ScalarType::Int) => "INTEGER",
            (Dialect::Sqlite, ScalarType::Boolean) => "BOOLEAN",
            (Dialect::Sqlite, ScalarType::DateTime) => "DATETIME",
            (Dialect::Sqlite, ScalarType::Json) => "JSONB",
        }
    }

    fn default_literal(self, default: &DefaultValue) -> String {
        match default {
            DefaultValue::String(s) => format!("'{}'", s.replace('\'', "''")),
            DefaultValue::Int(i) => i.to_string(),
            DefaultValue::Boolean(b) => b.to_string(),
        }
    }

    /// `CREATE TABLE IF NOT EXISTS` plus its unique and secondary indexes, in the form
    /// Prisma's migrations give them (index names `<table>_<column>_key` / `@@index` map).
    pub fn create_table(self, model: &Model) -> Vec<String> {
        let mut columns = Vec::new();
        for field in &model.fields {
            let mut col = format!(
                "{} {}",
                self.quote(&field.column),
                self.column_type(field.ty)
            );
            if !field.optional {
                col.push_str(" NOT NULL");
            }
            if field.id {
                col.push_str(" PRIMARY KEY");
            }
            if let Some(default) = &field.default {
                col.push_str(" DEFAULT ");
                col.push_str(&self.default_literal(default));
            }
            columns.push(col);
        }
        let table = self.quote(&model.table);
        let mut statements = vec![format!(
            "CREATE TABLE IF NOT EXISTS {table} (\n    {}\n)",
            columns.join(",\n    ")
        )];
        for field in model.fields.iter().filter(|f| f.unique) {
            statements.push(format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {table}({})",
                self.quote(&model.unique_index_name(field)),
                self.quote(&field.column)
            ));
        }
        for index in &model.indexes {
            let cols: Vec<String> = index
                .fields
                .iter()
                .map(|&i| self.quote(&model.fields[i].column))
                .collect();
            statements.push(format!(
                "CREATE INDEX IF NOT EXISTS {} ON {table}({})",
                self.quote(&index.name),
                cols.join(", ")
            ));
        }
        statements
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SCHEMA;

    #[test]
    fn sqlite_ddl_matches_prisma_migrations() {
        let ddl = Dialect::Sqlite.create_table(SCHEMA.model("KavachDelegationChain"));
        assert!(ddl[0].contains("\"id\" TEXT NOT NULL PRIMARY KEY"));
        assert!(ddl[0].contains("\"depth\" INTEGER NOT NULL DEFAULT 1"));
        assert!(ddl[0].contains("\"permissions\" JSONB NOT NULL"));
        let user = Dialect::Sqlite.create_table(SCHEMA.model("KavachUser"));
        assert!(user[0].contains("\"banned\" BOOLEAN NOT NULL DEFAULT false"));
        assert!(user[0].contains("\"ban_expires_at\" DATETIME,"));
        assert!(user.contains(&"CREATE UNIQUE INDEX IF NOT EXISTS \"kavach_users_email_key\" ON \"kavach_users\"(\"email\")".to_string()));
    }
}
