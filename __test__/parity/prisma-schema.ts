// A small parser for the subset of the Prisma schema language that schema.prisma files of
// KavachOS use: models with scalar fields, field attributes and block attributes.
// Comments are dropped; attribute arguments are normalised (whitespace) but kept as written.

export interface Attribute {
  name: string // e.g. '@id', '@default', '@@index'
  args: string | null // the text between the parentheses, whitespace-normalised
}

export interface Field {
  name: string
  type: string // without '?' or '[]'
  optional: boolean
  list: boolean
  attributes: Attribute[]
}

export interface Model {
  name: string
  fields: Field[]
  blockAttributes: Attribute[]
}

export interface Schema {
  models: Model[]
  datasourceProvider: string | null
  generatorProvider: string | null
}

function stripComment(line: string): string {
  let inString = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (c === '"' && line[i - 1] !== '\\') inString = !inString
    if (!inString && c === '/' && line[i + 1] === '/') return line.slice(0, i)
  }
  return line
}

function normalise(args: string): string {
  // Collapse whitespace outside string literals and around punctuation.
  let out = ''
  let inString = false
  for (let i = 0; i < args.length; i++) {
    const c = args[i]
    if (c === '"' && args[i - 1] !== '\\') inString = !inString
    if (!inString && /\s/.test(c)) continue
    out += c
  }
  return out
}

/** Splits `@a @b("x") @c(fields: [a, b])` into attributes, honouring nested parentheses and strings. */
function parseAttributes(text: string): Attribute[] {
  const attributes: Attribute[] = []
  let i = 0
  while (i < text.length) {
    if (/\s/.test(text[i])) {
      i++
      continue
    }
    if (text[i] !== '@') throw new Error(`cannot parse attributes at: ${text.slice(i)}`)
    const match = /^@@?[A-Za-z_][\w.]*/.exec(text.slice(i))
    if (!match) throw new Error(`bad attribute at: ${text.slice(i)}`)
    const name = match[0]
    i += name.length
    let args: string | null = null
    if (text[i] === '(') {
      let depth = 0
      let inString = false
      const start = i
      for (; i < text.length; i++) {
        const c = text[i]
        if (c === '"' && text[i - 1] !== '\\') inString = !inString
        if (inString) continue
        if (c === '(') depth++
        if (c === ')' && --depth === 0) break
      }
      args = normalise(text.slice(start + 1, i))
      i++
    }
    attributes.push({ name, args })
  }
  return attributes
}

export function parseSchema(source: string): Schema {
  const lines = source.split(/\r?\n/).map(stripComment)
  const models: Model[] = []
  let datasourceProvider: string | null = null
  let generatorProvider: string | null = null
  let block: { kind: string; name: string } | null = null
  let model: Model | null = null
  for (const raw of lines) {
    const line = raw.trim()
    if (!line) continue
    if (!block) {
      const open = /^(model|datasource|generator|enum|type|view)\s+(\w+)\s*\{$/.exec(line)
      if (!open) throw new Error(`unexpected line outside a block: ${line}`)
      block = { kind: open[1], name: open[2] }
      if (block.kind === 'model') {
        model = { name: block.name, fields: [], blockAttributes: [] }
        models.push(model)
      } else if (block.kind !== 'datasource' && block.kind !== 'generator') {
        throw new Error(`unsupported block kind ${block.kind}`)
      }
      continue
    }
    if (line === '}') {
      block = null
      model = null
      continue
    }
    if (block.kind === 'datasource' || block.kind === 'generator') {
      const kv = /^(\w+)\s*=\s*(.+)$/.exec(line)
      if (kv && kv[1] === 'provider') {
        const value = JSON.parse(kv[2].trim())
        if (block.kind === 'datasource') datasourceProvider = value
        else generatorProvider = value
      }
      continue
    }
    if (line.startsWith('@@')) {
      model!.blockAttributes.push(...parseAttributes(line))
      continue
    }
    const field = /^(\w+)\s+(\w+)(\[\])?(\?)?\s*(.*)$/.exec(line)
    if (!field) throw new Error(`cannot parse field line in ${model!.name}: ${line}`)
    model!.fields.push({
      name: field[1],
      type: field[2],
      list: Boolean(field[3]),
      optional: Boolean(field[4]),
      attributes: parseAttributes(field[5]),
    })
  }
  if (block) throw new Error(`unterminated block ${block.kind} ${block.name}`)
  return { models, datasourceProvider, generatorProvider }
}

export function attribute(field: Field, name: string): Attribute | undefined {
  return field.attributes.find((a) => a.name === name)
}
