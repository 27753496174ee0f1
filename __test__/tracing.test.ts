// OpenTelemetry spans, with the SDK's in-memory exporter and its AsyncLocalStorage context
// manager registered as an app would: one span per call under the app's active span, a child
// per statement, database semantic-convention attributes, errors, transactions; no secret in
// any span. (Its own file: registering a tracer provider is process-wide.)
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { context, trace, SpanStatusCode } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { createAdapter } from '../index.js'
import { dropFreshDatabases, freshUrl, make, onServer, provider, uid } from './fixtures'

const exporter = new InMemorySpanExporter()
const contextManager = new AsyncLocalStorageContextManager()

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable())
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
})
afterAll(() => {
  trace.disable()
  context.disable()
})

const adapters: any[] = []
async function open() {
  const adapter: any = createAdapter(await freshUrl())
  adapters.push(adapter)
  await adapter.connect()
  return adapter
}
afterEach(async () => {
  for (const adapter of adapters.splice(0)) await adapter.close()
  await dropFreshDatabases()
  exporter.reset()
})

const tracer = () => trace.getTracer('app')
const spanId = (s: any) => s.spanContext().spanId
const parentId = (s: any) => s.parentSpanContext?.spanId ?? s.parentSpanId

describe('spans', () => {
  it("one per call under the app's active span, a child per statement, with db.* attributes", async () => {
    const adapter = await open()
    const user = make.user()
    await tracer().startActiveSpan('login', async (root) => {
      await adapter.createUser(user)
      expect((await adapter.findUserByEmail(user.email)).id).toBe(user.id)
      root.end()
    })
    const spans = exporter.getFinishedSpans()
    const root = spans.find((s) => s.name === 'login')!
    const call = spans.find((s) => s.name === 'findUserByEmail')!
    expect(call).toBeDefined()
    expect(parentId(call)).toBe(spanId(root))
    expect(call.spanContext().traceId).toBe(root.spanContext().traceId)
    expect(call.attributes['db.system']).toBe(provider)
    expect(call.attributes['db.system.name']).toBe(provider)
    expect(call.attributes['kavach.method']).toBe('findUserByEmail')
    expect(call.attributes['db.response.returned_rows']).toBe(1)
    if (onServer) {
      expect(call.attributes['db.namespace']).toBeTruthy()
      expect(call.attributes['server.address']).toBe('127.0.0.1')
      expect(typeof call.attributes['server.port']).toBe('number')
    } else {
      expect(call.attributes['db.namespace']).toBe(':memory:')
    }
    const statements = spans.filter((s) => parentId(s) === spanId(call))
    expect(statements).toHaveLength(1)
    const [select] = statements
    expect(select.name).toBe('SELECT kavach_users')
    expect(select.kind).toBe(2) // SpanKind.CLIENT
    expect(select.attributes['db.query.text']).toMatch(/^SELECT .*kavach_users/)
    expect(select.attributes['db.query.text']).not.toContain(user.email)
    expect(select.attributes['db.operation.name']).toBe('SELECT')
    expect(select.attributes['db.collection.name']).toBe('kavach_users')
    expect(select.attributes['db.response.returned_rows']).toBe(1)
    // The statement lies within its call.
    const ns = (t: [number, number]) => t[0] * 1e9 + t[1]
    expect(ns(select.startTime)).toBeGreaterThanOrEqual(ns(call.startTime) - 1e6)
    expect(ns(select.endTime)).toBeLessThanOrEqual(ns(call.endTime) + 1e6)
  })

  it('a failed call: status ERROR, error.type the Prisma code, on the call and its statement', async () => {
    const adapter = await open()
    const user = make.user()
    await adapter.createUser(user)
    exporter.reset()
    const failure = await adapter.createUser({ ...make.user(), id: user.id }).catch((e: any) => e)
    expect(failure.code).toBe('P2002')
    const spans = exporter.getFinishedSpans()
    const call = spans.find((s) => s.name === 'createUser')!
    expect(call.status.code).toBe(SpanStatusCode.ERROR)
    expect(call.status.message).toBe(failure.message)
    expect(call.attributes['error.type']).toBe('P2002')
    const failed = spans.filter((s) => parentId(s) === spanId(call) && s.status.code === SpanStatusCode.ERROR)
    expect(failed).toHaveLength(1)
    expect(failed[0].attributes['error.type']).toBe('P2002')
    expect(failed[0].name).toMatch(/^INSERT kavach_users/)
  })

  it('a transaction: its span under the active one, BEGIN, the calls and COMMIT under it', async () => {
    const adapter = await open()
    await tracer().startActiveSpan('signup', async (root) => {
      await adapter.transaction(async (tx: any) => {
        await tx.createUser(make.user())
        await tx.findUserById('nobody')
      })
      root.end()
    })
    const spans = exporter.getFinishedSpans()
    const root = spans.find((s) => s.name === 'signup')!
    const tx = spans.find((s) => s.name === 'transaction')!
    expect(parentId(tx)).toBe(spanId(root))
    const children = spans.filter((s) => parentId(s) === spanId(tx)).sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1])
    expect(children.map((s) => s.name)).toEqual(['BEGIN', 'createUser', 'findUserById', 'COMMIT'])
    const create = children[1]
    expect(spans.filter((s) => parentId(s) === spanId(create)).map((s) => s.name)[0]).toBe('INSERT kavach_users')
  })

  it('no secret value in any span (name, attributes, status, events)', async () => {
    const adapter = await open()
    const tokenHash = `tok-${uid('secret')}-hash`
    const agent = make.agent({ tokenHash })
    await adapter.createAgent(agent)
    await adapter.findAgentByTokenHash(tokenHash)
    await adapter.createAgent({ ...make.agent(), tokenHash }).catch(() => {})
    const spans = exporter.getFinishedSpans()
    expect(spans.length).toBeGreaterThanOrEqual(6)
    const text = JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes, status: s.status, events: s.events })))
    expect(text).toContain('findAgentByTokenHash')
    expect(text).not.toContain(tokenHash)
  })
})

describe('tracing off', () => {
  it('loads nothing of OpenTelemetry when no tracer provider is registered', () => {
    const script = `
      const { createAdapter } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
      const adapter = createAdapter(':memory:')
      adapter.findUserById('x').then(async () => {
        await adapter.transaction(async (tx) => tx.findUserById('y'))
        const loaded = Object.keys(require.cache).filter((f) => f.includes('@opentelemetry'))
        console.log(JSON.stringify({ loaded, global: globalThis[Symbol.for('opentelemetry.js.api.1')] !== undefined }))
        await adapter.close()
      })`
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })
    expect(JSON.parse(out.trim())).toEqual({ loaded: [], global: false })
  })
})
