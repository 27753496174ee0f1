// Fails fast, with the reason, when a server suite is enabled but its server does not answer.
export default async function checkServers() {
  const pg = process.env.KAVACH_TEST_PG_URL
  if (pg) {
    const { Client } = await import('pg')
    const client = new Client({ connectionString: pg, connectionTimeoutMillis: 5000 })
    await client.connect().catch((e) => {
      throw new Error(`KAVACH_TEST_PG_URL is set but PostgreSQL does not answer (${e.message}); start it or unset the variable`)
    })
    await client.end()
  }
  const my = process.env.KAVACH_TEST_MYSQL_URL
  if (my) {
    const mysql = await import('mysql2/promise')
    const conn = await mysql.createConnection({ uri: my, connectTimeout: 5000 }).catch((e) => {
      throw new Error(`KAVACH_TEST_MYSQL_URL is set but MySQL/MariaDB does not answer (${e.message}); start it or unset the variable`)
    })
    await conn.end()
  }
}
