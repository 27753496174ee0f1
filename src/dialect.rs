//! SQL dialect differences, all in one place: quoting, placeholders, column types,
//! upserts, RETURNING and the DDL of a model as Prisma's migrations write it for each
//! provider. Statement building (`plan.rs`) and schema creation ask this module.

use crate::schema::{DefaultValue, Model, ScalarType};

/// How statements reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Through sqlx: parameters typed by the driver, columns decoded from the wire.
    Driver,
    /// Through a Prisma client's `$queryRawUnsafe` / `$executeRawUnsafe`: parameters
    /// arrive untyped (PostgreSQL needs a cast on each), and the client types results by
    /// each column's declared type, so SQLite dates and every JSON column are read as the
    /// text stored, to be decoded exactly as over sqlx.
    PrismaClient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    pub fn provider(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgresql",
            Dialect::Mysql => "mysql",
        }
    }

    pub fn from_provider(name: &str) -> Option<Self> {
        match name {
            "sqlite" => Some(Dialect::Sqlite),
            "postgresql" | "postgres" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::Mysql),
            _ => None,
        }
    }

    pub fn quote(self, ident: &str) -> String {
        match self {
            Dialect::Sqlite | Dialect::Postgres => format!("\"{}\"", ident.replace('"', "\"\"")),
            Dialect::Mysql => format!("`{}`", ident.replace('`', "``")),
        }
    }

    /// The placeholder for the `n`th (1-based) bound parameter.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite | Dialect::Mysql => "?".to_string(),
        }
    }

    /// The placeholder for the `n`th (1-based) parameter, of type `ty`, over `channel`:
    /// through a Prisma client, PostgreSQL receives every parameter as untyped text, so
    /// each is cast (as `$1 IS NULL` and the like could not be planned otherwise).
    pub fn typed_placeholder(self, n: usize, ty: ScalarType, channel: Channel) -> String {
        match (self, channel) {
            (Dialect::Postgres, Channel::PrismaClient) => {
                let cast = match ty {
                    ScalarType::String => "text",
                    ScalarType::Int => "int8",
                    ScalarType::Boolean => "boolean",
                    ScalarType::DateTime => "timestamp(3)",
                    ScalarType::Json => "jsonb",
                };
                format!("${n}::{cast}")
            }
            _ => self.placeholder(n),
        }
    }

    /// A column (`quoted`) of type `ty` in a select or RETURNING list over `channel`.
    /// Through a Prisma client, what the client would convert by the declared type is
    /// read as stored text instead: SQLite dates (the client parses zone-less text in
    /// local time and reads integers as milliseconds whatever the column's format) and
    /// JSON (the client parses it; `JSON.parse` of the text gives the same value).
    pub fn select_column(self, quoted: String, ty: ScalarType, channel: Channel) -> String {
        match (self, ty, channel) {
            (_, _, Channel::Driver) => quoted,
            (Dialect::Sqlite, ScalarType::DateTime | ScalarType::Json, _) => {
                format!("CAST({quoted} AS TEXT) AS {quoted}")
            }
            (Dialect::Postgres, ScalarType::Json, _) => format!("{quoted}::text AS {quoted}"),
            (Dialect::Mysql, ScalarType::Json, _) => format!("CAST({quoted} AS CHAR) AS {quoted}"),
            _ => quoted,
        }
    }

    /// How to compare a text column with a bound value byte for byte, where `=` alone
    /// follows the column's collation: MySQL/MariaDB's default utf8mb4 collations ignore
    /// case and trailing spaces, so `= ?` finds a near-miss of a secret. The comparison
    /// is added beside the indexed `= ?` (the index narrows, this decides): the text to
    /// write before and after the second placeholder, or `None` where `=` is already exact.
    pub fn exact_text_comparison(self) -> Option<(&'static str, &'static str)> {
        match self {
            Dialect::Mysql => Some(("CAST(", " AS BINARY)")),
            Dialect::Sqlite | Dialect::Postgres => None,
        }
    }

    /// Can INSERT / UPDATE return the written row? (MySQL cannot: the row is read back.)
    pub fn supports_returning(self) -> bool {
        !matches!(self, Dialect::Mysql)
    }

    /// The clause that turns an INSERT into an upsert on `conflict`, updating `columns`
    /// (all quoted) from the inserted values.
    pub fn upsert_clause(self, conflict: &str, columns: &[String]) -> String {
        match self {
            Dialect::Sqlite | Dialect::Postgres => {
                let sets: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                format!(
                    " ON CONFLICT ({conflict}) DO UPDATE SET {}",
                    sets.join(", ")
                )
            }
            Dialect::Mysql => {
                let sets: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{c} = VALUES({c})"))
                    .collect();
                format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", "))
            }
        }
    }

    /// Column type as Prisma's migrations create it for this provider.
    pub fn column_type(self, ty: ScalarType) -> &'static str {
        use ScalarType::*;
        match (self, ty) {
            (Dialect::Sqlite, String) => "TEXT",
            (Dialect::Sqlite, Int) => "INTEGER",
            (Dialect::Sqlite, Boolean) => "BOOLEAN",
            (Dialect::Sqlite, DateTime) => "DATETIME",
            (Dialect::Sqlite, Json) => "JSONB",
            (Dialect::Postgres, String) => "TEXT",
            (Dialect::Postgres, Int) => "INTEGER",
            (Dialect::Postgres, Boolean) => "BOOLEAN",
            (Dialect::Postgres, DateTime) => "TIMESTAMP(3)",
            (Dialect::Postgres, Json) => "JSONB",
            (Dialect::Mysql, String) => "VARCHAR(191)",
            (Dialect::Mysql, Int) => "INTEGER",
            (Dialect::Mysql, Boolean) => "BOOLEAN",
            (Dialect::Mysql, DateTime) => "DATETIME(3)",
            (Dialect::Mysql, Json) => "JSON",
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
        let table = self.quote(&model.table);
        let mut lines = Vec::new();
        for field in &model.fields {
            let mut col = format!(
                "{} {}",
                self.quote(&field.column),
                self.column_type(field.ty)
            );
            match (field.optional, self) {
                (false, _) => col.push_str(" NOT NULL"),
                (true, Dialect::Mysql) => col.push_str(" NULL"),
                (true, _) => {}
            }
            if field.id && self == Dialect::Sqlite {
                col.push_str(" PRIMARY KEY");
            }
            if let Some(default) = &field.default {
                col.push_str(" DEFAULT ");
                col.push_str(&self.default_literal(default));
            }
            lines.push(col);
        }
        let unique: Vec<(String, String)> = model
            .fields
            .iter()
            .filter(|f| f.unique)
            .map(|f| {
                (
                    self.quote(&model.unique_index_name(f)),
                    self.quote(&f.column),
                )
            })
            .collect();
        let indexes: Vec<(String, String)> = model
            .indexes
            .iter()
            .map(|index| {
                let cols: Vec<String> = index
                    .fields
                    .iter()
                    .map(|&i| self.quote(&model.fields[i].column))
                    .collect();
                (self.quote(&index.name), cols.join(", "))
            })
            .collect();
        let id_column = self.quote(&model.fields[model.id_field()].column);
        let mut statements = Vec::new();
        match self {
            Dialect::Sqlite | Dialect::Postgres => {
                if self == Dialect::Postgres {
                    let pkey = self.quote(&format!("{}_pkey", model.table));
                    lines.push(format!("CONSTRAINT {pkey} PRIMARY KEY ({id_column})"));
                }
                statements.push(format!(
                    "CREATE TABLE IF NOT EXISTS {table} (\n    {}\n)",
                    lines.join(",\n    ")
                ));
                for (name, col) in &unique {
                    statements.push(format!(
                        "CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {table}({col})"
                    ));
                }
                for (name, cols) in &indexes {
                    statements.push(format!(
                        "CREATE INDEX IF NOT EXISTS {name} ON {table}({cols})"
                    ));
                }
            }
            Dialect::Mysql => {
                for (name, col) in &unique {
                    lines.push(format!("UNIQUE INDEX {name}({col})"));
                }
                for (name, cols) in &indexes {
                    lines.push(format!("INDEX {name}({cols})"));
                }
                lines.push(format!("PRIMARY KEY ({id_column})"));
                statements.push(format!(
                    "CREATE TABLE IF NOT EXISTS {table} (\n    {}\n) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                    lines.join(",\n    ")
                ));
            }
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

    #[test]
    fn postgres_and_mysql_ddl_match_prisma_migrations() {
        let pg = Dialect::Postgres.create_table(SCHEMA.model("KavachUser"));
        assert!(pg[0].contains("\"created_at\" TIMESTAMP(3) NOT NULL"));
        assert!(pg[0].contains("\"metadata\" JSONB,"));
        assert!(pg[0].contains("CONSTRAINT \"kavach_users_pkey\" PRIMARY KEY (\"id\")"));
        let my = Dialect::Mysql.create_table(SCHEMA.model("KavachAuditLog"));
        assert_eq!(my.len(), 1);
        assert!(my[0].contains("`id` VARCHAR(191) NOT NULL"));
        assert!(my[0].contains("`parameters` JSON NULL"));
        assert!(my[0].contains("`timestamp` DATETIME(3) NOT NULL"));
        assert!(my[0].contains("INDEX `kavach_audit_logs_agent_id_idx`(`agent_id`)"));
        assert!(my[0].contains("PRIMARY KEY (`id`)"));
    }
}
