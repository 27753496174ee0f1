#!/usr/bin/env node
'use strict'
// kavach-native's command line: print the KavachOS schema, or create the missing tables.
//
//   kavach-native schema --provider sqlite|postgresql|mysql   the DDL the adapter runs
//   kavach-native schema --prisma                             the models, to add to your schema.prisma
//   kavach-native push [--url <database-url>]                 create missing tables (default: $DATABASE_URL)
//
// Any failure prints one line to stderr and exits non-zero (2: bad usage, 1: the database).

const PROVIDERS = ['sqlite', 'postgresql', 'mysql']

const USAGE = `Usage:
  kavach-native schema --provider <sqlite|postgresql|mysql>   print the SQL that creates every KavachOS table
  kavach-native schema --prisma                              print the KavachOS models for your schema.prisma
  kavach-native push [--url <database-url>]                  create the missing tables (default: $DATABASE_URL)
  kavach-native --help`

class UsageError extends Error {}

/** Parses `--name value` and `--name=value` pairs and bare `--flag`s after the command. */
function parseOptions(args, spec) {
  const options = {}
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (!match || !(match[1] in spec)) throw new UsageError(`unknown argument '${arg}'`)
    const [, name, inline] = match
    if (spec[name] === 'flag') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`)
      options[name] = true
    } else {
      const value = inline !== undefined ? inline : args[++i]
      if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`)
      options[name] = value
    }
  }
  return options
}

/** One line, with the URL's password (if any) never shown. */
function oneLine(message, url) {
  let text = String(message).replace(/\s*\n\s*/g, ' ').trim()
  if (url) {
    try {
      const { password } = new URL(url)
      for (const secret of new Set([password, safeDecode(password)])) {
        if (secret) text = text.split(secret).join('***')
      }
    } catch {
      // not a URL with a password
    }
  }
  return text
}

function safeDecode(text) {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/**
 * The models of kavach-native's schema.prisma, without its generator and datasource blocks,
 * so that the output can be appended to a project's own schema.prisma.
 */
function prismaModels(schema) {
  const start = schema.search(/^(model|enum|type|view) /m)
  if (start < 0) throw new Error('schema.prisma has no models')
  const version = require('../package.json').version
  const header = `// KavachOS models, from kavach-native ${version} (\`kavach-native schema --prisma\`).\n// No relations are declared: they impose no cascade rules on your models.\n\n`
  return `${header}${schema.slice(start).trimEnd()}\n`
}

function loadAddon() {
  return require('../index.js')
}

function schema(args) {
  const options = parseOptions(args, { provider: 'value', prisma: 'flag' })
  if (options.prisma && options.provider) throw new UsageError('give either --provider or --prisma, not both')
  if (options.prisma) {
    process.stdout.write(prismaModels(loadAddon().schemaPrisma()))
    return
  }
  if (!options.provider) throw new UsageError('schema needs --provider <sqlite|postgresql|mysql> or --prisma')
  if (!PROVIDERS.includes(options.provider)) {
    throw new UsageError(`unknown provider '${options.provider}'; use ${PROVIDERS.join(', ')}`)
  }
  const statements = loadAddon().schemaDdl(options.provider)
  process.stdout.write(`${statements.join(';\n')};\n`)
}

async function push(args) {
  const options = parseOptions(args, { url: 'value' })
  const url = options.url ?? process.env.DATABASE_URL
  if (!url) throw new UsageError('push needs --url <database-url> (or DATABASE_URL in the environment)')
  let db
  try {
    db = loadAddon().createAdapter(url)
    const created = await db.connect()
    if (created.length === 0) {
      console.log('Nothing to create: every KavachOS table already exists.')
    } else {
      console.log(`Created ${created.length} table${created.length === 1 ? '' : 's'}: ${created.join(', ')}`)
    }
  } catch (error) {
    error.url = url
    throw error
  } finally {
    if (db) await db.close().catch(() => {})
  }
}

async function main(argv) {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE)
    if (command === undefined) process.exitCode = 2
    return
  }
  if (command === 'schema') return schema(rest)
  if (command === 'push') return push(rest)
  throw new UsageError(`unknown command '${command}'`)
}

main(process.argv.slice(2)).catch((error) => {
  if (error instanceof UsageError) {
    process.stderr.write(`kavach-native: ${error.message} (see kavach-native --help)\n`)
    process.exitCode = 2
    return
  }
  const code = error && typeof error.code === 'string' && /^P\d{4}$/.test(error.code) ? `${error.code}: ` : ''
  process.stderr.write(`kavach-native: ${code}${oneLine(error && error.message, error && error.url)}\n`)
  process.exitCode = 1
})
