// The shipped schema.prisma declares exactly the reference models of @kavachos/prisma@3.0.2:
// model by model and field by field (name, type, optional/list, @id/@unique/@default/@map),
// and the same @@map / @@index block attributes. Only the datasource differs on purpose.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { type Attribute, type Field, type Model, parseSchema } from './prisma-schema'

// The package's exports map has no entry for its schema file: read it from node_modules.
const referenceFile = path.resolve(__dirname, '../../node_modules/@kavachos/prisma/src/schema.prisma')
const ours = parseSchema(fs.readFileSync(path.resolve(__dirname, '../../schema.prisma'), 'utf8'))
const reference = parseSchema(fs.readFileSync(referenceFile, 'utf8'))

const attr = (a: Attribute) => (a.args === null ? a.name : `${a.name}(${a.args})`)
const fieldText = (f: Field) => `${f.name} ${f.type}${f.list ? '[]' : ''}${f.optional ? '?' : ''} ${f.attributes.map(attr).sort().join(' ')}`.trim()
const byName = (models: Model[]) => new Map(models.map((m) => [m.name, m]))

describe('schema.prisma matches the @kavachos/prisma reference schema', () => {
  it('parses both and finds the reference models', () => {
    expect(reference.models.length).toBeGreaterThanOrEqual(30)
    expect(reference.models.map((m) => m.name)).toContain('KavachUser')
  })

  it('declares the same models (and no others)', () => {
    expect(ours.models.map((m) => m.name).sort()).toEqual(reference.models.map((m) => m.name).sort())
  })

  it('keeps the reference generator and a sqlite datasource', () => {
    expect(ours.generatorProvider).toBe(reference.generatorProvider)
    expect(ours.datasourceProvider).toBe('sqlite')
  })

  const ref = byName(reference.models)
  const mine = byName(ours.models)
  describe.each(reference.models.map((m) => m.name))('%s', (name) => {
    it('has the same fields, in the same order (Prisma returns keys in field order)', () => {
      expect(mine.get(name)?.fields.map(fieldText)).toEqual(ref.get(name)!.fields.map(fieldText))
    })
    it('has the same @@map and @@index attributes', () => {
      expect(mine.get(name)?.blockAttributes.map(attr).sort()).toEqual(ref.get(name)!.blockAttributes.map(attr).sort())
    })
  })

  it('parses attributes with arguments, as a check of the parser itself', () => {
    const user = ref.get('KavachUser')!
    const banned = user.fields.find((f) => f.name === 'banned')!
    expect(fieldText(banned)).toBe('banned Boolean @default(false)')
    expect(fieldText(user.fields.find((f) => f.name === 'banExpiresAt')!)).toBe('banExpiresAt DateTime? @map("ban_expires_at")')
    expect(ref.get('KavachAuditLog')!.blockAttributes.map(attr)).toContain('@@index([timestamp],map:"kavach_audit_logs_timestamp_idx")')
  })
})
