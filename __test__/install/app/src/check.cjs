// CommonJS: require('kavach-native') and one round trip on an in-memory database.
const assert = require('node:assert')
const kavach = require('kavach-native')

assert.deepStrictEqual(Object.keys(kavach).sort(), [
  'PrismaClientInitializationError',
  'PrismaClientKnownRequestError',
  'PrismaClientRustPanicError',
  'PrismaClientUnknownRequestError',
  'PrismaClientValidationError',
  'createAdapter',
  'methodNames',
  'schemaDdl',
  'schemaPrisma',
])
// Prisma's error classes are the project's own @prisma/client's (it resolves from here).
assert.strictEqual(kavach.PrismaClientKnownRequestError, require('@prisma/client').Prisma.PrismaClientKnownRequestError)
async function main() {
  const db = kavach.createAdapter(':memory:')
  const now = new Date()
  await db.createUser({ id: 'u1', email: 'cjs@example.com', createdAt: now, updatedAt: now })
  const user = await db.findUserById('u1')
  assert.strictEqual(user.email, 'cjs@example.com')
  assert.ok(user.createdAt instanceof Date)
  await db.close()
  console.log(`cjs: require('kavach-native') ok, ${kavach.methodNames().length} methods, loaded ${require.resolve('kavach-native')}`)
}
main().catch((error) => {
  console.error(error)
  process.exit(1)
})
