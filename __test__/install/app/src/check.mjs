// ESM: named and default imports of the CommonJS package.
import assert from 'node:assert'
import kavach, { createAdapter, schemaDdl, schemaPrisma, methodNames } from 'kavach-native'

assert.strictEqual(kavach.createAdapter, createAdapter)
assert.ok(schemaDdl('sqlite').length > 0 && schemaPrisma().includes('model KavachAgent'))
const db = createAdapter(':memory:')
const now = new Date()
await db.createUser({ id: 'u1', email: 'esm@example.com', createdAt: now, updatedAt: now })
assert.strictEqual((await db.findUserByEmail('esm@example.com'))?.id, 'u1')
await db.close()
console.log(`esm: import { createAdapter } from 'kavach-native' ok, ${methodNames().length} methods`)
